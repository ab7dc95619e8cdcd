package httpbreaker

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
)

// statusWriter records the status a handler answers with. It keeps what the
// writer it wraps can do reachable: Flush (and FlushError) and Hijack directly
// (for code that type-asserts http.Flusher or http.Hijacker), everything else through Unwrap
// (http.ResponseController unwraps it).
type statusWriter struct {
	w      http.ResponseWriter
	status int // the final status: 0 until the handler sends one
}

// writers recycles statusWriters: a handler may not use its ResponseWriter
// after ServeHTTP returns, so the middleware puts one back then (but not
// after a panic: the handler did not finish).
var writers = sync.Pool{New: func() any { return new(statusWriter) }}

func (sw *statusWriter) Header() http.Header { return sw.w.Header() }

func (sw *statusWriter) WriteHeader(code int) {
	// 1xx other than 101 are informational (103 Early Hints): the final
	// status is still to come.
	if sw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		sw.status = code
	}
	sw.w.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.w.Write(p)
}

// ReadFrom keeps the wrapped writer's ReadFrom (sendfile) in use for
// io.Copy.
func (sw *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if rf, ok := sw.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{sw.w}, r)
}

// writerOnly hides everything of a writer but Write, so io.Copy does not
// come back to ReadFrom.
type writerOnly struct{ io.Writer }

// Flush sends what is buffered; it does nothing if the wrapped writer cannot.
func (sw *statusWriter) Flush() { _ = sw.FlushError() }

// FlushError is Flush with the wrapped writer's error (http.ErrNotSupported
// when it cannot flush). http.ResponseController prefers it to Flush, so a
// handler that asks it to flush learns what happened.
func (sw *statusWriter) FlushError() error {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return http.NewResponseController(sw.w).Flush()
}

// Hijack takes over the connection, if the wrapped writer can
// (http.ErrNotSupported otherwise). A hijacked request counts as a success:
// the handler answers on its own.
func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(sw.w).Hijack()
	if err == nil && sw.status == 0 {
		sw.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.w }
