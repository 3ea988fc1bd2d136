package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fixture struct {
	sec Secret
	v   *Verifier
}

func newFixture(t *testing.T) fixture {
	sec := mustSecret(t)
	return fixture{sec: sec, v: mustVerifier(t, []Secret{sec}, WithClock(fixedClock(testNow.Unix())))}
}

// request returns a signed POST request for id with body.
func (f fixture) request(id, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	NewSigner(f.sec).SetHeaders(r.Header, id, testNow, []byte(body))
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var e errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	return e
}

// countingHandler counts calls and answers status.
type countingHandler struct {
	calls  atomic.Int32
	status int
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.calls.Add(1)
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
}

func TestMiddlewarePassesVerifiedRequest(t *testing.T) {
	f := newFixture(t)
	const body = `{"id":"evt_1","type":"invoice.paid"}`
	var got Delivery
	var gotBody string
	h := Middleware(f.v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := FromContext(r.Context())
		if !ok {
			t.Error("no Delivery in context")
		}
		got = d
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		if r.ContentLength != int64(len(body)) {
			t.Errorf("ContentLength = %d", r.ContentLength)
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "ok")
	}))
	r := f.request("msg_1", body)
	r.Header.Set("Webhook-Attempt", "3")
	r.Header.Set("Webhook-Event", "invoice.paid")
	w := serve(h, r)
	if w.Code != http.StatusAccepted || w.Body.String() != "ok" {
		t.Fatalf("response %d %q", w.Code, w.Body)
	}
	want := Delivery{ID: "msg_1", Timestamp: testNow, Attempt: 3, EventType: "invoice.paid"}
	if got != want {
		t.Errorf("Delivery = %+v, want %+v", got, want)
	}
	if gotBody != body {
		t.Errorf("next read body %q", gotBody)
	}

	// Absent or malformed attempt header.
	for _, a := range []string{"", "x", "-1", "0"} {
		r := f.request("msg_a"+a, body)
		if a != "" {
			r.Header.Set("Webhook-Attempt", a)
		}
		serve(h, r)
		if got.Attempt != 0 {
			t.Errorf("attempt header %q: Attempt = %d, want 0", a, got.Attempt)
		}
	}
	if _, ok := FromContext(context.Background()); ok {
		t.Error("FromContext found a Delivery in an empty context")
	}
}

func TestMiddlewareRejections(t *testing.T) {
	f := newFixture(t)
	next := &countingHandler{}
	h := Middleware(f.v, next, WithMaxBody(100))

	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
		msg    string
	}{
		{"no headers", func() *http.Request { return httptest.NewRequest("POST", "/", strings.NewReader("{}")) },
			401, "missing_headers", "webhook-id"},
		{"missing signature", func() *http.Request { r := f.request("m", "{}"); r.Header.Del("Webhook-Signature"); return r },
			401, "missing_headers", "webhook-signature"},
		{"bad timestamp", func() *http.Request { r := f.request("m", "{}"); r.Header.Set("Webhook-Timestamp", "soon"); return r },
			401, "invalid_timestamp", "invalid webhook-timestamp"},
		{"old timestamp", func() *http.Request {
			r := f.request("m", "{}")
			r.Header.Set("Webhook-Timestamp", strconv.FormatInt(testNow.Add(-6*time.Minute).Unix(), 10))
			return r
		}, 401, "timestamp_too_old", "6m0s in the past"},
		{"future timestamp", func() *http.Request {
			r := f.request("m", "{}")
			r.Header.Set("Webhook-Timestamp", strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10))
			return r
		}, 401, "timestamp_too_new", "1h0m0s in the future"},
		{"tampered body", func() *http.Request {
			r := f.request("m", "{}")
			r.Body = io.NopCloser(strings.NewReader(`{"x":1}`))
			return r
		}, 401, "no_matching_signature", "no matching signature"},
		{"body over the limit with Content-Length", func() *http.Request { return f.request("m", strings.Repeat("x", 101)) },
			413, "body_too_large", "too large"},
		{"body over the limit, chunked", func() *http.Request {
			r := f.request("m", strings.Repeat("x", 101))
			r.ContentLength = -1
			return r
		}, 413, "body_too_large", "too large"},
		{"body read error", func() *http.Request {
			r := f.request("m", "{}")
			r.Body = io.NopCloser(io.MultiReader(strings.NewReader("{"), iotestErrReader{}))
			return r
		}, 400, "bad_body", "reading request body failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.req())
			if w.Code != tc.status {
				t.Errorf("status = %d, want %d", w.Code, tc.status)
			}
			e := decodeError(t, w)
			if e.Code != tc.code || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("body = %+v, want code %q and error containing %q", e, tc.code, tc.msg)
			}
			if strings.Contains(e.Error, "secret i/o") {
				t.Errorf("error leaks the body reader's error: %q", e.Error)
			}
		})
	}
	if n := next.calls.Load(); n != 0 {
		t.Errorf("next called %d times for rejected requests", n)
	}
	// Exactly at the limit is accepted.
	if w := serve(h, f.request("m", strings.Repeat("x", 100))); w.Code != 200 || next.calls.Load() != 1 {
		t.Errorf("body at the limit: %d, %d calls", w.Code, next.calls.Load())
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("secret i/o detail") }

// bodyWatcher records whether the body was read.
type bodyWatcher struct{ read atomic.Bool }

func (b *bodyWatcher) Read(p []byte) (int, error) { b.read.Store(true); return 0, io.EOF }
func (b *bodyWatcher) Close() error               { return nil }

func TestMiddlewareChecksHeadersBeforeReadingBody(t *testing.T) {
	f := newFixture(t)
	h := Middleware(f.v, &countingHandler{})
	r := f.request("m", "{}")
	r.Header.Set("Webhook-Timestamp", "1")
	watcher := &bodyWatcher{}
	r.Body = watcher
	if w := serve(h, r); w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
	if watcher.read.Load() {
		t.Error("body was read for a request with an expired timestamp")
	}
}

func TestMiddlewareReplayAnsweredWithoutNext(t *testing.T) {
	f := newFixture(t)
	next := &countingHandler{status: http.StatusNoContent}
	h := Middleware(f.v, next)
	if w := serve(h, f.request("msg_r", "{}")); w.Code != http.StatusNoContent {
		t.Fatalf("first delivery: %d", w.Code)
	}
	for range 3 {
		w := serve(h, f.request("msg_r", "{}"))
		if w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("replay: %d %q, want 200 and no body", w.Code, w.Body)
		}
	}
	if n := next.calls.Load(); n != 1 {
		t.Errorf("next called %d times, want 1", n)
	}
	// A different id is processed.
	serve(h, f.request("msg_other", "{}"))
	if n := next.calls.Load(); n != 2 {
		t.Errorf("next called %d times, want 2", n)
	}

	// A custom duplicate answer sees the Delivery.
	var dupID string
	h = Middleware(f.v, next, WithDuplicateHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := FromContext(r.Context())
		dupID = d.ID
		w.WriteHeader(http.StatusAlreadyReported)
	})))
	serve(h, f.request("msg_d", "{}"))
	if w := serve(h, f.request("msg_d", "{}")); w.Code != http.StatusAlreadyReported || dupID != "msg_d" {
		t.Errorf("custom duplicate answer: %d, id %q", w.Code, dupID)
	}
}

func TestMiddlewareFailedNextIsRetryable(t *testing.T) {
	f := newFixture(t)
	store := NewMemoryStore()
	status := atomic.Int32{}
	calls := atomic.Int32{}
	h := Middleware(f.v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch s := int(status.Load()); s {
		case -1:
			panic("handler bug")
		case 0: // writes the body without WriteHeader: implicit 200
			_, _ = io.WriteString(w, "done")
		default:
			w.WriteHeader(s)
		}
	}), WithStore(store))

	// Each failure leaves the id free, so the sender's retry runs next.
	for i, s := range []int{500, 503, 429, 400, 410, 302, -1} {
		status.Store(int32(s))
		func() {
			defer func() {
				if p := recover(); (p != nil) != (s == -1) {
					t.Errorf("status %d: recovered %v", s, p)
				}
			}()
			serve(h, f.request("msg_f", "{}"))
		}()
		if got := calls.Load(); got != int32(i+1) {
			t.Fatalf("after a %d answer the retry did not reach next (%d calls)", s, got)
		}
		if r, _ := store.Reserve(context.Background(), "msg_f", time.Minute); r != Reserved {
			t.Fatalf("after a %d answer the id is %v, want free", s, r)
		}
		_ = store.Release(context.Background(), "msg_f")
	}

	// Success commits; the next retry is a duplicate.
	status.Store(0)
	if w := serve(h, f.request("msg_f", "{}")); w.Code != 200 || w.Body.String() != "done" {
		t.Fatalf("success: %d %q", w.Code, w.Body)
	}
	before := calls.Load()
	serve(h, f.request("msg_f", "{}"))
	if calls.Load() != before {
		t.Error("duplicate after success reached next")
	}
}

func TestMiddlewareInFlightDuplicate(t *testing.T) {
	f := newFixture(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	h := Middleware(f.v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
			w.WriteHeader(http.StatusInternalServerError) // the slow attempt fails
		}
	}), WithDedupLease(90*time.Second))

	done := make(chan int)
	go func() { done <- serve(h, f.request("msg_s", "{}")).Code }()
	<-entered
	w := serve(h, f.request("msg_s", "{}"))
	if w.Code != http.StatusConflict || w.Header().Get("Retry-After") != "90" {
		t.Errorf("duplicate while in flight: %d, Retry-After %q; want 409, 90", w.Code, w.Header().Get("Retry-After"))
	}
	if e := decodeError(t, w); e.Code != "in_progress" {
		t.Errorf("code %q", e.Code)
	}
	close(release)
	if code := <-done; code != 500 {
		t.Fatalf("first attempt: %d", code)
	}
	// The first attempt failed, so a later retry is processed.
	if w := serve(h, f.request("msg_s", "{}")); w.Code != 200 || calls.Load() != 2 {
		t.Errorf("retry after failure: %d, %d calls", w.Code, calls.Load())
	}
}

// TestMiddlewareConcurrentDuplicates sends the same delivery many times at
// once through a real server: next must run exactly once, and every answer
// must be a 2xx (processed or duplicate) or 409 (retry later). Run with -race.
func TestMiddlewareConcurrentDuplicates(t *testing.T) {
	f := newFixture(t)
	var calls atomic.Int32
	var mu sync.Mutex
	var processed []string
	h := Middleware(f.v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		d, _ := FromContext(r.Context())
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		processed = append(processed, d.ID+":"+string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	const ids, copies = 5, 16
	var wg sync.WaitGroup
	var codes sync.Map
	for i := range ids {
		for range copies {
			wg.Go(func() {
				id, body := "msg_c"+strconv.Itoa(i), `{"n":`+strconv.Itoa(i)+`}`
				req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
				NewSigner(f.sec).SetHeaders(req.Header, id, testNow, []byte(body))
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				n, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
			})
		}
	}
	wg.Wait()
	if n := calls.Load(); n != ids {
		t.Errorf("next ran %d times for %d distinct ids", n, ids)
	}
	codes.Range(func(k, v any) bool {
		if c := k.(int); c != 204 && c != 200 && c != 409 {
			t.Errorf("%d answers with status %d", v.(*atomic.Int32).Load(), c)
		}
		return true
	})
	if n, ok := codes.Load(204); !ok || n.(*atomic.Int32).Load() != ids {
		t.Errorf("want exactly %d answers 204 from next", ids)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range processed {
		id, body, _ := strings.Cut(p, ":")
		if body != `{"n":`+strings.TrimPrefix(id, "msg_c")+`}` {
			t.Errorf("next saw %q", p)
		}
	}
}

type failingStore struct{ err error }

func (s failingStore) Reserve(context.Context, string, time.Duration) (Reservation, error) {
	return 0, s.err
}
func (s failingStore) Commit(context.Context, string, time.Duration) error { return s.err }
func (s failingStore) Release(context.Context, string) error               { return s.err }

func TestMiddlewareStoreFailure(t *testing.T) {
	f := newFixture(t)
	next := &countingHandler{}
	h := Middleware(f.v, next, WithStore(failingStore{errors.New("dial tcp 10.0.0.7:6379: refused")}))
	w := serve(h, f.request("m", "{}"))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
	e := decodeError(t, w)
	if e.Code != "store_unavailable" || strings.Contains(e.Error, "10.0.0.7") {
		t.Errorf("body %+v: want code store_unavailable without the store's error", e)
	}
	if next.calls.Load() != 0 {
		t.Error("next called although the store failed")
	}
}

func TestMiddlewareWithoutStore(t *testing.T) {
	f := newFixture(t)
	next := &countingHandler{}
	h := Middleware(f.v, next, WithStore(nil))
	serve(h, f.request("m", "{}"))
	serve(h, f.request("m", "{}"))
	if n := next.calls.Load(); n != 2 {
		t.Errorf("without a store next ran %d times, want 2", n)
	}
}

func TestMiddlewareDedupTTL(t *testing.T) {
	f := newFixture(t)
	clk := newFakeClock()
	store := NewMemoryStore(WithClock(clk.Now))
	next := &countingHandler{}
	h := Middleware(f.v, next, WithStore(store), WithDedupTTL(time.Second)) // raised to 2×5 min
	serve(h, f.request("m", "{}"))
	clk.Advance(10*time.Minute - time.Nanosecond)
	serve(h, f.request("m", "{}"))
	if n := next.calls.Load(); n != 1 {
		t.Fatalf("replay within twice the tolerance reached next (%d calls)", n)
	}
	clk.Advance(time.Nanosecond)
	serve(h, f.request("m", "{}"))
	if n := next.calls.Load(); n != 2 {
		t.Errorf("after the TTL next ran %d times, want 2", n)
	}

	h = Middleware(f.v, next, WithStore(store))
	serve(h, f.request("d", "{}"))
	clk.Advance(DefaultDedupTTL - time.Nanosecond)
	before := next.calls.Load()
	serve(h, f.request("d", "{}"))
	if next.calls.Load() != before {
		t.Error("default TTL shorter than DefaultDedupTTL")
	}
}

func TestMiddlewareCustomErrorHandler(t *testing.T) {
	f := newFixture(t)
	var gotStatus int
	var gotErr error
	h := Middleware(f.v, &countingHandler{}, WithErrorHandler(func(w http.ResponseWriter, r *http.Request, status int, err error) {
		gotStatus, gotErr = status, err
		DefaultErrorHandler(w, r, http.StatusTeapot, err)
	}))
	r := f.request("m", "{}")
	r.Header.Set("Webhook-Signature", "v1,AAAA")
	w := serve(h, r)
	if gotStatus != 401 || !errors.Is(gotErr, ErrNoMatchingSignature) || w.Code != http.StatusTeapot {
		t.Errorf("handler got %d %v; response %d", gotStatus, gotErr, w.Code)
	}
}

func TestMiddlewareFlushReachesWriter(t *testing.T) {
	f := newFixture(t)
	h := Middleware(f.v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "part")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		w.(http.Flusher).Flush()
	}))
	w := serve(h, f.request("m", "{}"))
	if !w.Flushed || w.Body.String() != "part" {
		t.Errorf("flushed %v, body %q", w.Flushed, w.Body)
	}
}

func TestMiddlewarePanicsOnBadConfig(t *testing.T) {
	f := newFixture(t)
	for name, fn := range map[string]func(){
		"nil verifier": func() { Middleware(nil, &countingHandler{}) },
		"nil next":     func() { Middleware(f.v, nil) },
		"zero ttl":     func() { Middleware(f.v, &countingHandler{}, WithDedupTTL(0)) },
		"zero lease":   func() { Middleware(f.v, &countingHandler{}, WithDedupLease(0)) },
		"zero body":    func() { Middleware(f.v, &countingHandler{}, WithMaxBody(0)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}
