package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/metrics"
	"github.com/hookstream/hookstream/pkg/pipelinetest"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// env is one test's isolated slice of a shared cluster (pkg/pipelinetest),
// stopped when the test ends.
type env struct {
	*pipelinetest.Env
	t *testing.T
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("HOOKSTREAM_TEST_VERBOSE") != "" { // straight to stderr: survives a test timeout
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p[:len(p)-1])); return len(p), nil }

func newEnv(t *testing.T, cluster *kafkatest.Cluster) *env {
	t.Helper()
	pe := pipelinetest.New(t, cluster, pipelinetest.WithPrefix("t"), pipelinetest.WithEventsPartitions(3),
		pipelinetest.WithLogger(testLogger(t)), pipelinetest.WithCleanup(t.Cleanup))
	e := &env{Env: pe, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpMetrics()
		}
	})
	return e
}

// dumpMetrics logs every non-zero series: the first thing to read when a
// scenario fails.
func (e *env) dumpMetrics() { metrics.Dump(e.Metrics, e.t.Logf) }

// delivererConfig is the deliverer with test timing: a fast retry schedule,
// breaker and commits, short timeouts.
func (e *env) delivererConfig() deliverer.Config {
	cfg := e.DelivererConfig()
	cfg.AllowPrivateTargets = true
	cfg.Schedule = deliverer.Schedule{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
	cfg.ReparkDelay, cfg.BreakerOpenTimeout = 100*time.Millisecond, 200*time.Millisecond
	cfg.AttemptTimeout, cfg.CommitInterval, cfg.ShutdownTimeout = 5*time.Second, 200*time.Millisecond, 5*time.Second
	return cfg
}

func (e *env) addEndpoint(url string, events ...string) *registry.Endpoint {
	return e.CreateEndpoint(registry.Endpoint{TenantID: "acme", URL: url, EventTypes: events})
}

// deadLetter is a decoded dead-letter record with the event key it carries.
type deadLetter struct {
	deliverer.DeadLetter
	eventKey string // the hookstream-event-key header
}

// deadLetters reads the dead-letter topic until it has n records (or fails
// the test at the deadline) and returns them decoded.
func (e *env) deadLetters(n int, timeout time.Duration) []deadLetter {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl := e.Cluster.Client(e.t, kgo.ConsumeTopics(e.Kafka.Topics().DLQ()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []deadLetter
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("dead-letter topic has %d of %d records after %v", len(out), n, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var dl deadLetter
			if err := e.Catalog.Unmarshal(r.Value, deliverer.DeadLetterRecordName, &dl.DeadLetter); err != nil {
				e.t.Fatalf("dead letter does not decode: %v", err)
			}
			for _, h := range r.Headers {
				if h.Key == deliverer.HeaderEventKey {
					dl.eventKey = string(h.Value)
				}
			}
			out = append(out, dl)
		})
	}
	return out
}

// dlqCount returns how many records the dead-letter topic holds now.
func (e *env) dlqCount() int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(e.Client).ListEndOffsets(ctx, e.Kafka.Topics().DLQ())
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// delivery is one request a receiver got with a valid signature.
type delivery struct {
	ID        string
	Attempt   string
	Timestamp string // webhook-timestamp, unix seconds
	Status    int    // what the receiver answered
	Body      map[string]any
}

// receiver is a local HTTP server with one path per endpoint; every request
// must carry a valid Standard Webhooks signature for that endpoint's secret.
// fail, when set, decides per request whether to answer 500.
type receiver struct {
	t    *testing.T
	srv  *http.Server
	base string

	mu         sync.Mutex
	verifiers  map[string]*webhook.Verifier
	got        map[string][]delivery // path -> deliveries
	badSig     atomic.Int64
	fail       atomic.Pointer[func(path string) bool]
	respond    atomic.Pointer[func(path string, d delivery) int] // status to answer; 0 = 204
	tried      map[string][]delivery                             // path -> every verified request
	requests   atomic.Int64
	rejections atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, base: "http://" + ln.Addr().String(), verifiers: map[string]*webhook.Verifier{}, got: map[string][]delivery{}, tried: map[string][]delivery{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

// endpoint registers path with the endpoint's secrets and returns its URL.
func (r *receiver) url(path string) string { return r.base + path }

func (r *receiver) trust(path string, ep *registry.Endpoint) {
	var secrets []webhook.Secret
	for _, s := range ep.Secrets {
		sec, err := webhook.ParseSecret(s)
		if err != nil {
			r.t.Fatal(err)
		}
		secrets = append(secrets, sec)
	}
	v, err := webhook.NewVerifier(secrets)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.verifiers[path] = v
	r.mu.Unlock()
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	v := r.verifiers[req.URL.Path]
	r.mu.Unlock()
	if v == nil || v.Verify(req.Header, body) != nil {
		r.badSig.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("delivery body is not JSON: %v: %s", err, body)
	}
	d := delivery{ID: req.Header.Get("Webhook-Id"), Attempt: req.Header.Get("Webhook-Attempt"), Timestamp: req.Header.Get("Webhook-Timestamp"), Body: m, Status: http.StatusNoContent}
	if f := r.fail.Load(); f != nil && (*f)(req.URL.Path) {
		d.Status = http.StatusInternalServerError
	}
	if f := r.respond.Load(); f != nil {
		if st := (*f)(req.URL.Path, d); st != 0 {
			d.Status = st
		}
	}
	r.mu.Lock()
	r.tried[req.URL.Path] = append(r.tried[req.URL.Path], d)
	r.mu.Unlock()
	if d.Status >= 300 {
		r.rejections.Add(1)
		w.WriteHeader(d.Status)
		_, _ = io.WriteString(w, `{"error":"the test receiver says no"}`)
		return
	}
	for _, h := range []string{"Content-Type", "User-Agent", "Webhook-Event", "Webhook-Attempt"} {
		if req.Header.Get(h) == "" {
			r.t.Errorf("delivery without %s header", h)
		}
	}
	r.mu.Lock()
	r.got[req.URL.Path] = append(r.got[req.URL.Path], d)
	r.mu.Unlock()
	w.WriteHeader(d.Status)
}

// receivedAll reports whether every id of ids reached each of paths.
func receivedAll[V any](r *receiver, ids map[string]V, paths ...string) bool {
	for _, p := range paths {
		got := r.ids(p)
		for id := range ids {
			if got[id] == 0 {
				return false
			}
		}
	}
	return true
}

// ids returns the distinct webhook ids path received.
func (r *receiver) ids(path string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, d := range r.got[path] {
		out[d.ID]++
	}
	return out
}

// attempts returns every verified request path got, failed ones included.
func (r *receiver) attempts(path string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.tried[path]...)
}

func (r *receiver) deliveries(path string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got[path]...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
