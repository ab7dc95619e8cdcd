package grpcbreaker

// A small gRPC service defined without code generation: a grpc.ServiceDesc
// whose handlers are written by hand, with wrapperspb messages so that gRPC's
// default proto codec carries them. The request says what to answer:
//
//	"ok"      the request back
//	"code=N"  a status with code N
//	"plain"   a plain Go error (the client sees codes.Unknown)
//	"block"   wait until the call's context is done, then return its error
//	"panic"   panic

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	echoService  = "grpcbreaker.test.Echo"
	methodUnary  = "/" + echoService + "/Unary"
	methodOther  = "/" + echoService + "/Other"
	methodStream = "/" + echoService + "/Stream"
)

// echo is the service's implementation; it counts the calls that reach it.
type echo struct {
	hits    map[string]*atomic.Int64 // by full method; fixed when made
	blocked chan struct{}            // a "block" call signals here once it waits; buffered
}

func newEcho() *echo {
	return &echo{
		hits: map[string]*atomic.Int64{
			methodUnary: new(atomic.Int64), methodOther: new(atomic.Int64), methodStream: new(atomic.Int64),
		},
		blocked: make(chan struct{}, 16), // buffered: handlers never wait for the test
	}
}

func (e *echo) answer(ctx context.Context, method, req string) (string, error) {
	e.hits[method].Add(1)
	switch {
	case req == "ok":
		return req, nil
	case strings.HasPrefix(req, "code="):
		n, err := strconv.Atoi(strings.TrimPrefix(req, "code="))
		if err != nil {
			return "", status.Error(codes.InvalidArgument, err.Error())
		}
		return "", status.Error(codes.Code(n), "asked for "+codes.Code(n).String())
	case req == "plain":
		return "", errors.New("a plain error")
	case req == "block":
		e.blocked <- struct{}{}
		<-ctx.Done()
		return "", ctx.Err()
	case req == "panic":
		panic("asked to panic")
	}
	return "", status.Error(codes.InvalidArgument, "unknown request "+strconv.Quote(req))
}

func (e *echo) unaryHandler(method string) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		handle := func(ctx context.Context, req any) (any, error) {
			out, err := e.answer(ctx, method, req.(*wrapperspb.StringValue).GetValue())
			if err != nil {
				return nil, err
			}
			return wrapperspb.String(out), nil
		}
		if interceptor == nil {
			return handle(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, handle)
	}
}

// stream answers one message with up to three copies of the answer.
func (e *echo) stream(srv any, ss grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	out, err := e.answer(ss.Context(), methodStream, in.GetValue())
	if err != nil {
		return err
	}
	return ss.SendMsg(wrapperspb.String(out))
}

func (e *echo) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: echoService,
		HandlerType: (*any)(nil), // no generated interface to check against
		Methods: []grpc.MethodDesc{
			{MethodName: "Unary", Handler: e.unaryHandler(methodUnary)},
			{MethodName: "Other", Handler: e.unaryHandler(methodOther)},
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "Stream", Handler: e.stream, ServerStreams: true, ClientStreams: true},
		},
	}
}

var streamDesc = &grpc.StreamDesc{StreamName: "Stream", ServerStreams: true, ClientStreams: true}

// serve starts a real gRPC server on an in-memory listener; the test's
// cleanup stops it.
func serve(t *testing.T, opts ...grpc.ServerOption) (*echo, *bufconn.Listener) {
	t.Helper()
	e := newEcho()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(opts...)
	srv.RegisterService(e.desc(), nil)
	served := make(chan struct{}) // closed when Serve returns
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // returns when Stop closes the listener
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return e, lis
}

// dial connects to lis through the client's interceptors; the test's cleanup
// closes the connection.
func dial(t *testing.T, lis *bufconn.Listener, c *Client) *grpc.ClientConn {
	t.Helper()
	return dialWith(t, func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }, c)
}

func dialWith(t *testing.T, dialer func(context.Context, string) (net.Conn, error), c *Client) *grpc.ClientConn {
	t.Helper()
	return dialTarget(t, target, dialer, c)
}

// dialTarget is dialWith for a target of the caller's choice.
func dialTarget(t *testing.T, target string, dialer func(context.Context, string) (net.Conn, error), c *Client) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialer),
	}
	if c != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(c.UnaryInterceptor()), grpc.WithChainStreamInterceptor(c.StreamInterceptor()))
	}
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// call makes one unary call and returns its error.
func call(ctx context.Context, cc *grpc.ClientConn, method, req string) error {
	return cc.Invoke(ctx, method, wrapperspb.String(req), new(wrapperspb.StringValue))
}

// openStream establishes a stream, sends req and returns the first answer's
// error.
func openStream(ctx context.Context, cc *grpc.ClientConn, req string) (established error, answered error) {
	cs, err := cc.NewStream(ctx, streamDesc, methodStream)
	if err != nil {
		return err, nil
	}
	if err := cs.SendMsg(wrapperspb.String(req)); err != nil {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	return nil, cs.RecvMsg(new(wrapperspb.StringValue))
}

func wrapString(s string) *wrapperspb.StringValue { return wrapperspb.String(s) }
