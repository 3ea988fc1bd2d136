package deliverer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Request is one signed HTTP delivery attempt.
type Request struct {
	URL    string
	Header http.Header
	Body   []byte
}

// Result is what one attempt got back.
type Result struct {
	// Status is the HTTP status code; 0 if no response arrived.
	Status int
	// Err is the transport error (connection refused, timeout, …), nil when a
	// response arrived.
	Err error
	// Body is the start of the response body, capped.
	Body []byte
	// RetryAfter is the parsed Retry-After header (0 if none).
	RetryAfter time.Duration
}

// Sender performs one delivery attempt. Implementations must be safe for
// concurrent use and must honour ctx (its deadline is the attempt timeout).
type Sender interface {
	Send(ctx context.Context, req *Request) Result
}

// deadlineSender is a Sender that also takes an attempt's deadline as a
// value (FastSender): the deliverer then spares a timer context and a
// cancellation watcher per attempt. ctx is long-lived; abortOnCancel,
// called once on it, must end the attempts in flight when it is cancelled.
type deadlineSender interface {
	Sender
	sendBy(ctx context.Context, deadline time.Time, req *Request) Result
	abortOnCancel(ctx context.Context) (stop func() bool)
}

// HTTPSender is the production Sender: one shared http.Client with
// keep-alive connections per host, no redirects followed.
type HTTPSender struct {
	Client *http.Client
	// MaxResponseBody caps the response snippet kept in Result.Body
	// (default 1 KiB). The rest of the body is drained (up to 64 KiB) so the
	// connection can be reused.
	MaxResponseBody int
}

// ErrPrivateTarget is returned (wrapped) for a delivery whose target
// address is loopback, private, link-local or otherwise not on the public
// internet, while private targets are not allowed.
var ErrPrivateTarget = errors.New("target address is not public")

// NewHTTPSender returns an HTTPSender whose transport keeps up to
// maxConnsPerHost idle connections per host. Unless allowPrivate is set, it
// refuses to connect to non-public addresses (checked on the resolved
// address at dial time, so DNS tricks do not get around it): a webhook URL
// is chosen by a customer and must not reach the sender's own network.
func NewHTTPSender(maxConnsPerHost int, allowPrivate bool) *HTTPSender {
	if maxConnsPerHost <= 0 {
		maxConnsPerHost = 64
	}
	dialer := newDialer(allowPrivate)
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0, // no global cap; per host below
		MaxIdleConnsPerHost:   maxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if allowPrivate {
		// With the address check off, an egress proxy from the environment
		// (HTTPS_PROXY, e.g. one that enforces its own egress policy) is
		// honoured; with it on, a proxy would hide the target address.
		tr.Proxy = http.ProxyFromEnvironment
	}
	return &HTTPSender{Client: &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is an answer, not a hop
		},
	}}
}

// Send posts req and reads the start of the answer.
func (s *HTTPSender) Send(ctx context.Context, req *Request) Result {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return Result{Err: err}
	}
	hr.Header = req.Header
	resp, err := s.Client.Do(hr)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = errors.Join(ctxErr, err)
		}
		return Result{Err: err}
	}
	defer resp.Body.Close()
	max := s.MaxResponseBody
	if max <= 0 {
		max = 1024
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, int64(max)))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res := Result{Status: resp.StatusCode, Body: snippet}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		res.RetryAfter = parseRetryAfter(ra, time.Now())
	}
	return res
}

// publicAddr reports whether ip is a public unicast address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// maxRetryAfter caps a Retry-After; the deliverer caps it far lower anyway
// (twice the next retry delay).
const maxRetryAfter = 7 * 24 * time.Hour

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-") {
		switch {
		case secs < 0:
			return 0
		case err != nil || secs > int64(maxRetryAfter/time.Second):
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// newDialer returns the dialer both senders use: unless allowPrivate, it
// refuses non-public addresses after resolution.
func newDialer(allowPrivate bool) *net.Dialer {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			if !publicAddr(ip) {
				return fmt.Errorf("%w: %s", ErrPrivateTarget, ip)
			}
			return nil
		}
	}
	return dialer
}
