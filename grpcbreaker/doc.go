// Package grpcbreaker puts circuit breakers into gRPC clients and servers as
// interceptors.
//
// A [Client] keeps one breaker per target (ClientConn.Target), shared by its
// unary and stream interceptors: when a backend fails, every call to it is
// refused at once, with an error that answers both errors.Is(err,
// actor.ErrOpen) and status.Code(err) == codes.Unavailable.
//
//	c, err := grpcbreaker.NewClient()
//	...
//	conn, err := grpc.NewClient(target,
//		grpc.WithChainUnaryInterceptor(c.UnaryInterceptor()),
//		grpc.WithChainStreamInterceptor(c.StreamInterceptor()))
//
// A [Server] keeps one breaker per full method name and, while a method's
// breaker is open, answers codes.Unavailable without running the handler, so
// that one failing method sheds its load and the others go on.
//
//	s, err := grpcbreaker.NewServer()
//	...
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(s.UnaryInterceptor()))
//
// The breakers live in an [actor.Group] ([Client.Group], [Server.Group]),
// configured with [WithGroupOptions]; [Client.Stop] and [Server.Stop] stop
// them. Errors are classified by [Classify] unless [WithClassifier] says
// otherwise.
package grpcbreaker
