package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Middleware defaults.
const (
	// DefaultMaxBody is the largest body Middleware reads (1 MiB); a larger
	// one is answered 413.
	DefaultMaxBody = 1 << 20
	// DefaultDedupTTL is how long Middleware remembers a processed
	// webhook-id. A sender only resends an id after a success it did not see
	// (a timeout or a lost response), on the next step of its retry
	// schedule; the longest step of the schedule Standard Webhooks
	// recommends is 24 h, so 25 h covers it with room for jitter. Replays
	// by a third party are already bounded by the timestamp tolerance.
	DefaultDedupTTL = 25 * time.Hour
	// DefaultDedupLease bounds how long a reservation holds an id while the
	// handler runs: twice the 30 s upper end of the request timeout Standard
	// Webhooks recommends to senders. If the process dies mid-request, the
	// id is free again after the lease.
	DefaultDedupLease = time.Minute
)

// Errors Middleware passes to its ErrorHandler besides the verification
// errors.
var (
	// ErrBodyTooLarge: the body is larger than the limit (413).
	ErrBodyTooLarge = errors.New("webhook: request body too large")
	// ErrInProgress: another request with the same webhook-id is being
	// processed (409, with Retry-After).
	ErrInProgress = errors.New("webhook: delivery with this webhook-id already in progress")
	// ErrStoreUnavailable: the de-duplication store failed (503); the store's
	// error is wrapped too.
	ErrStoreUnavailable = errors.New("webhook: de-duplication store unavailable")

	errReadBody = errors.New("webhook: reading request body failed")
)

// Delivery describes a verified webhook request; see FromContext.
type Delivery struct {
	// ID is the webhook-id header: the message id, the same on every retry.
	ID string
	// Timestamp is the webhook-timestamp header: when this attempt was sent.
	Timestamp time.Time
	// Attempt is the webhook-attempt header (1 for the first attempt), or 0
	// when it is absent or not a positive integer. It is not signed.
	Attempt int
	// EventType is the webhook-event header, or "". It is not signed: trust
	// the event type inside the verified body.
	EventType string
}

type ctxKey struct{}

// FromContext returns the Delivery that Middleware stored in the context of a
// verified request.
func FromContext(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(ctxKey{}).(Delivery)
	return d, ok
}

// ErrorHandler writes the response for a request Middleware rejects. status
// is the status Middleware suggests: 400, 401, 409, 413 or 503.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, status int, err error)

// MiddlewareOption configures Middleware.
type MiddlewareOption interface{ applyMiddleware(*middlewareConfig) }

type middlewareConfig struct {
	store       TwoPhaseStore
	storeSet    bool
	ttl         time.Duration
	lease       time.Duration
	maxBody     int64
	onError     ErrorHandler
	onDuplicate http.Handler
}

type middlewareOption func(*middlewareConfig)

func (o middlewareOption) applyMiddleware(c *middlewareConfig) { o(c) }

// WithStore sets the de-duplication store. By default each Middleware has
// its own MemoryStore; WithStore(nil) turns de-duplication off.
func WithStore(s TwoPhaseStore) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.store, c.storeSet = s, true })
}

// WithDedupTTL sets how long a successfully processed webhook-id is
// remembered (default DefaultDedupTTL). It is raised to twice the verifier's
// tolerance if shorter, since a captured request can be replayed for that
// long.
func WithDedupTTL(d time.Duration) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.ttl = d })
}

// WithDedupLease sets how long a reservation holds a webhook-id while the
// handler runs (default DefaultDedupLease). Make it longer than the slowest
// handler: a duplicate arriving after the lease runs concurrently.
func WithDedupLease(d time.Duration) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.lease = d })
}

// WithMaxBody sets the largest body read, in bytes (default DefaultMaxBody).
func WithMaxBody(n int64) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.maxBody = n })
}

// WithErrorHandler sets the function writing rejections (default
// DefaultErrorHandler).
func WithErrorHandler(h ErrorHandler) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.onError = h })
}

// WithDuplicateHandler sets the handler answering a webhook-id that was
// already processed successfully. Its request carries the Delivery and the
// body like next's. The default answers 200 with an empty body: the sender
// wants a 2xx to stop retrying, and the event was handled.
func WithDuplicateHandler(h http.Handler) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.onDuplicate = h })
}

// Middleware returns a handler that verifies Standard Webhooks requests with
// v and passes each verified, not yet processed one to next.
//
// For each request it:
//
//  1. checks the webhook-id, webhook-timestamp and webhook-signature headers
//     and the timestamp before reading the body (401 if they are wrong);
//  2. reads the body up to the limit (413 beyond it) and verifies the
//     signature (401);
//  3. reserves the webhook-id in the store (see below);
//  4. calls next with the body restored (r.Body can be read again) and a
//     Delivery in the context (see FromContext).
//
// Rejections go through the ErrorHandler; DefaultErrorHandler answers JSON
// {"error": "...", "code": "..."}.
//
// # De-duplication
//
// A webhook-id is marked processed only when next succeeds, so that the
// sender's retry of a failed delivery is processed again. It is two-phase:
// before next the id is reserved for a short lease; if next answers 2xx the
// reservation is committed for the dedup TTL; if next answers anything else,
// or panics, it is released. Only 2xx counts as success, as for the sender:
// committing after a 4xx would make the retry look delivered. While an id is
// reserved, another request with the same id (a retry that overtook a slow
// attempt) gets 409 with Retry-After rather than 2xx, because the first
// attempt may still fail. An id already committed gets the duplicate handler
// (200 by default) without calling next. If the process dies mid-request,
// the reservation lapses after the lease. A Commit or Release that fails is
// not reported: the reservation then lapses after the lease as well, so the
// failure costs at most a repeated delivery, never a lost one. A failing
// store on Reserve is answered 503 so that the sender retries later.
//
// Middleware panics if v or next is nil or if an option has a non-positive
// duration or size.
func Middleware(v *Verifier, next http.Handler, opts ...MiddlewareOption) http.Handler {
	if v == nil || next == nil {
		panic("webhook: Middleware needs a Verifier and a handler")
	}
	cfg := middlewareConfig{
		ttl:         DefaultDedupTTL,
		lease:       DefaultDedupLease,
		maxBody:     DefaultMaxBody,
		onError:     DefaultErrorHandler,
		onDuplicate: http.HandlerFunc(answerDuplicate),
	}
	for _, o := range opts {
		o.applyMiddleware(&cfg)
	}
	if cfg.ttl <= 0 || cfg.lease <= 0 || cfg.maxBody <= 0 {
		panic("webhook: Middleware options need positive durations and sizes")
	}
	if !cfg.storeSet {
		cfg.store = NewMemoryStore()
	}
	if cfg.ttl < 2*v.tolerance {
		cfg.ttl = 2 * v.tolerance
	}
	if cfg.onError == nil {
		cfg.onError = DefaultErrorHandler
	}
	if cfg.onDuplicate == nil {
		cfg.onDuplicate = http.HandlerFunc(answerDuplicate)
	}
	return &middleware{v: v, next: next, cfg: cfg, retryAfter: strconv.FormatInt(int64((cfg.lease+time.Second-1)/time.Second), 10)}
}

type middleware struct {
	v          *Verifier
	next       http.Handler
	cfg        middlewareConfig
	retryAfter string // lease in whole seconds, rounded up
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, unix, sigs, err := m.v.checkHeaders(r.Header)
	if err != nil {
		m.cfg.onError(w, r, http.StatusUnauthorized, err)
		return
	}
	if r.ContentLength > m.cfg.maxBody {
		m.cfg.onError(w, r, http.StatusRequestEntityTooLarge, ErrBodyTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.cfg.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			m.cfg.onError(w, r, http.StatusRequestEntityTooLarge, ErrBodyTooLarge)
		} else {
			m.cfg.onError(w, r, http.StatusBadRequest, errors.Join(errReadBody, err))
		}
		return
	}
	if err := m.v.checkSignature(id, unix, sigs, body); err != nil {
		m.cfg.onError(w, r, http.StatusUnauthorized, err)
		return
	}

	d := Delivery{ID: id, Timestamp: time.Unix(unix, 0), EventType: first(r.Header, canonicalEventType)}
	if n, err := strconv.Atoi(first(r.Header, canonicalAttempt)); err == nil && n > 0 {
		d.Attempt = n
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, d)
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))

	store := m.cfg.store
	if store == nil {
		m.next.ServeHTTP(w, r)
		return
	}
	res, err := store.Reserve(ctx, id, m.cfg.lease)
	if err != nil {
		m.cfg.onError(w, r, http.StatusServiceUnavailable, errors.Join(ErrStoreUnavailable, err))
		return
	}
	switch res {
	case Done:
		m.cfg.onDuplicate.ServeHTTP(w, r)
		return
	case InFlight:
		w.Header().Set("Retry-After", m.retryAfter)
		m.cfg.onError(w, r, http.StatusConflict, ErrInProgress)
		return
	}

	// Reserved: commit on 2xx, release on anything else, panics included.
	// The store calls outlive a cancelled request: the outcome is known.
	storeCtx := context.WithoutCancel(ctx)
	committed := false
	defer func() {
		if !committed {
			_ = store.Release(storeCtx, id)
		}
	}()
	rec := &statusRecorder{ResponseWriter: w}
	m.next.ServeHTTP(rec, r)
	if rec.succeeded() {
		committed = true
		_ = store.Commit(storeCtx, id, m.cfg.ttl)
	}
}

// statusRecorder remembers the final status written by a handler.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Flush lets streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController access to the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// succeeded reports a 2xx answer; writing nothing means 200.
func (s *statusRecorder) succeeded() bool {
	return s.status == 0 || (s.status >= 200 && s.status < 300)
}

func answerDuplicate(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

// DefaultErrorHandler answers status with a JSON body naming the problem:
//
//	{"error": "webhook: timestamp too old: 6m0s in the past, tolerance 5m0s", "code": "timestamp_too_old"}
//
// The codes are missing_headers, invalid_timestamp, timestamp_too_old,
// timestamp_too_new, no_matching_signature, body_too_large, bad_body,
// in_progress, store_unavailable and, for any other error, error. The
// messages of store and body-read errors are not echoed to the client.
func DefaultErrorHandler(w http.ResponseWriter, _ *http.Request, status int, err error) {
	code, msg := describe(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
}

// describe returns the code of err and the message that may be shown to the
// sender.
func describe(err error) (code, msg string) {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrMissingHeaders, "missing_headers"},
		{ErrInvalidTimestamp, "invalid_timestamp"},
		{ErrTimestampTooOld, "timestamp_too_old"},
		{ErrTimestampTooNew, "timestamp_too_new"},
		{ErrNoMatchingSignature, "no_matching_signature"},
		{ErrBodyTooLarge, "body_too_large"},
		{ErrInProgress, "in_progress"},
	} {
		if errors.Is(err, c.err) {
			return c.code, err.Error()
		}
	}
	switch {
	case errors.Is(err, ErrStoreUnavailable):
		return "store_unavailable", ErrStoreUnavailable.Error()
	case errors.Is(err, errReadBody):
		return "bad_body", errReadBody.Error()
	case err == nil:
		return "error", "webhook: error"
	}
	return "error", err.Error()
}
