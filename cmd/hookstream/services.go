package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/metrics"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/router"
)

// stack is what every service needs: the catalog, the core topics, and the
// registry view.
type stack struct {
	kcfg kafka.Config
	cat  *codec.Catalog
	reg  *registry.Registry
	log  *slog.Logger
}

func openStack(ctx context.Context, kcfg kafka.Config, log *slog.Logger) (*stack, error) {
	cat, err := codec.Default()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kcfg.ClientOpts("admin")...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := kcfg.EnsureTopics(tctx, kadm.NewClient(cl), kcfg.CoreTopics()...); err != nil {
		return nil, fmt.Errorf("cannot reach Kafka at %v or create the core topics: %w", kcfg.Brokers, err)
	}
	reg, err := registry.Open(tctx, kcfg, cat, registry.WithLogger(log))
	if err != nil {
		return nil, err
	}
	return &stack{kcfg: kcfg, cat: cat, reg: reg, log: log}, nil
}

func (s *stack) Close() { s.reg.Close() }

// serveMetrics serves /metrics (and /healthz) on addr until ctx ends; an
// empty addr serves nothing.
func serveMetrics(ctx context.Context, addr string, g prometheus.Gatherer, log *slog.Logger, withPprof bool) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(g))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", httppprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", httppprof.Profile)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

type serviceFlags struct {
	kafka                   kafkaFlags
	log                     logFlags
	metricsAddr, group, iid string
	session                 time.Duration
	cpuprofile              string
	memoryLimitMiB          int
	pprof                   bool
}

func (s *serviceFlags) register(f *flags, defMetrics, defGroup string) {
	s.kafka.register(f)
	s.log.register(f)
	f.str(&s.metricsAddr, "metrics-addr", defMetrics, "listen address of /metrics and /healthz (empty = off)")
	f.str(&s.group, "group", defGroup, "consumer group (deployments sharing a cluster are separated by --topic-prefix; give each its own group too)")
	f.duration(&s.session, "session-timeout", 10*time.Second, "how long the group waits for a silent (crashed) member before moving its partitions")
	f.str(&s.iid, "instance-id", "", "static group membership id, stable per instance (e.g. the pod name): a restart takes its partitions back at once")
	f.str(&s.cpuprofile, "cpuprofile", "", "write a CPU profile of this process to the file until it exits (for benchmarks)")
	f.boolean(&s.pprof, "pprof", false, "also serve Go's /debug/pprof/ profiles on --metrics-addr (heap, goroutines, CPU)")
	f.integer(&s.memoryLimitMiB, "memory-limit-mib", 256, "soft memory limit of the Go runtime in MiB: the garbage collector works harder near it (0 = none; GOMEMLIMIT, if set, wins)")
}

// applyMemoryLimit sets the runtime's soft memory limit unless GOMEMLIMIT
// is set. With GOGC at 400 the heap may grow to five times the live data
// between collections; the limit keeps that headroom from becoming RSS.
func (s *serviceFlags) applyMemoryLimit() error {
	if s.memoryLimitMiB < 0 {
		return fmt.Errorf("--memory-limit-mib: %d is negative", s.memoryLimitMiB)
	}
	if s.memoryLimitMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(s.memoryLimitMiB) << 20)
	}
	return nil
}

// profile starts the CPU profile if asked for; the returned func stops it.
func (s *serviceFlags) profile() (stop func(), err error) {
	if s.cpuprofile == "" {
		return func() {}, nil
	}
	f, err := os.Create(s.cpuprofile)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// setup returns the Kafka configuration (with franz-go client metrics
// hooked into promReg), the logger and the metrics registry.
func (s *serviceFlags) setup(stderr io.Writer) (kafka.Config, *slog.Logger, *prometheus.Registry, error) {
	kcfg, err := s.kafka.config()
	if err != nil {
		return kcfg, nil, nil, err
	}
	log, err := s.log.logger(stderr)
	if err != nil {
		return kcfg, nil, nil, err
	}
	if err := s.applyMemoryLimit(); err != nil {
		return kcfg, nil, nil, err
	}
	return kcfg, log, instrument(&kcfg), nil
}

// instrument returns a metrics registry with the Go and process collectors
// and hooks franz-go's client metrics (hookstream_kafka_…) into every client
// kcfg makes.
func instrument(kcfg *kafka.Config) *prometheus.Registry {
	promReg := newRegistry()
	var mu sync.Mutex
	seen := map[string]int{}
	kcfg.Hook = func(clientID string) kgo.Hook {
		mu.Lock()
		seen[clientID]++
		label := clientID
		if n := seen[clientID]; n > 1 {
			label = fmt.Sprintf("%s-%d", clientID, n)
		}
		mu.Unlock()
		return kprom.NewMetrics("hookstream_kafka", kprom.Registerer(promReg), kprom.WithStaticLabel(prometheus.Labels{"client": label}))
	}
	return promReg
}

// exportLag registers the consumer lag of the groups with promReg.
func exportLag(kcfg kafka.Config, promReg *prometheus.Registry, groups ...string) (closeFn func(), err error) {
	cl, err := kgo.NewClient(kcfg.ClientOpts("lag")...)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		promReg.MustRegister(metrics.NewLagCollector(kadm.NewClient(cl), g, 10*time.Second))
	}
	return cl.Close, nil
}

func runRouter(ctx context.Context, args []string, _, stderr io.Writer) error {
	f := newFlags("router", "Consume the events topic and fan each event out to the topics of its subscribed endpoints, transactionally.", stderr)
	var sf serviceFlags
	var txnID string
	var maxPoll int
	var linger, commitInterval time.Duration
	var compression, guarantee string
	sf.register(f, "127.0.0.1:9464", router.DefaultGroup)
	f.str(&guarantee, "guarantee", string(router.ExactlyOnce), "exactly-once (fan-out and offsets in one transaction) or at-least-once (idempotent writes, offsets committed after them: lower latency, a crash may fan out the last --commit-interval again)")
	f.duration(&commitInterval, "commit-interval", time.Second, "at-least-once only: how often the written events' offsets are committed")
	f.str(&txnID, "transactional-id", "", "transactional id, stable per instance and unique between instances (default <group>-<hostname>)")
	f.integer(&maxPoll, "max-poll-records", router.DefaultMaxPollRecords, "most events routed in one batch (one transaction, or one acknowledged write with at-least-once)")
	f.str(&compression, "compression", "none", "compression of endpoint-topic batches: none, lz4, zstd, snappy or gzip (none keeps the deliverer's memory bounded by its fetch sizes)")
	f.duration(&linger, "txn-linger", 10*time.Millisecond, "exactly-once only: how long a transaction gathers more events after its first (fewer commits, less broker work; 0 commits each poll at once)")
	if err := parseFlags(f, args); err != nil {
		return err
	}
	switch g := router.Guarantee(guarantee); { // before touching Kafka
	case g != router.ExactlyOnce && g != router.AtLeastOnce:
		fmt.Fprintf(stderr, "hookstream router: --guarantee must be %s or %s, got %q\n", router.ExactlyOnce, router.AtLeastOnce, guarantee)
		return errUsage
	case commitInterval < router.MinCommitInterval:
		fmt.Fprintf(stderr, "hookstream router: --commit-interval must be at least %v, got %v\n", router.MinCommitInterval, commitInterval)
		return errUsage
	}
	kcfg, log, promReg, err := sf.setup(stderr)
	if err != nil {
		return err
	}
	stopProfile, err := sf.profile()
	if err != nil {
		return err
	}
	defer stopProfile()
	st, err := openStack(ctx, kcfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	closeLag, err := exportLag(kcfg, promReg, sf.group)
	if err != nil {
		return err
	}
	defer closeLag()
	if err := serveMetrics(ctx, sf.metricsAddr, promReg, log, sf.pprof); err != nil {
		return err
	}
	r, err := router.New(router.Config{
		Kafka: kcfg, Group: sf.group, Guarantee: router.Guarantee(guarantee), CommitInterval: commitInterval,
		TransactionalID: txnID, SessionTimeout: sf.session, InstanceID: sf.iid,
		MaxPollRecords: maxPoll, TxnLinger: lingerOrOff(linger), Compression: compression, Logger: log, Registerer: promReg,
	}, st.reg, st.cat)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

type delivererFlags struct {
	inflight, inflightTotal, inflightEndpoint, queued, queuedTotal, breakerFailures, retryPartitions int
	attemptTimeout, commitInterval, shutdownTTL, inflightLease                                       time.Duration
	breakerOpen, autoDisable                                                                         time.Duration
	schedule, httpClient                                                                             string
	jitter                                                                                           float64
	retry4xx, allowPrivate                                                                           bool
}

func (d *delivererFlags) register(f *flags) {
	f.integer(&d.inflight, "max-inflight-per-partition", 16, "concurrent jobs per partition")
	f.integer(&d.inflightTotal, "max-inflight", 1024, "deliveries in flight across all partitions of this process (bounds memory with thousands of endpoints)")
	f.duration(&d.inflightLease, "inflight-lease", 2*time.Second, "how long one delivery counts against --max-inflight at most, so hanging endpoints cannot use it up")
	f.integer(&d.inflightEndpoint, "max-inflight-per-endpoint", 64, "concurrent POSTs per endpoint (an endpoint's own max_in_flight overrides it)")
	f.integer(&d.queued, "max-queued-per-partition", 64, "fetched records a partition holds before its fetching pauses")
	f.integer(&d.queuedTotal, "max-queued", 16384, "fetched records the deliverer holds across all partitions; past it each partition keeps only an equal share (bounds memory)")
	f.duration(&d.attemptTimeout, "attempt-timeout", 15*time.Second, "timeout of one delivery attempt")
	f.str(&d.schedule, "retry-schedule", deliverer.DefaultSchedule.String(), "delays before each retry, comma-separated; one retry topic per distinct delay")
	f.float(&d.jitter, "retry-jitter", 0.2, "spread of each retry delay, as a fraction (0.2 = ±20 %)")
	f.boolean(&d.retry4xx, "retry-client-errors", false, "retry 4xx answers (other than 408/410/429) instead of dead-lettering them at once")
	f.integer(&d.retryPartitions, "retry-partitions", 6, "partitions of each retry topic when the deliverer creates it")
	f.integer(&d.breakerFailures, "breaker-failures", 5, "consecutive failed attempts that open an endpoint's circuit breaker")
	f.duration(&d.breakerOpen, "breaker-open-timeout", 30*time.Second, "how long a breaker stays open before one probe goes through")
	f.duration(&d.autoDisable, "auto-disable-after", 5*24*time.Hour, "disable an endpoint that has failed continuously this long")
	f.str(&d.httpClient, "http-client", deliverer.HTTPClientFast, "HTTP client for deliveries: fasthttp (HTTP/1.1, least CPU) or net/http (HTTP/2 where offered; honours HTTPS_PROXY with --allow-private-targets)")
	f.boolean(&d.allowPrivate, "allow-private-targets", false, "allow endpoint URLs that resolve to loopback, private or link-local addresses (refused by default: customers choose the URLs)")
	f.duration(&d.commitInterval, "commit-interval", time.Second, "how often settled offsets are committed")
	f.duration(&d.shutdownTTL, "shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight attempts")
}

// validate checks the flags that can be wrong without Kafka.
func (d *delivererFlags) validate() error {
	if _, err := deliverer.ParseSchedule(d.schedule); err != nil {
		return fmt.Errorf("--retry-schedule: %w", err)
	}
	if err := deliverer.CheckHTTPClient(d.httpClient); err != nil {
		return fmt.Errorf("--http-client: %w", err)
	}
	if d.jitter < 0 || d.jitter >= 1 {
		return fmt.Errorf("--retry-jitter must be in [0, 1), got %v", d.jitter)
	}
	for name, v := range map[string]int{"--retry-partitions": d.retryPartitions, "--max-inflight-per-partition": d.inflight, "--max-inflight": d.inflightTotal,
		"--max-inflight-per-endpoint": d.inflightEndpoint, "--max-queued-per-partition": d.queued, "--max-queued": d.queuedTotal, "--breaker-failures": d.breakerFailures} {
		if v < 1 || v > math.MaxInt32 {
			return fmt.Errorf("%s must be 1..%d, got %d", name, math.MaxInt32, v)
		}
	}
	for name, v := range map[string]time.Duration{"--attempt-timeout": d.attemptTimeout, "--inflight-lease": d.inflightLease,
		"--commit-interval": d.commitInterval, "--shutdown-timeout": d.shutdownTTL, "--breaker-open-timeout": d.breakerOpen,
		"--auto-disable-after": d.autoDisable} {
		if v <= 0 {
			return fmt.Errorf("%s must be positive, got %v", name, v)
		}
	}
	return nil
}

func (d *delivererFlags) config(kcfg kafka.Config, log *slog.Logger, reg prometheus.Registerer) (deliverer.Config, error) {
	if err := d.validate(); err != nil {
		return deliverer.Config{}, err
	}
	sched, err := deliverer.ParseSchedule(d.schedule)
	if err != nil {
		return deliverer.Config{}, fmt.Errorf("--retry-schedule: %w", err)
	}
	jitter := d.jitter
	if jitter == 0 {
		jitter = -1 // explicit: no jitter
	}
	return deliverer.Config{
		Kafka: kcfg, MaxInFlightPerPartition: d.inflight, MaxInFlight: d.inflightTotal, InFlightLease: d.inflightLease, MaxInFlightPerEndpoint: d.inflightEndpoint,
		MaxQueuedPerPartition: d.queued, MaxQueued: d.queuedTotal, AttemptTimeout: d.attemptTimeout,
		Schedule: sched, Jitter: jitter, RetryClientErrors: d.retry4xx, RetryPartitions: int32(d.retryPartitions),
		BreakerFailures: d.breakerFailures, BreakerOpenTimeout: d.breakerOpen, AutoDisableAfter: d.autoDisable,
		CommitInterval: d.commitInterval, ShutdownTimeout: d.shutdownTTL,
		AllowPrivateTargets: d.allowPrivate, HTTPClient: d.httpClient,
		Logger: log, Registerer: reg,
	}, nil
}

func runDeliverer(ctx context.Context, args []string, _, stderr io.Writer) error {
	f := newFlags("deliverer", "Consume the endpoint topics, sign each record per Standard Webhooks and POST it to its endpoint.", stderr)
	var sf serviceFlags
	var df delivererFlags
	sf.register(f, "127.0.0.1:9465", deliverer.DefaultGroup)
	df.register(f)
	if err := parseFlags(f, args); err != nil {
		return err
	}
	if err := df.validate(); err != nil { // before touching Kafka
		fmt.Fprintf(stderr, "hookstream deliverer: %v\n", err)
		return errUsage
	}
	kcfg, log, promReg, err := sf.setup(stderr)
	if err != nil {
		return err
	}
	stopProfile, err := sf.profile()
	if err != nil {
		return err
	}
	defer stopProfile()
	st, err := openStack(ctx, kcfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	closeLag, err := exportLag(kcfg, promReg, sf.group)
	if err != nil {
		return err
	}
	defer closeLag()
	if err := serveMetrics(ctx, sf.metricsAddr, promReg, log, sf.pprof); err != nil {
		return err
	}
	dcfg, err := df.config(kcfg, log, promReg)
	if err != nil {
		return err
	}
	dcfg.Group, dcfg.SessionTimeout, dcfg.InstanceID = sf.group, sf.session, sf.iid
	d, err := deliverer.New(dcfg, st.reg, st.cat)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// lingerOrOff maps the flag's 0 (no linger) to the Config's "off" value.
func lingerOrOff(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
