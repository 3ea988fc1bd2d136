package deliverer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookstream/hookstream/pkg/conns"
)

// FastSender is a Sender on fasthttp's client: HTTP/1.1 with keep-alive
// connections per host, no redirects followed, no retries of its own. It
// costs about half the CPU of net/http per delivery (no goroutines per
// connection, pooled request and response objects).
//
// It honours ctx's deadline (the attempt timeout) and refuses to start
// after ctx ends. fasthttp cannot cancel one request, so a cancellation of
// a running attempt's ctx (not its deadline) closes every connection of the
// sender, failing all attempts in flight: the deliverer cancels attempts
// only when its shutdown deadline has passed, and then that is the point.
type FastSender struct {
	client *fasthttp.Client
	conns  conns.Set
	// MaxResponseBody caps the response snippet kept in Result.Body
	// (default 1 KiB). Up to 64 KiB more are drained so the connection can
	// be reused; a longer body closes it.
	MaxResponseBody int
}

// NewFastSender returns a FastSender that keeps up to maxConnsPerHost
// connections per host. Unless allowPrivate is set, it refuses to connect
// to non-public addresses, checked on the resolved address at dial time.
func NewFastSender(maxConnsPerHost int, allowPrivate bool) *FastSender {
	if maxConnsPerHost <= 0 {
		maxConnsPerHost = 64
	}
	dialer := newDialer(allowPrivate)
	s := &FastSender{}
	s.client = &fasthttp.Client{
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			d := *dialer
			d.Timeout = min(timeout, dialer.Timeout)
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return s.conns.Track(c), nil
		},
		MaxConnsPerHost:           maxConnsPerHost,
		MaxConnWaitTimeout:        time.Minute, // bounded by the request deadline
		MaxIdleConnDuration:       90 * time.Second,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		StreamResponseBody:        true,
	}
	return s
}

// Send posts req and reads the start of the answer.
func (s *FastSender) Send(ctx context.Context, req *Request) Result {
	if err := ctx.Err(); err != nil {
		return Result{Err: err} // before abortOnCancel, which would fire at once
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	stop := s.abortOnCancel(ctx)
	defer stop()
	return s.sendBy(ctx, deadline, req)
}

// abortOnCancel closes every connection of s when ctx is cancelled (not
// when its deadline passes: fasthttp ends that request itself), until stop
// is called.
func (s *FastSender) abortOnCancel(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			s.conns.CloseAll()
		}
	})
}

// sendBy is Send with the attempt's deadline given as a value: the
// deliverer passes its long-lived shutdown context, on which it has called
// abortOnCancel once, instead of a context and a watcher per attempt.
func (s *FastSender) sendBy(ctx context.Context, deadline time.Time, req *Request) Result {
	if err := ctx.Err(); err != nil {
		return Result{Err: err}
	}
	fr := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(fr)
	defer fasthttp.ReleaseResponse(resp)
	fr.SetRequestURI(req.URL)
	fr.Header.SetMethod("POST")
	for k, vs := range req.Header {
		for _, v := range vs {
			fr.Header.Add(k, v)
		}
	}
	fr.SetBodyRaw(req.Body)
	if err := s.client.DoDeadline(fr, resp, deadline); err != nil {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		case errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout):
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return Result{Err: err}
	}
	max := s.MaxResponseBody
	if max <= 0 {
		max = 1024
	}
	res := Result{Status: resp.StatusCode()}
	if bs := resp.BodyStream(); bs != nil {
		res.Body, _ = io.ReadAll(io.LimitReader(bs, int64(max)))
		_, _ = io.Copy(io.Discard, io.LimitReader(bs, 64<<10))
		_ = resp.CloseBodyStream()
	} else if b := resp.Body(); len(b) > 0 {
		res.Body = append([]byte(nil), b[:min(len(b), max)]...)
	}
	if ra := resp.Header.Peek("Retry-After"); len(ra) > 0 {
		res.RetryAfter = parseRetryAfter(string(ra), time.Now())
	}
	return res
}
