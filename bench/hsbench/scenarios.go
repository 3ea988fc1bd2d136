package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// BrokerResult holds every figure measured on one broker.
type BrokerResult struct {
	Broker string `json:"broker"`
	// JIT is the real Kafka broker's JIT (full or quick), "" for kfake.
	JIT string `json:"jit,omitempty"`
	// WarmupSeconds is how long the unmeasured warm-up took (0: none).
	WarmupSeconds float64           `json:"warmup_seconds,omitempty"`
	Throughput    *ThroughputResult `json:"throughput"`
	HalfRate      *HalfRateResult   `json:"half_rate"`
	// Trickle is the same measurement at a low fixed rate: the floor.
	Trickle *HalfRateResult `json:"trickle,omitempty"`
	// AtLeastOnce is the half-rate and trickle measurement again with the
	// router restarted with --guarantee=at-least-once (same rates).
	AtLeastOnce *LatencyRuns `json:"at_least_once,omitempty"`
	// TxnFloor is the broker's floor for one transactional hop, no
	// Hookstream code: the router's write path alone.
	TxnFloor *TxnFloorResult `json:"txn_floor,omitempty"`
	Baseline *BaselineResult `json:"baseline"`
	Ratio    float64         `json:"pipeline_over_baseline"`
	// The same loop on the deliverer's own HTTP client (fasthttp).
	BaselineFast *BaselineResult  `json:"baseline_fasthttp"`
	RatioFast    float64          `json:"pipeline_over_baseline_fasthttp"`
	Scale        []*ScaleResult   `json:"scale,omitempty"`
	Isolation    *IsolationResult `json:"isolation,omitempty"`
}

type ThroughputResult struct {
	Endpoints        int     `json:"endpoints"`
	Deliveries       int     `json:"deliveries"`
	DataBytes        int     `json:"data_bytes"`
	PerSecond        float64 `json:"delivered_per_second"`
	Seconds          float64 `json:"seconds"`
	CPUPer1000       float64 `json:"cpu_seconds_per_1000_total"`
	PipelineCPU1000  float64 `json:"cpu_seconds_per_1000_pipeline"` // router + deliverer + broker
	RouterCPU1000    float64 `json:"cpu_seconds_per_1000_router"`
	DelivererCPU1000 float64 `json:"cpu_seconds_per_1000_deliverer"`
	BrokerCPU1000    float64 `json:"cpu_seconds_per_1000_broker"`
	RouterRSSMB      float64 `json:"router_peak_rss_mb"`
	DelivererRSSMB   float64 `json:"deliverer_peak_rss_mb"`
	BrokerRSSMB      float64 `json:"broker_peak_rss_mb"`
	BadSignatures    int64   `json:"bad_signatures"`
}

type HalfRateResult struct {
	TargetPerSecond float64 `json:"target_per_second"`
	PerSecond       float64 `json:"delivered_per_second"`
	P50ms           float64 `json:"p50_ms"`
	P95ms           float64 `json:"p95_ms"`
	P99ms           float64 `json:"p99_ms"`
	Samples         int64   `json:"samples"`
	CPUPer1000      float64 `json:"cpu_seconds_per_1000_total"`
	// Per process: router, deliverer, broker, and this benchmark's own
	// (receivers verifying signatures, the publisher).
	RouterCPU1000    float64 `json:"cpu_seconds_per_1000_router"`
	DelivererCPU1000 float64 `json:"cpu_seconds_per_1000_deliverer"`
	BrokerCPU1000    float64 `json:"cpu_seconds_per_1000_broker"`
	BenchCPU1000     float64 `json:"cpu_seconds_per_1000_receivers_publisher"`
	// Stages splits the latency with the services' own histograms (see
	// stageMetrics): to_router, router_txn, to_deliverer, http.
	Stages map[string]StageLatency `json:"stages,omitempty"`
}

// LatencyRuns are the latency measurements of one router configuration.
type LatencyRuns struct {
	HalfRate *HalfRateResult `json:"half_rate"`
	Trickle  *HalfRateResult `json:"trickle,omitempty"`
}

type BaselineResult struct {
	Client      string  `json:"client"`
	Concurrency int     `json:"concurrency"`
	PerSecond   float64 `json:"requests_per_second"`
	CPUPer1000  float64 `json:"cpu_seconds_per_1000"`
}

type ScaleResult struct {
	Endpoints   int     `json:"endpoints"`
	Deliveries  int     `json:"deliveries"`
	PerSecond   float64 `json:"delivered_per_second"`
	OfMainRun   float64 `json:"fraction_of_100_endpoint_rate"`
	JoinSeconds float64 `json:"deliverer_join_to_first_delivery_seconds"`
	// RouterPerSecond is the router's fan-out rate alone (from its start
	// until it has routed the whole backlog), before any deliverer runs.
	RouterPerSecond float64 `json:"router_alone_per_second"`
	// PipelinePerSecond is a second batch of as many events delivered with
	// router and deliverer started together on its backlog, as in the
	// 100-endpoint throughput run; PerSecond is the deliverer alone on a
	// routed backlog.
	PipelinePerSecond float64 `json:"pipeline_delivered_per_second"`
	PipelineOfMainRun float64 `json:"pipeline_fraction_of_100_endpoint_rate"`
	// ReferencePerSecond (largest scale run only, unless
	// -scale-reference=false) are the rates of two pipelines of as many
	// events to the throughput run's endpoints, right before and right after
	// this run; PipelineOfReference is PipelinePerSecond over their mean.
	ReferencePerSecond  []float64 `json:"reference_pipelines_per_second,omitempty"`
	PipelineOfReference float64   `json:"pipeline_fraction_of_reference,omitempty"`
	// ReferenceCPU1000 is the two reference pipelines' mean CPU per 1,000
	// deliveries by process, measured as the pipeline phase's is.
	ReferenceCPU1000 *ProcessCPU `json:"reference_pipelines_cpu_seconds_per_1000,omitempty"`
	SetupSeconds     float64     `json:"setup_seconds"`
	RouterRSSMB      float64     `json:"router_peak_rss_mb"`
	DelivererRSSMB   float64     `json:"deliverer_peak_rss_mb"`
	// CPU seconds per 1,000 deliveries of the pipeline batch, by process
	// (receivers and publisher: hsbench itself).
	PipelineRouterCPU1000    float64 `json:"pipeline_cpu_seconds_per_1000_router"`
	PipelineDelivererCPU1000 float64 `json:"pipeline_cpu_seconds_per_1000_deliverer"`
	PipelineBrokerCPU1000    float64 `json:"pipeline_cpu_seconds_per_1000_broker"`
	PipelineBenchCPU1000     float64 `json:"pipeline_cpu_seconds_per_1000_receivers"`
}

// ProcessCPU is CPU seconds per 1,000 deliveries by process: router,
// deliverer, broker and hsbench's receivers.
type ProcessCPU struct {
	Router    float64 `json:"router"`
	Deliverer float64 `json:"deliverer"`
	Broker    float64 `json:"broker"`
	Receivers float64 `json:"receivers"`
}

// IsolationResult is the median round's figures (by ratio) and every round.
type IsolationResult struct {
	Healthy        int              `json:"healthy_endpoints"`
	Events         int              `json:"events"`
	IsolationRound                  // the median round
	Rounds         []IsolationRound `json:"rounds"`
}

// IsolationRound is one pair of runs, side by side in time: the healthy
// endpoints alone and beside the black hole.
type IsolationRound struct {
	Baseline      float64 `json:"healthy_per_second_alone"`
	WithBlackHole float64 `json:"healthy_per_second_with_black_hole"`
	Ratio         float64 `json:"ratio"`
}

func runBroker(ctx context.Context, o options, kind, dir string) (*BrokerResult, error) {
	fmt.Fprintf(os.Stderr, "hsbench: starting %s\n", kind)
	br, err := startBroker(ctx, kind, o.bin, o.repo, dir, o.brokerJIT)
	if err != nil {
		return nil, err
	}
	defer br.stop()
	res := &BrokerResult{Broker: kind}
	if kind == "kafka" {
		res.JIT = o.brokerJIT
	}
	if o.warmupEvents > 0 {
		if res.WarmupSeconds, err = warmup(ctx, o, br, dir); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	if o.floorSeconds > 0 {
		fmt.Fprintf(os.Stderr, "hsbench: %s: transactional hop alone for %ds (floor)\n", kind, o.floorSeconds)
		if res.TxnFloor, err = txnFloor(ctx, br, 20, time.Duration(o.floorSeconds)*time.Second); err != nil {
			return nil, fmt.Errorf("transaction floor: %w", err)
		}
	}
	if err := throughput(ctx, o, br, dir, res); err != nil {
		return nil, fmt.Errorf("throughput: %w", err)
	}
	if res.Baseline, err = baseline(ctx, o, br, dir, "net/http"); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if res.Baseline.PerSecond > 0 {
		res.Ratio = res.Throughput.PerSecond / res.Baseline.PerSecond
	}
	if res.BaselineFast, err = baseline(ctx, o, br, dir, "fasthttp"); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if res.BaselineFast.PerSecond > 0 {
		res.RatioFast = res.Throughput.PerSecond / res.BaselineFast.PerSecond
	}
	if !o.skipScale {
		largest := slices.Max(o.scale)
		for _, n := range o.scale {
			// The largest run, the one the target is about, is
			// bracketed by two 100-endpoint pipelines of the same size:
			// the host's speed drifts in minutes, and the throughput run
			// is minutes away.
			var refs []float64
			var refCPU ProcessCPU
			if o.scaleRef && n == largest {
				rate, cpu, err := referencePipeline(ctx, o, br, dir, "before")
				if err != nil {
					return nil, fmt.Errorf("scale %d: reference: %w", n, err)
				}
				refs, refCPU = append(refs, rate), cpu
			}
			sr, err := scaleRun(ctx, o, br, dir, n)
			if err != nil {
				return nil, fmt.Errorf("scale %d: %w", n, err)
			}
			if len(refs) > 0 {
				rate, cpu, err := referencePipeline(ctx, o, br, dir, "after")
				if err != nil {
					return nil, fmt.Errorf("scale %d: reference: %w", n, err)
				}
				sr.ReferencePerSecond = append(refs, rate)
				sr.PipelineOfReference = sr.PipelinePerSecond / ((refs[0] + rate) / 2)
				sr.ReferenceCPU1000 = &ProcessCPU{(refCPU.Router + cpu.Router) / 2, (refCPU.Deliverer + cpu.Deliverer) / 2,
					(refCPU.Broker + cpu.Broker) / 2, (refCPU.Receivers + cpu.Receivers) / 2}
			}
			sr.OfMainRun = sr.PerSecond / res.Throughput.PerSecond
			sr.PipelineOfMainRun = sr.PipelinePerSecond / res.Throughput.PerSecond
			res.Scale = append(res.Scale, sr)
		}
	}
	if !o.skipIso {
		if res.Isolation, err = isolation(ctx, o, br, dir); err != nil {
			return nil, fmt.Errorf("isolation: %w", err)
		}
	}
	return res, nil
}

// warmup delivers o.warmupEvents events through a pipeline of its own (its
// own topics, groups and receivers) and returns how long it took. Nothing of
// it is measured: it leaves the broker as a long-running one is, its JIT
// compiled and its heap sized, so the runs after it measure the steady state
// rather than a cold JVM.
func warmup(ctx context.Context, o options, br *broker, dir string) (float64, error) {
	fmt.Fprintf(os.Stderr, "hsbench: %s: warm-up, %d events\n", br.kind, o.warmupEvents)
	start := time.Now()
	s, err := newStage(ctx, o, br, dir, "wu", min(o.endpoints, 50))
	if err != nil {
		return 0, err
	}
	defer s.close()
	if err := s.addEndpoints(ctx, o.endpoints, tenantOf(o.endpoints), nil); err != nil {
		return 0, err
	}
	if err := s.publish(ctx, o.warmupEvents, tenantOf(o.endpoints)); err != nil {
		return 0, err
	}
	if err := s.runPipeline(ctx, int64(o.warmupEvents)); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// runPipeline starts the stage's router and deliverer together on what is
// already published, and waits until the receivers have had want
// deliveries in all.
func (s *stage) runPipeline(ctx context.Context, want int64) error {
	if err := s.startRouter(); err != nil {
		return err
	}
	if err := s.startDeliverer(); err != nil {
		return err
	}
	return s.waitDelivered(ctx, want, 10*time.Minute)
}

func tenantOf(m int) func(int) string { return func(i int) string { return "t" + strconv.Itoa(i%m) } }

// throughput measures the maximum rate on a backlog, then latency at half
// it and at a trickle, then (o.atLeastOnce) the same latencies again with an
// at-least-once router. It fills res's Throughput, HalfRate, Trickle and
// AtLeastOnce.
func throughput(ctx context.Context, o options, br *broker, dir string, res *BrokerResult) error {
	s, err := newStage(ctx, o, br, dir, "tp", min(o.endpoints, 50))
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.addEndpoints(ctx, o.endpoints, tenantOf(o.endpoints), nil); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "hsbench: %s: publishing %d events\n", br.kind, o.events)
	if err := s.publish(ctx, o.events, tenantOf(o.endpoints)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "hsbench: %s: delivering\n", br.kind)
	b0, self0 := br.cpu(), selfCPU()
	start := time.Now()
	if err := s.runPipeline(ctx, int64(o.events)); err != nil {
		return err
	}
	el := time.Since(start)
	rc, dc, bc, sc := cpuSeconds(s.router.pid()), cpuSeconds(s.deliv.pid()), br.cpu()-b0, selfCPU()-self0
	k := float64(o.events) / 1000
	tr := &ThroughputResult{
		Endpoints: o.endpoints, Deliveries: o.events, DataBytes: len(s.data),
		PerSecond: s.recv.marks.steadyRate(int64(o.events)), Seconds: el.Seconds(),
		RouterCPU1000: rc / k, DelivererCPU1000: dc / k, BrokerCPU1000: bc / k,
		PipelineCPU1000: (rc + dc + bc) / k, CPUPer1000: (rc + dc + bc + sc) / k,
		RouterRSSMB: peakRSSMB(s.router.pid()), DelivererRSSMB: peakRSSMB(s.deliv.pid()), BrokerRSSMB: br.rssMB(),
		BadSignatures: s.recv.badSig.Load(),
	}
	res.Throughput = tr
	fmt.Fprintf(os.Stderr, "hsbench: %s: %.0f deliveries/s\n", br.kind, tr.PerSecond)

	// Half the maximum rate, published steadily; latency after a warm-up.
	rate := tr.PerSecond / 2
	if o.latencyRate > 0 {
		rate = o.latencyRate
	}
	delivered := int64(o.events)
	runs, err := s.latencyRuns(ctx, rate, &delivered)
	if err != nil {
		return err
	}
	res.HalfRate, res.Trickle = runs.HalfRate, runs.Trickle
	if o.atLeastOnce {
		s.router.stop(30 * time.Second)
		if err := s.startRouter("--guarantee", "at-least-once"); err != nil {
			return err
		}
		if err := s.routerJoined(ctx, time.Minute); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "hsbench: %s: router restarted with --guarantee=at-least-once\n", br.kind)
		if res.AtLeastOnce, err = s.latencyRuns(ctx, rate, &delivered); err != nil {
			return err
		}
	}
	return nil
}

// latencyRuns measures latency at rate, then, after those events are all
// delivered, at the trickle rate (unless it is 0). delivered is how many
// deliveries the stage has had so far; it is advanced past the runs'.
func (s *stage) latencyRuns(ctx context.Context, rate float64, delivered *int64) (*LatencyRuns, error) {
	o, kind := s.o, s.br.kind
	fmt.Fprintf(os.Stderr, "hsbench: %s: %.0f events/s for %ds (latency)\n", kind, rate, o.halfSeconds)
	hr, sent, err := s.latency(ctx, rate, time.Duration(o.halfSeconds)*time.Second)
	if err != nil {
		return nil, err
	}
	*delivered += sent
	runs := &LatencyRuns{HalfRate: hr}
	// A trickle: the pipeline's latency floor, with the machine nearly idle,
	// after the half-rate events are all in, so none of them counts.
	if o.trickleRate > 0 {
		if err := s.waitDelivered(ctx, *delivered, time.Minute); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "hsbench: %s: %.0f events/s for %ds (trickle)\n", kind, o.trickleRate, o.trickleSeconds)
		if runs.Trickle, sent, err = s.latency(ctx, o.trickleRate, time.Duration(o.trickleSeconds)*time.Second); err != nil {
			return nil, err
		}
		*delivered += sent
	}
	// Let the tail drain before the services stop or change.
	return runs, s.waitDelivered(ctx, *delivered, time.Minute)
}

// latency publishes rate events/s for d and measures the deliveries of all
// but the first 2 s (the warm-up): latency quantiles, CPU per process and
// the split by stage. It returns how many events it published.
func (s *stage) latency(ctx context.Context, rate float64, d time.Duration) (*HalfRateResult, int64, error) {
	br := s.br
	hr := &HalfRateResult{TargetPerSecond: rate}
	s.recv.lat.reset()
	var sent atomic.Int64
	pubCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type mark struct {
		r, d, b, self float64
		n             int64
		t             time.Time
		h             histograms
	}
	warm := make(chan mark, 1)
	go func() {
		select {
		case <-time.After(2 * time.Second):
		case <-pubCtx.Done():
		}
		m := mark{cpuSeconds(s.router.pid()), cpuSeconds(s.deliv.pid()), br.cpu(), selfCPU(), s.recv.delivered.Load(), time.Now(), nil}
		s.recv.recording.Store(true)
		m.h = s.scrapeStages(ctx)
		warm <- m
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	pstart := time.Now()
	i := 0
	for pubCtx.Err() == nil {
		<-tick.C
		due := int(rate * time.Since(pstart).Seconds())
		for ; i < due; i++ {
			r, err := s.record("t" + strconv.Itoa(i%s.o.endpoints))
			if err != nil {
				tick.Stop()
				return nil, 0, err
			}
			s.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err == nil {
					sent.Add(1)
				}
			})
		}
	}
	tick.Stop()
	_ = s.cl.Flush(ctx)
	m0 := <-warm
	if m0.h != nil {
		if h1 := s.scrapeStages(ctx); h1 != nil {
			hr.Stages = stageLatencies(m0.h, h1)
		}
	}
	n1, t1 := s.recv.delivered.Load(), time.Now()
	r1, d1, bb1, ss1 := cpuSeconds(s.router.pid()), cpuSeconds(s.deliv.pid()), br.cpu(), selfCPU()
	s.recv.recording.Store(false)
	qs, samples := s.recv.lat.quantiles(0.5, 0.95, 0.99)
	hr.P50ms, hr.P95ms, hr.P99ms, hr.Samples = qs[0], qs[1], qs[2], samples
	if n1 > m0.n {
		hr.PerSecond = float64(n1-m0.n) / t1.Sub(m0.t).Seconds()
		k := float64(n1-m0.n) / 1000
		hr.CPUPer1000 = ((r1 - m0.r) + (d1 - m0.d) + (bb1 - m0.b) + (ss1 - m0.self)) / k
		hr.RouterCPU1000, hr.DelivererCPU1000, hr.BrokerCPU1000, hr.BenchCPU1000 = (r1-m0.r)/k, (d1-m0.d)/k, (bb1-m0.b)/k, (ss1-m0.self)/k
	}
	return hr, sent.Load(), nil
}

// baseline posts the same signed bodies to the same receivers with the
// deliverer's concurrency, no Kafka: what the machine can do at all. client
// is "net/http" (a plain Go HTTP client, the baseline) or
// "fasthttp" (the deliverer's default Sender, so the ratio shows what the
// pipeline around the same HTTP client costs).
func baseline(ctx context.Context, o options, br *broker, dir, client string) (*BaselineResult, error) {
	s, err := newStage(ctx, o, br, dir, "bl", min(o.endpoints, 50))
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.addEndpoints(ctx, o.endpoints, tenantOf(o.endpoints), nil); err != nil {
		return nil, err
	}
	env, err := s.cat.DecodeEnvelope(must(s.record("t0")).Value)
	if err != nil {
		return nil, err
	}
	_, dataJSON, err := s.cat.DataToJSON(env.Data)
	if err != nil {
		return nil, err
	}
	body := []byte(fmt.Sprintf(`{"id":%q,"type":"resource.created","timestamp":%q,"tenant_id":"t0","data":%s,"previous_data":null}`,
		env.ID, env.OccurredAt.Format("2006-01-02T15:04:05.000Z07:00"), dataJSON))
	conc := o.endpoints * o.inflight
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxIdleConns: 0, IdleConnTimeout: 90 * time.Second}}
	fast := deliverer.NewFastSender(conc, true)
	var n atomic.Int64
	deadline := time.Now().Add(time.Duration(o.baseSeconds) * time.Second)
	self0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		ep := s.eps[w%len(s.eps)]
		secrets := make([]webhook.Secret, len(ep.Secrets))
		for i, raw := range ep.Secrets {
			secrets[i], _ = webhook.ParseSecret(raw)
		}
		signer := webhook.NewSigner(secrets...)
		url := s.recv.url(w%len(s.eps), ep.ID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				now := time.Now()
				if client == "fasthttp" {
					h := make(http.Header, 6)
					h.Set("Content-Type", "application/json")
					signer.SetHeaders(h, env.ID, now, body)
					actx, cancel := context.WithTimeout(ctx, 15*time.Second)
					res := fast.Send(actx, &deliverer.Request{URL: url, Header: h, Body: body})
					cancel()
					if res.Err == nil && res.Status < 300 {
						n.Add(1)
					}
					continue
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				signer.SetHeaders(req.Header, env.ID, now, body)
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 300 {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	res := &BaselineResult{Client: client, Concurrency: conc, PerSecond: float64(n.Load()) / el}
	if n.Load() > 0 {
		res.CPUPer1000 = (selfCPU() - self0) / (float64(n.Load()) / 1000)
	}
	fmt.Fprintf(os.Stderr, "hsbench: %s: %s baseline %.0f requests/s\n", br.kind, client, res.PerSecond)
	return res, nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// scaleRun routes a backlog to n endpoints first, then starts a deliverer
// and times how long it takes to join and deliver, and at what rate.
func scaleRun(ctx context.Context, o options, br *broker, dir string, n int) (*ScaleResult, error) {
	fmt.Fprintf(os.Stderr, "hsbench: %s: scale run with %d endpoints\n", br.kind, n)
	setup := time.Now()
	s, err := newStage(ctx, o, br, dir, "sc", min(n, 50))
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.addEndpoints(ctx, n, tenantOf(n), nil); err != nil {
		return nil, err
	}
	events := max(o.scaleEvents, n)
	if err := s.publish(ctx, events, tenantOf(n)); err != nil {
		return nil, err
	}
	routerStart := time.Now()
	if err := s.startRouter(); err != nil {
		return nil, err
	}
	if err := s.routerCaughtUp(ctx, 5*time.Minute); err != nil {
		return nil, err
	}
	res := &ScaleResult{Endpoints: n, Deliveries: events, SetupSeconds: time.Since(setup).Seconds(),
		RouterPerSecond: float64(events) / time.Since(routerStart).Seconds()}
	fmt.Fprintf(os.Stderr, "hsbench: %s: %d endpoints: routed by the router alone at %.0f/s; deliverer joining\n", br.kind, n, res.RouterPerSecond)
	join := time.Now()
	if err := s.startDeliverer(); err != nil {
		return nil, err
	}
	for s.recv.delivered.Load() == 0 {
		if !s.deliv.alive() {
			return nil, fmt.Errorf("deliverer exited: %s", s.deliv.tail(20))
		}
		if time.Since(join) > 3*time.Minute {
			return nil, fmt.Errorf("no delivery %v after the deliverer started", time.Since(join))
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.JoinSeconds = time.Since(join).Seconds()
	if err := s.waitDelivered(ctx, int64(events), 10*time.Minute); err != nil {
		return nil, err
	}
	res.PerSecond = s.recv.marks.steadyRate(int64(events))
	res.RouterRSSMB, res.DelivererRSSMB = peakRSSMB(s.router.pid()), peakRSSMB(s.deliv.pid())

	// The whole pipeline: both stopped, a second backlog, both started
	// together, as the 100-endpoint throughput run measures it.
	s.router.stop(30 * time.Second)
	s.deliv.stop(40 * time.Second)
	if err := s.publish(ctx, events, tenantOf(n)); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "hsbench: %s: %d endpoints: router and deliverer together on %d more events\n", br.kind, n, events)
	b0, self0 := br.cpu(), selfCPU()
	if err := s.runPipeline(ctx, int64(2*events)); err != nil {
		return nil, err
	}
	c := s.cpuPer1000(b0, self0, events)
	res.PipelineRouterCPU1000, res.PipelineDelivererCPU1000, res.PipelineBrokerCPU1000, res.PipelineBenchCPU1000 = c.Router, c.Deliverer, c.Broker, c.Receivers
	res.PipelinePerSecond = s.recv.marks.steadyRateFrom(int64(events), int64(2*events))
	res.RouterRSSMB = max(res.RouterRSSMB, peakRSSMB(s.router.pid()))
	res.DelivererRSSMB = max(res.DelivererRSSMB, peakRSSMB(s.deliv.pid()))
	fmt.Fprintf(os.Stderr, "hsbench: %s: %d endpoints: deliverer alone %.0f/s, router alone %.0f/s, together %.0f/s, join %.1fs, deliverer %.0f MB\n",
		br.kind, n, res.PerSecond, res.RouterPerSecond, res.PipelinePerSecond, res.JoinSeconds, res.DelivererRSSMB)
	return res, nil
}

// referencePipeline delivers o.scaleEvents events to o.endpoints endpoints
// with router and deliverer started together on the backlog, as a scale
// run's pipeline phase does, and returns the steady rate and the CPU per
// 1,000 deliveries by process, measured as the pipeline phase's is.
func referencePipeline(ctx context.Context, o options, br *broker, dir, when string) (float64, ProcessCPU, error) {
	fmt.Fprintf(os.Stderr, "hsbench: %s: %d-endpoint reference pipeline (%s)\n", br.kind, o.endpoints, when)
	s, err := newStage(ctx, o, br, dir, "rf"+when[:1], min(o.endpoints, 50))
	if err != nil {
		return 0, ProcessCPU{}, err
	}
	defer s.close()
	if err := s.addEndpoints(ctx, o.endpoints, tenantOf(o.endpoints), nil); err != nil {
		return 0, ProcessCPU{}, err
	}
	events := o.scaleEvents
	if err := s.publish(ctx, events, tenantOf(o.endpoints)); err != nil {
		return 0, ProcessCPU{}, err
	}
	b0, self0 := br.cpu(), selfCPU()
	if err := s.runPipeline(ctx, int64(events)); err != nil {
		return 0, ProcessCPU{}, err
	}
	rate := s.recv.marks.steadyRate(int64(events))
	fmt.Fprintf(os.Stderr, "hsbench: %s: %d-endpoint reference pipeline (%s): %.0f/s\n", br.kind, o.endpoints, when, rate)
	return rate, s.cpuPer1000(b0, self0, events), nil
}

// cpuPer1000 is the CPU per 1,000 of events deliveries by process of a
// pipeline whose router and deliverer started for it: their whole CPU, and
// the broker's and hsbench's since b0 and self0.
func (s *stage) cpuPer1000(b0, self0 float64, events int) ProcessCPU {
	k := float64(events) / 1000
	return ProcessCPU{cpuSeconds(s.router.pid()) / k, cpuSeconds(s.deliv.pid()) / k, (s.br.cpu() - b0) / k, (selfCPU() - self0) / k}
}

// isolation measures the healthy endpoints' rate alone and beside a black
// hole in o.isoRounds rounds, each a pair of runs next to each other in
// time (alternating which goes first, so a drift of the host's speed
// cancels), and keeps the round with the median ratio. This machine's
// speed moves by up to a factor of two within minutes; one pair of
// seconds-long runs can show that as an isolation failure or a gain.
func isolation(ctx context.Context, o options, br *broker, dir string) (*IsolationResult, error) {
	const healthy = 20
	res := &IsolationResult{Healthy: healthy, Events: o.isoEvents}
	for round := range o.isoRounds {
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		var r IsolationRound
		for _, withHole := range order {
			rate, err := isolationRun(ctx, o, br, dir, healthy, withHole)
			if err != nil {
				return nil, err
			}
			if withHole {
				r.WithBlackHole = rate
			} else {
				r.Baseline = rate
			}
		}
		if r.Baseline > 0 {
			r.Ratio = r.WithBlackHole / r.Baseline
		}
		fmt.Fprintf(os.Stderr, "hsbench: %s: isolation round %d: %.0f/s alone, %.0f/s with a black hole (%.0f%%)\n", br.kind, round+1, r.Baseline, r.WithBlackHole, 100*r.Ratio)
		res.Rounds = append(res.Rounds, r)
	}
	res.IsolationRound = medianRound(res.Rounds)
	return res, nil
}

// medianRound is the round with the median ratio (the lower middle one of
// an even count).
func medianRound(rs []IsolationRound) IsolationRound {
	if len(rs) == 0 {
		return IsolationRound{}
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b IsolationRound) int { return cmp.Compare(a.Ratio, b.Ratio) })
	return s[(len(s)-1)/2]
}

// isolationRun delivers o.isoEvents events to healthy endpoints (and, with
// withHole, to one more that never answers) through a fresh pipeline and
// returns the healthy endpoints' steady delivery rate.
func isolationRun(ctx context.Context, o options, br *broker, dir string, healthy int, withHole bool) (float64, error) {
	s, err := newStage(ctx, o, br, dir, "iso", healthy)
	if err != nil {
		return 0, err
	}
	defer s.close()
	if err := s.addEndpoints(ctx, healthy, func(int) string { return "acme" }, nil); err != nil {
		return 0, err
	}
	if withHole {
		hole, err := newBlackHole()
		if err != nil {
			return 0, err
		}
		defer hole.close()
		if err := s.addEndpoints(ctx, 1, func(int) string { return "acme" }, func(int, string) string { return hole.url() }); err != nil {
			return 0, err
		}
	}
	if err := s.publish(ctx, o.isoEvents, func(int) string { return "acme" }); err != nil {
		return 0, err
	}
	if err := s.startRouter(); err != nil {
		return 0, err
	}
	if err := s.startDeliverer("--shutdown-timeout", "2s"); err != nil {
		return 0, err
	}
	want := int64(healthy * o.isoEvents)
	if err := s.waitDelivered(ctx, want, 10*time.Minute); err != nil {
		return 0, err
	}
	return s.recv.marks.steadyRate(want), nil
}

func printTable(w io.Writer, res *Results) {
	fmt.Fprintf(w, "\nHookstream benchmark — %s — %s\n\n", res.Date, res.Machine)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(name string, f func(r *BrokerResult) string) {
		fmt.Fprint(tw, name)
		for _, r := range res.Runs {
			fmt.Fprint(tw, "\t"+f(r))
		}
		fmt.Fprintln(tw)
	}
	row("", func(r *BrokerResult) string { return r.Broker })
	row("broker JIT, unmeasured warm-up", func(r *BrokerResult) string {
		jit := r.JIT
		if jit == "" {
			jit = "(Go)"
		}
		if r.WarmupSeconds == 0 {
			return jit + ", none"
		}
		return fmt.Sprintf("%s, %.0f s", jit, r.WarmupSeconds)
	})
	row("delivered/s (100 endpoints, 1 KB)", func(r *BrokerResult) string { return fmt.Sprintf("%.0f", r.Throughput.PerSecond) })
	row("bare signed-HTTP baseline/s (net/http)", func(r *BrokerResult) string { return fmt.Sprintf("%.0f", r.Baseline.PerSecond) })
	row("pipeline / baseline (net/http)", func(r *BrokerResult) string { return fmt.Sprintf("%.0f %%", 100*r.Ratio) })
	row("bare baseline on fasthttp/s, pipeline / it", func(r *BrokerResult) string {
		return fmt.Sprintf("%.0f, %.0f %%", r.BaselineFast.PerSecond, 100*r.RatioFast)
	})
	row("CPU s per 1,000 (all processes)", func(r *BrokerResult) string { return fmt.Sprintf("%.3f", r.Throughput.CPUPer1000) })
	row("  router / deliverer / broker", func(r *BrokerResult) string {
		t := r.Throughput
		return fmt.Sprintf("%.3f / %.3f / %.3f", t.RouterCPU1000, t.DelivererCPU1000, t.BrokerCPU1000)
	})
	row("peak RSS router / deliverer (MB)", func(r *BrokerResult) string {
		return fmt.Sprintf("%.0f / %.0f", r.Throughput.RouterRSSMB, r.Throughput.DelivererRSSMB)
	})
	row("half rate: delivered/s", func(r *BrokerResult) string { return fmt.Sprintf("%.0f", r.HalfRate.PerSecond) })
	row("half rate: p50 / p95 / p99 ms", func(r *BrokerResult) string {
		h := r.HalfRate
		return fmt.Sprintf("%.1f / %.1f / %.1f", h.P50ms, h.P95ms, h.P99ms)
	})
	row("half rate: CPU s per 1,000", func(r *BrokerResult) string { return fmt.Sprintf("%.3f", r.HalfRate.CPUPer1000) })
	row("  router / deliverer / broker / receivers", func(r *BrokerResult) string {
		h := r.HalfRate
		return fmt.Sprintf("%.3f / %.3f / %.3f / %.3f", h.RouterCPU1000, h.DelivererCPU1000, h.BrokerCPU1000, h.BenchCPU1000)
	})
	row("trickle: events/s, p50 / p95 / p99 ms", func(r *BrokerResult) string {
		if r.Trickle == nil {
			return "-"
		}
		t := r.Trickle
		return fmt.Sprintf("%.0f, %.1f / %.1f / %.1f", t.PerSecond, t.P50ms, t.P95ms, t.P99ms)
	})
	row("at-least-once router: half rate p50 / p95 / p99 ms", func(r *BrokerResult) string {
		if r.AtLeastOnce == nil {
			return "-"
		}
		h := r.AtLeastOnce.HalfRate
		return fmt.Sprintf("%.1f / %.1f / %.1f", h.P50ms, h.P95ms, h.P99ms)
	})
	row("at-least-once router: trickle p50 / p95 / p99 ms", func(r *BrokerResult) string {
		if r.AtLeastOnce == nil || r.AtLeastOnce.Trickle == nil {
			return "-"
		}
		t := r.AtLeastOnce.Trickle
		return fmt.Sprintf("%.1f / %.1f / %.1f", t.P50ms, t.P95ms, t.P99ms)
	})
	row("txn hop alone (20 partitions): p50 / p99 ms", func(r *BrokerResult) string {
		f := r.TxnFloor
		if f == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f / %.1f (%.0f txn/s)", f.VisibleP50ms, f.VisibleP99ms, f.PerSecond)
	})
	row("by stage: →router / router batch / →deliverer / HTTP", func(r *BrokerResult) string { return "" })
	row("  half rate, mean ms", func(r *BrokerResult) string {
		return formatStages(r.HalfRate.Stages, func(l StageLatency) float64 { return l.MeanMs })
	})
	row("  half rate, p99 ms", func(r *BrokerResult) string {
		return formatStages(r.HalfRate.Stages, func(l StageLatency) float64 { return l.P99ms })
	})
	row("  trickle, mean ms", func(r *BrokerResult) string {
		if r.Trickle == nil {
			return "-"
		}
		return formatStages(r.Trickle.Stages, func(l StageLatency) float64 { return l.MeanMs })
	})
	row("  at-least-once half rate, mean ms", func(r *BrokerResult) string {
		if r.AtLeastOnce == nil {
			return "-"
		}
		return formatStages(r.AtLeastOnce.HalfRate.Stages, func(l StageLatency) float64 { return l.MeanMs })
	})
	row("  at-least-once half rate, p99 ms", func(r *BrokerResult) string {
		if r.AtLeastOnce == nil {
			return "-"
		}
		return formatStages(r.AtLeastOnce.HalfRate.Stages, func(l StageLatency) float64 { return l.P99ms })
	})
	if len(res.Runs) > 0 {
		for i := range res.Runs[0].Scale {
			n := res.Runs[0].Scale[i].Endpoints
			row(fmt.Sprintf("%d endpoints: delivered/s, pipeline (of 100-ep)", n), func(r *BrokerResult) string {
				if i >= len(r.Scale) || r.Scale[i].PipelinePerSecond == 0 {
					return "-"
				}
				s := r.Scale[i]
				return fmt.Sprintf("%.0f (%.0f %%)", s.PipelinePerSecond, 100*s.PipelineOfMainRun)
			})
			if len(res.Runs[0].Scale[i].ReferencePerSecond) == 2 {
				row(fmt.Sprintf("%d endpoints: 100-ep pipelines before / after /s (pipeline of their mean)", n), func(r *BrokerResult) string {
					if i >= len(r.Scale) || len(r.Scale[i].ReferencePerSecond) != 2 {
						return "-"
					}
					s := r.Scale[i]
					return fmt.Sprintf("%.0f / %.0f (%.0f %%)", s.ReferencePerSecond[0], s.ReferencePerSecond[1], 100*s.PipelineOfReference)
				})
			}
			row(fmt.Sprintf("%d endpoints: deliverer alone on a routed backlog/s (of 100-ep)", n), func(r *BrokerResult) string {
				if i >= len(r.Scale) {
					return "-"
				}
				s := r.Scale[i]
				return fmt.Sprintf("%.0f (%.0f %%)", s.PerSecond, 100*s.OfMainRun)
			})
			row(fmt.Sprintf("%d endpoints: router alone, fan-out/s", n), func(r *BrokerResult) string {
				if i >= len(r.Scale) || r.Scale[i].RouterPerSecond == 0 {
					return "-"
				}
				return fmt.Sprintf("%.0f", r.Scale[i].RouterPerSecond)
			})
			row(fmt.Sprintf("%d endpoints: RSS router / deliverer MB", n), func(r *BrokerResult) string {
				if i >= len(r.Scale) {
					return "-"
				}
				return fmt.Sprintf("%.0f / %.0f", r.Scale[i].RouterRSSMB, r.Scale[i].DelivererRSSMB)
			})
			row(fmt.Sprintf("%d endpoints: pipeline CPU s/1,000 rt / dl / broker / recv", n), func(r *BrokerResult) string {
				if i >= len(r.Scale) || r.Scale[i].PipelineDelivererCPU1000 == 0 {
					return "-"
				}
				sc := r.Scale[i]
				return fmt.Sprintf("%.3f / %.3f / %.3f / %.3f", sc.PipelineRouterCPU1000, sc.PipelineDelivererCPU1000, sc.PipelineBrokerCPU1000, sc.PipelineBenchCPU1000)
			})
			if res.Runs[0].Scale[i].ReferenceCPU1000 != nil {
				row(fmt.Sprintf("%d endpoints: 100-ep pipelines CPU s/1,000 rt / dl / broker / recv", n), func(r *BrokerResult) string {
					if i >= len(r.Scale) || r.Scale[i].ReferenceCPU1000 == nil {
						return "-"
					}
					c := r.Scale[i].ReferenceCPU1000
					return fmt.Sprintf("%.3f / %.3f / %.3f / %.3f", c.Router, c.Deliverer, c.Broker, c.Receivers)
				})
			}
			row(fmt.Sprintf("%d endpoints: deliverer join → delivery s", n), func(r *BrokerResult) string {
				if i >= len(r.Scale) {
					return "-"
				}
				return fmt.Sprintf("%.1f", r.Scale[i].JoinSeconds)
			})
		}
	}
	row("isolation, median round: 20 healthy alone / with hole /s", func(r *BrokerResult) string {
		if r.Isolation == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f / %.0f (%.0f %%)", r.Isolation.Baseline, r.Isolation.WithBlackHole, 100*r.Isolation.Ratio)
	})
	row("isolation: ratio of each round", func(r *BrokerResult) string {
		if r.Isolation == nil || len(r.Isolation.Rounds) == 0 {
			return "-"
		}
		var parts []string
		for _, rd := range r.Isolation.Rounds {
			parts = append(parts, fmt.Sprintf("%.0f %%", 100*rd.Ratio))
		}
		return strings.Join(parts, ", ")
	})
	_ = tw.Flush()
	fmt.Fprintln(w)
}
