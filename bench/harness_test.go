package bench

// The shared harness: one scenario's slice of a test cluster (env), the
// pipeline stages run in-process, local receivers, and the delivery log the
// rates are computed from. It is written for benchmarks whose iterations are
// whole runs; everything an env starts is torn down by env.close, in reverse.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/metrics"
	"github.com/hookstream/hookstream/pkg/pipelinetest"
	"github.com/hookstream/hookstream/pkg/webhook"
	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/schemas"
)

// envVerbose sends the services' debug logs to stderr; without it only
// warnings and errors are shown.
const envVerbose = "HOOKSTREAM_BENCH_VERBOSE"

// env is one run's slice of a shared cluster (pkg/pipelinetest). Unlike a test's, it is torn down by close, at the end
// of the run: a benchmark's iterations are whole runs.
type env struct {
	*pipelinetest.Env
	tb      testing.TB
	closers []func()
}

func benchLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv(envVerbose) != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newEnv creates the core topics under a fresh prefix and opens the registry
// and a producer. Call close when the run is over; it also deletes the
// run's topics (kfake keeps all data in this process's heap, and a later
// run must not pay for an earlier one's garbage-collection work).
func newEnv(tb testing.TB, cluster *kafkatest.Cluster) *env {
	tb.Helper()
	e := &env{tb: tb}
	// Should New fail halfway (tb.Fatal), the caller never gets e to close:
	// what New started so far is stopped when the benchmark ends instead.
	// close is idempotent, so a run that closes e leaves nothing to do.
	tb.Cleanup(e.close)
	e.Env = pipelinetest.New(tb, cluster, pipelinetest.WithPrefix("b"), pipelinetest.WithLogger(benchLogger()),
		pipelinetest.WithCleanup(e.defer_), pipelinetest.WithDeleteTopics())
	return e
}

// defer_ registers f to run at close, before what was registered earlier.
func (e *env) defer_(f func()) { e.closers = append(e.closers, f) }

// close tears down everything the env started, last started first.
func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// delivererConfig is the deliverer's production configuration: every
// delivery setting (in-flight limits, queue size, attempt timeout, retry
// schedule, breaker, commit interval) at its default. Two exceptions that
// play no part in what is measured: private targets are allowed (the
// receivers are on loopback), and the shutdown deadline is short, so that
// tearing a run down does not wait out the attempts a black hole holds.
func (e *env) delivererConfig() deliverer.Config {
	cfg := e.DelivererConfig()
	cfg.AllowPrivateTargets, cfg.ShutdownTimeout = true, 2*time.Second
	return cfg
}

// sampleEvents returns n events of tenant, cycling through the catalog's
// types with each type's example data (bodies of a few hundred bytes, as
// real ones).
func (e *env) sampleEvents(tenant string, n int) []producer.Event {
	e.tb.Helper()
	types := e.Catalog.Types()
	data := make(map[string]json.RawMessage, len(types))
	for _, typ := range types {
		b, err := fs.ReadFile(schemas.FS, "events/"+typ+"/example.json")
		if err != nil {
			e.tb.Fatalf("no example for %s: %v", typ, err)
		}
		data[typ] = b
	}
	evs := make([]producer.Event, n)
	for i := range evs {
		typ := types[i%len(types)]
		evs[i] = producer.Event{Type: typ, TenantID: tenant, Data: data[typ]}
	}
	return evs
}

// publish publishes evs with PublishBatch, chunk events at a time, and
// returns how long it took.
func (e *env) publish(evs []producer.Event, chunk int) time.Duration {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	for len(evs) > 0 {
		n := min(chunk, len(evs))
		if _, err := e.Producer.PublishBatch(ctx, evs[:n]); err != nil {
			e.tb.Fatal(err)
		}
		evs = evs[n:]
	}
	return time.Since(start)
}

// waitMetric polls the env's metrics until the sum of name's series reaches
// want, failing the benchmark after timeout.
func (e *env) waitMetric(name string, want float64, timeout time.Duration) {
	e.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := e.metric(name)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("%s is %v after %v, want %v", name, got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the sum of the series named name whose labels include
// every name=value pair of labels.
func (e *env) metric(name string, labels ...string) float64 {
	v, err := metrics.Sum(e.Metrics, name, labels...)
	if err != nil {
		e.tb.Fatal(err)
	}
	return v
}

// dumpMetrics logs every non-zero series: the first thing to read when a
// run fails.
func (e *env) dumpMetrics() { metrics.Dump(e.Metrics, e.tb.Logf) }

// sampler records, every interval while a run delivers, the healthy
// deliveries so far and the deliverer's in-flight and queued gauges: a
// deliverer held back by something other than CPU shows as in-flight well
// below its limits.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
	rows []sample
}

type sample struct {
	At        time.Duration
	Delivered int64
	InFlight  float64
	Queued    float64
}

func (e *env) sample(log *deliveryLog, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.rows = append(s.rows, sample{
					At: time.Since(start), Delivered: log.n.Load(),
					InFlight: e.metric("hookstream_deliverer_inflight_requests"),
					Queued:   e.metric("hookstream_deliverer_queued_records"),
				})
			}
		}
	}()
	return s
}

// halt stops sampling; it may be called more than once.
func (s *sampler) halt() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// finish stops sampling and returns the mean in-flight and queued values.
func (s *sampler) finish() (inflight, queued float64) {
	s.halt()
	for _, r := range s.rows {
		inflight += r.InFlight
		queued += r.Queued
	}
	if n := float64(len(s.rows)); n > 0 {
		inflight, queued = inflight/n, queued/n
	}
	return inflight, queued
}

// writeCSV writes the samples to path.
func (s *sampler) writeCSV(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("seconds,delivered,inflight,queued\n")
	for _, r := range s.rows {
		fmt.Fprintf(&b, "%.3f,%d,%.0f,%.0f\n", r.At.Seconds(), r.Delivered, r.InFlight, r.Queued)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// deliveryLog records when every distinct delivery arrived, across
// receivers, to compute rates from.
type deliveryLog struct {
	base  time.Time
	n     atomic.Int64
	times []int64 // nanoseconds since base, in arrival slots; beyond cap: counted only
}

func newDeliveryLog(expected int) *deliveryLog {
	return &deliveryLog{base: time.Now(), times: make([]int64, expected)}
}

func (l *deliveryLog) record() {
	if i := l.n.Add(1) - 1; i < int64(len(l.times)) {
		atomic.StoreInt64(&l.times[i], int64(time.Since(l.base)))
	}
}

// sorted returns the recorded arrival times, ascending. Call it once no
// delivery is being recorded any more.
func (l *deliveryLog) sorted() []time.Duration {
	n := min(int(l.n.Load()), len(l.times))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(atomic.LoadInt64(&l.times[i]))
	}
	slices.Sort(out)
	return out
}

// rates is what a delivery log says about throughput.
type rates struct {
	Deliveries  int     `json:"deliveries"`
	Seconds     float64 `json:"seconds"`        // first to last delivery
	PerSecond   float64 `json:"per_second"`     // Deliveries over Seconds
	SteadyRate  float64 `json:"steady_per_sec"` // between the 10th and the 90th percentile of arrivals
	FirstAfterS float64 `json:"first_after_s"`  // from the deliverer's start to the first delivery
}

// rates computes throughput from first to last delivery, and over the steady
// middle 80 % of arrivals (no ramp-up, no tail). start is when the delivering
// stage started.
func (l *deliveryLog) rates(start time.Time) rates {
	ts := l.sorted()
	var r rates
	r.Deliveries = len(ts)
	if len(ts) < 2 {
		return r
	}
	span := ts[len(ts)-1] - ts[0]
	r.Seconds = span.Seconds()
	if span > 0 {
		r.PerSecond = float64(len(ts)-1) / span.Seconds()
	}
	lo, hi := len(ts)/10, len(ts)*9/10
	if w := ts[hi] - ts[lo]; w > 0 {
		r.SteadyRate = float64(hi-lo) / w.Seconds()
	}
	r.FirstAfterS = (l.base.Add(ts[0]).Sub(start)).Seconds()
	return r
}

// receiver is a well-behaved webhook receiver on its own loopback port (its
// own host, as distinct customers' endpoints are): it verifies every
// request's Standard Webhooks signature, counts each webhook id once, logs
// the arrival in a shared deliveryLog and answers 204.
type receiver struct {
	URL    string
	Secret string // the endpoint's signing secret, whsec_…

	v   *webhook.Verifier
	log *deliveryLog

	mu          sync.Mutex
	seen        map[string]struct{}
	first, last time.Time

	distinct atomic.Int64
	dups     atomic.Int64
	badSig   atomic.Int64
}

// receiver starts a verifying receiver with a fresh secret; give its URL and
// Secret to the endpoint.
func (e *env) receiver(log *deliveryLog) *receiver {
	e.tb.Helper()
	sec, err := webhook.NewSecret()
	if err != nil {
		e.tb.Fatal(err)
	}
	v, err := webhook.NewVerifier([]webhook.Secret{sec})
	if err != nil {
		e.tb.Fatal(err)
	}
	r := &receiver{Secret: sec.String(), v: v, log: log, seen: map[string]struct{}{}}
	r.URL = e.serve(r) + "/hook"
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := r.v.Verify(req.Header, body); err != nil {
		r.badSig.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get(deliverer.HeaderID)
	r.mu.Lock()
	_, dup := r.seen[id]
	if !dup {
		r.seen[id] = struct{}{}
		now := time.Now()
		if r.first.IsZero() {
			r.first = now
		}
		r.last = now
	}
	r.mu.Unlock()
	if dup {
		r.dups.Add(1)
	} else {
		r.distinct.Add(1)
		r.log.record()
	}
	w.WriteHeader(http.StatusNoContent)
}

// rate is the receiver's own distinct deliveries per second, first to last.
func (r *receiver) rate() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.seen); n > 1 && r.last.After(r.first) {
		return float64(n-1) / r.last.Sub(r.first).Seconds()
	}
	return 0
}

// serve runs h on a fresh loopback port until the env closes and returns
// its base URL.
func (e *env) serve(h http.Handler) string {
	e.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e.defer_(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// statusServer answers every request with one status (a receiver that fails
// everything: 500) after reading the body, and counts the requests.
type statusServer struct {
	URL      string
	status   int
	requests atomic.Int64
}

func (e *env) statusServer(status int) *statusServer {
	s := &statusServer{status: status}
	s.URL = e.serve(s) + "/hook"
	return s
}

func (s *statusServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.requests.Add(1)
	_, _ = io.Copy(io.Discard, req.Body)
	w.WriteHeader(s.status)
	_, _ = io.WriteString(w, `{"error":"always failing"}`)
}

// blackHole accepts TCP connections, reads whatever arrives and never
// answers: every attempt to it lasts the deliverer's whole attempt timeout.
type blackHole struct {
	URL      string
	ln       net.Listener
	accepted atomic.Int64
	open     atomic.Int64
	peak     atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (e *env) blackHole() *blackHole {
	e.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.tb.Fatal(err)
	}
	h := &blackHole{URL: "http://" + ln.Addr().String() + "/hook", ln: ln, conns: map[net.Conn]struct{}{}}
	go h.accept()
	e.defer_(h.close)
	return h
}

func (h *blackHole) accept() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.accepted.Add(1)
		if n := h.open.Add(1); n > h.peak.Load() {
			h.peak.Store(n) // racy max; only the accept loop writes it
		}
		h.mu.Lock()
		h.conns[c] = struct{}{}
		h.mu.Unlock()
		go func() {
			_, _ = io.Copy(io.Discard, c) // until the client gives up
			h.mu.Lock()
			delete(h.conns, c)
			h.mu.Unlock()
			c.Close()
			h.open.Add(-1)
		}()
	}
}

func (h *blackHole) close() {
	h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.Close()
	}
}
