package deliverer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// httptest servers listen on 127.0.0.1: these senders allow private targets
// (private_test.go covers the refusal).

// senders are the two production Senders, each test runs on both; max caps
// the response snippet (0 = the default).
var senders = []struct {
	name string
	make func(maxBody int) Sender
}{
	{"net/http", func(maxBody int) Sender { s := NewHTTPSender(4, true); s.MaxResponseBody = maxBody; return s }},
	{"fasthttp", func(maxBody int) Sender { s := NewFastSender(4, true); s.MaxResponseBody = maxBody; return s }},
}

func eachSender(t *testing.T, f func(t *testing.T, newSender func(maxBody int) Sender)) {
	for _, s := range senders {
		t.Run(s.name, func(t *testing.T) { f(t, s.make) })
	}
}

func TestSenderPosts(t *testing.T) { eachSender(t, testSenderPosts) }

func testSenderPosts(t *testing.T, newSender func(int) Sender) {
	type seen struct {
		method, path, body, sig, ct string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, string(b), r.Header.Get(HeaderSignature), r.Header.Get("Content-Type")}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "thanks")
	}))
	defer srv.Close()
	s := newSender(0)
	h := http.Header{}
	h.Set(HeaderSignature, "v1,abc")
	h.Set("Content-Type", "application/json")
	res := s.Send(t.Context(), &Request{URL: srv.URL + "/hooks", Header: h, Body: []byte(`{"a":1}`)})
	if res.Err != nil || res.Status != http.StatusAccepted || string(res.Body) != "thanks" || res.RetryAfter != 0 {
		t.Fatalf("Send = %+v", res)
	}
	if g := <-got; g != (seen{"POST", "/hooks", `{"a":1}`, "v1,abc", "application/json"}) {
		t.Errorf("server saw %+v", g)
	}
}

func TestSenderDoesNotFollowRedirects(t *testing.T) { eachSender(t, testSenderDoesNotFollowRedirects) }

func testSenderDoesNotFollowRedirects(t *testing.T, newSender func(int) Sender) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hooks", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, sender := range []Sender{newSender(0), newSender(8)} {
		res := sender.Send(t.Context(), &Request{URL: srv.URL + "/hooks", Header: http.Header{}, Body: []byte("{}")})
		if res.Err != nil || res.Status != http.StatusTemporaryRedirect {
			t.Errorf("Send to a redirect = %+v, want the 307 itself", res)
		}
		if classify(res) != permanent {
			t.Errorf("a redirect classifies as %v, want permanent", classify(res))
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect target was requested %d times", n)
	}
}

func TestSenderCapsResponseBody(t *testing.T) { eachSender(t, testSenderCapsResponseBody) }

func testSenderCapsResponseBody(t *testing.T, newSender func(int) Sender) {
	big := strings.Repeat("0123456789", 1000) // 10 000 bytes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, big)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		max, want int
	}{
		{0, 1024}, // the default
		{10, 10},
		{20000, len(big)},
	} {
		s := newSender(tc.max)
		res := s.Send(t.Context(), &Request{URL: srv.URL, Header: http.Header{}})
		if res.Err != nil || res.Status != 500 || len(res.Body) != tc.want || string(res.Body) != big[:tc.want] {
			t.Errorf("MaxResponseBody %d: status %d, %d body bytes (err %v), want %d", tc.max, res.Status, len(res.Body), res.Err, tc.want)
		}
	}
}

func TestSenderRetryAfter(t *testing.T) { eachSender(t, testSenderRetryAfter) }

func testSenderRetryAfter(t *testing.T, newSender func(int) Sender) {
	var header atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := header.Load().(string); v != "" {
			w.Header().Set("Retry-After", v)
		}
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	s := newSender(0)
	for _, tc := range []struct {
		header   string
		min, max time.Duration
	}{
		{"", 0, 0},
		{"7", 7 * time.Second, 7 * time.Second},
		{"garbage", 0, 0},
		{time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 58 * time.Minute, time.Hour},
	} {
		header.Store(tc.header)
		res := s.Send(t.Context(), &Request{URL: srv.URL, Header: http.Header{}})
		if res.Status != 429 || res.RetryAfter < tc.min || res.RetryAfter > tc.max {
			t.Errorf("Retry-After %q: status %d, RetryAfter %v, want in [%v, %v]", tc.header, res.Status, res.RetryAfter, tc.min, tc.max)
		}
	}
}

func TestSenderHonoursContext(t *testing.T) { eachSender(t, testSenderHonoursContext) }

func testSenderHonoursContext(t *testing.T, newSender func(int) Sender) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := newSender(0).Send(ctx, &Request{URL: srv.URL, Header: http.Header{}, Body: []byte("{}")})
	if res.Err == nil || res.Status != 0 {
		t.Fatalf("Send past its deadline = %+v, want an error", res)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", res.Err)
	}
	if attemptLabel(res) != "timeout" || classify(res) != retryable {
		t.Errorf("a timed-out attempt: label %q, class %v", attemptLabel(res), classify(res))
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Send returned after %v, long past its 50ms deadline", el)
	}

	// A context already cancelled: no request at all.
	done, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if res := newSender(0).Send(done, &Request{URL: srv.URL, Header: http.Header{}}); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %+v", res)
	}
}

func TestSenderTransportErrors(t *testing.T) { eachSender(t, testSenderTransportErrors) }

func testSenderTransportErrors(t *testing.T, newSender func(int) Sender) {
	s := newSender(0)
	for _, url := range []string{
		"http://127.0.0.1:1/", // nothing listens on port 1
		"://no-scheme",
		"ftp://127.0.0.1/",
	} {
		res := s.Send(t.Context(), &Request{URL: url, Header: http.Header{}})
		if res.Err == nil || res.Status != 0 || classify(res) != retryable {
			t.Errorf("Send(%q) = %+v, want a transport error", url, res)
		}
	}
}

func TestSenderKeepsConnectionsAlive(t *testing.T) { eachSender(t, testSenderKeepsConnectionsAlive) }

func testSenderKeepsConnectionsAlive(t *testing.T, newSender func(int) Sender) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, strings.Repeat("x", 5000)) // more than the snippet: drained
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := newSender(0)
	for i := range 5 {
		if res := s.Send(t.Context(), &Request{URL: srv.URL, Header: http.Header{}, Body: []byte("{}")}); res.Err != nil || res.Status != 200 {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential requests opened %d connections, want 1 (keep-alive)", n)
	}
}

// A cancellation (the deliverer's shutdown deadline) ends an attempt that
// is already waiting for its answer, long before its own deadline.
func TestSenderCancelInterruptsAttempt(t *testing.T) {
	eachSender(t, testSenderCancelInterruptsAttempt)
}

func testSenderCancelInterruptsAttempt(t *testing.T, newSender func(int) Sender) {
	ep, arrived := hangingEndpoint(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	go func() {
		<-arrived
		cancel()
	}()
	start := time.Now()
	res := newSender(0).Send(ctx, &Request{URL: ep.URL, Header: http.Header{}, Body: []byte("{}")})
	if !errors.Is(res.Err, context.Canceled) || res.Status != 0 {
		t.Fatalf("Send cancelled while waiting = %+v, want an error wrapping context.Canceled", res)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Send returned %v after the cancellation", el)
	}
}

// Retry-After comes from customer endpoints: any value yields a delay in
// [0, maxRetryAfter], and delay-seconds within range are read exactly.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, seed := range []string{"", "0", "7", "-1", "120", "99999999999999999999", "-99999999999999999999",
		"Wed, 21 Oct 2026 07:28:00 GMT", now.Add(time.Hour).Format(http.TimeFormat), "garbage", " 5", "5 ", "+5", "1e3"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, %v]", v, d, maxRetryAfter)
		}
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 && secs <= int64(maxRetryAfter/time.Second) {
			if d != time.Duration(secs)*time.Second {
				t.Fatalf("parseRetryAfter(%q) = %v, want %ds", v, d, secs)
			}
		}
	})
}
