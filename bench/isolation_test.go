package bench

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
)

// The isolation benchmark of the delivery-guarantees issue: one endpoint
// that black-holes (accepts the connection, never answers) or answers 500 to
// everything must not slow the others. With 20 healthy endpoints and one bad
// one, the healthy endpoints' delivery rate must stay at least 90 % of their
// rate without it.

var (
	isoEvents = flag.Int("isolation.events", 0,
		"events per run of BenchmarkIsolation; every endpoint subscribes to all of them (default $HOOKSTREAM_BENCH_EVENTS or 20000)")
	isoHealthy  = flag.Int("isolation.healthy", 20, "healthy endpoints in BenchmarkIsolation")
	isoBad      = flag.Int("isolation.bad", 1, "bad endpoints (black holes, or 500 answerers) in the faulty scenarios")
	isoBadParts = flag.Int("isolation.bad-partitions", 1, "partitions of each bad endpoint's topic (healthy ones have 1, the default)")
	isoRounds   = flag.Int("isolation.rounds", 3,
		"rounds of the three scenarios, each round in a rotated order; the figures are the medians (one run varies by about ±10 %, so 1 is only a quick look)")
	isoTimeout = flag.Duration("isolation.timeout", 10*time.Minute, "longest one BenchmarkIsolation run may take to deliver everything")
	isoStall   = flag.Duration("isolation.stall", 90*time.Second,
		"fail a run whose healthy endpoints get nothing for this long (longer than the breaker's open time plus an attempt timeout)")
	benchDump = flag.String("bench.goroutines", "",
		"directory to write a goroutine dump into halfway through each run (for finding what is contended)")
	benchTrace = flag.String("bench.trace", "",
		"directory to write each run's samples of deliveries, in-flight and queued records into (CSV, every 100ms)")
	benchResults = flag.String("bench.results", "results", "directory the result files are written to")
)

// defaultIsolationEvents makes a run deliver 400,000 times to the healthy
// endpoints: about 25 s at the ~17,000 deliveries/s a 2-core machine
// manages, so that the black hole's attempts reach the deliverer's 15 s
// attempt timeout, open its breaker and go to the retry tier inside the
// measured window, and that a run is long enough for a rate to mean
// something. 2,000 events (about 3 s) measure only the held connections.
const defaultIsolationEvents = 20000

const (
	isoTenant  = "bench"
	isoTarget  = 0.90 // the bar: healthy rate with a bad endpoint / without
	isoResults = "isolation.json"

	faultNone      = ""
	faultBlackHole = "blackhole"
	fault500       = "failing500"
)

func isolationEvents(tb testing.TB) int {
	if *isoEvents > 0 {
		return *isoEvents
	}
	if s := os.Getenv("HOOKSTREAM_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			tb.Fatalf("HOOKSTREAM_BENCH_EVENTS=%q: want a positive number", s)
		}
		return n
	}
	return defaultIsolationEvents
}

// isolationResult is one scenario's figures.
type isolationResult struct {
	Scenario string `json:"scenario"`
	// Healthy is the healthy endpoints' deliveries together: the figure
	// compared across scenarios is Healthy.PerSecond (first to last).
	Healthy rates `json:"healthy"`
	// SlowestEndpoint is the lowest per-endpoint rate among the healthy ones.
	SlowestEndpoint float64 `json:"slowest_endpoint_per_sec"`
	Duplicates      int64   `json:"duplicates"`
	// CPUMicrosPerDelivery is this process's CPU time (user+system) while
	// the deliverer ran, per healthy delivery. It covers the deliverer, the
	// receivers and, on kfake, the broker; it moves much less than the rates
	// with other load on the machine.
	CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
	// MeanInFlight and MeanQueued are the deliverer's in-flight attempts and
	// queued records, averaged over the run (sampled every 100ms).
	MeanInFlight float64 `json:"mean_inflight"`
	MeanQueued   float64 `json:"mean_queued"`
	// OtherCPU is how many cores the rest of the machine kept busy while
	// the deliverer ran (on real Kafka, the broker included): the rates are
	// only comparable between runs that had about the same.
	OtherCPU       float64 `json:"other_cpu_cores"`
	PublishSeconds float64 `json:"publish_seconds"`
	RouteSeconds   float64 `json:"route_seconds"` // publish start to fan-out of every event committed
	// Faulty describes what the bad endpoint got, when there is one.
	Faulty *faultyStats `json:"faulty,omitempty"`
	// Deliverer is a snapshot of the deliverer's counters when the last
	// healthy delivery arrived.
	Deliverer map[string]float64 `json:"deliverer"`
	// Runs sums up every run when there were several; the other fields are
	// of the run with the median rate.
	Runs []runSummary `json:"runs,omitempty"`
}

// runSummary is one run in brief: its healthy rate, CPU per delivery, and
// the cores this process and the rest of the machine kept busy.
type runSummary struct {
	Rate         float64 `json:"per_sec"`
	CPUMicros    float64 `json:"cpu_us_per_delivery"`
	ProcessCores float64 `json:"process_cores"`
	OtherCores   float64 `json:"other_cores"`
}

func (r *isolationResult) summary() runSummary {
	return runSummary{
		Rate: round(r.Healthy.PerSecond, 1), CPUMicros: round(r.CPUMicrosPerDelivery, 1),
		ProcessCores: round(r.Healthy.PerSecond*r.CPUMicrosPerDelivery/1e6, 2), OtherCores: round(r.OtherCPU, 2),
	}
}

func (s runSummary) String() string {
	return fmt.Sprintf("%.0f/s (%.0f µs, %.2f+%.2f cores)", s.Rate, s.CPUMicros, s.ProcessCores, s.OtherCores)
}

type faultyStats struct {
	Kind      string `json:"kind"`
	Endpoints int    `json:"endpoints"`
	// Requests is how many requests the 500 server answered, or how many
	// connections the black hole accepted.
	Requests int64 `json:"requests"`
	// PeakOpenConns is the most connections the black holes held at once
	// (the sum of each one's peak).
	PeakOpenConns int64 `json:"peak_open_conns,omitempty"`
}

type isolationScenario struct {
	name  string
	fault string
}

var isolationScenarios = []isolationScenario{
	{"baseline", faultNone},
	{"blackhole", faultBlackHole},
	{"failing500", fault500},
}

// BenchmarkIsolation measures the healthy endpoints' delivery rate with 20
// healthy endpoints alone (baseline), plus one black hole, and plus one
// endpoint answering 500. Each iteration is a full run: a backlog of events
// fanned out to every endpoint, then delivered by a deliverer with its
// production settings. Run it with -benchtime 1x:
//
//	go test -run '^$' -bench BenchmarkIsolation -benchtime 1x -timeout 30m ./bench/
//
// Each scenario runs -isolation.rounds times (default 3), in a rotated
// order; the figures compared are the medians. It prints the three rates and
// the ratios to the baseline, and writes them to bench/results/isolation.json
// (one entry per broker kind).
func BenchmarkIsolation(b *testing.B) {
	cluster := kafkatest.Start(b)
	events, healthy := isolationEvents(b), *isoHealthy
	if healthy < 1 || *isoBad < 1 || *isoBadParts < 1 || *isoBadParts > registry.MaxPartitions {
		b.Fatalf("-isolation.healthy=%d -isolation.bad=%d -isolation.bad-partitions=%d: want at least 1 of each, at most %d partitions",
			healthy, *isoBad, *isoBadParts, registry.MaxPartitions)
	}
	runs := map[string][]isolationResult{}
	for rnd := range max(1, *isoRounds) {
		// Rotate the order each round: background load and anything a run
		// leaves behind then weigh on every scenario alike.
		n := len(isolationScenarios)
		for i := range n {
			sc := isolationScenarios[(rnd+i)%n]
			b.Run(sc.name, func(b *testing.B) {
				var r isolationResult
				for range b.N {
					r = runIsolation(b, cluster, sc, events, healthy, *isoBad)
					runs[sc.name] = append(runs[sc.name], r)
				}
				b.ReportMetric(r.Healthy.PerSecond, "healthy_deliveries/s")
				b.ReportMetric(r.Healthy.SteadyRate, "steady_deliveries/s")
				b.ReportMetric(r.SlowestEndpoint, "slowest_endpoint_deliveries/s")
				b.ReportMetric(r.CPUMicrosPerDelivery, "cpu_us/delivery")
			})
		}
	}
	results := map[string]*isolationResult{}
	for name, rs := range runs {
		results[name] = median(rs)
	}
	reportIsolation(b, cluster.Kind, events, healthy, *isoBad, results)
}

// median returns the run with the median healthy rate, with every run's
// rate in Runs when there were several.
func median(runs []isolationResult) *isolationResult {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(x, y isolationResult) int { return cmp.Compare(x.Healthy.PerSecond, y.Healthy.PerSecond) })
	r := runs[len(runs)/2]
	if len(runs) > 1 {
		for _, x := range runs {
			r.Runs = append(r.Runs, x.summary())
		}
	}
	return &r
}

// runIsolation is one full run of a scenario. The timer runs only while the
// deliverer delivers.
func runIsolation(b *testing.B, cluster *kafkatest.Cluster, sc isolationScenario, events, healthy, bad int) isolationResult {
	b.StopTimer()
	e := newEnv(b, cluster)
	defer e.close()

	res := isolationResult{Scenario: sc.name}
	var (
		holes   []*blackHole
		failing []*statusServer
	)
	endpoints := healthy
	for range bad {
		var url string
		switch sc.fault {
		case faultBlackHole:
			h := e.blackHole()
			holes, url = append(holes, h), h.URL
		case fault500:
			f := e.statusServer(http.StatusInternalServerError)
			failing, url = append(failing, f), f.URL
		default:
			continue
		}
		e.CreateEndpoint(registry.Endpoint{TenantID: isoTenant, URL: url, EventTypes: []string{"*"}, Partitions: int32(*isoBadParts), Description: sc.fault})
		endpoints++
	}
	log := newDeliveryLog(events * healthy)
	recvs := make([]*receiver, healthy)
	for i := range recvs {
		r := e.receiver(log)
		e.CreateEndpoint(registry.Endpoint{
			TenantID: isoTenant, URL: r.URL, EventTypes: []string{"*"}, Secrets: []string{r.Secret},
			Description: fmt.Sprintf("healthy %d", i),
		})
		recvs[i] = r
	}

	// The backlog: every event fanned out to every endpoint topic before the
	// deliverer starts, so that what is measured is the deliverer alone,
	// running flat out.
	stopRouter := e.StartRouter()
	start := time.Now()
	evs := e.sampleEvents(isoTenant, events)
	for i := range evs {
		evs[i].Key = fmt.Sprintf("order-%d", i%1024) // per-entity keys: spread over an endpoint's partitions
	}
	res.PublishSeconds = e.publish(evs, 500).Seconds()
	e.waitMetric("hookstream_router_fanout_records_total", float64(events*endpoints), *isoTimeout)
	res.RouteSeconds = time.Since(start).Seconds()
	stopRouter()

	start = time.Now()
	cpu0, busy0 := cpuTime(), machineBusy()
	b.StartTimer()
	stopDeliverer := e.StartDeliverer(e.delivererConfig())
	smp := e.sample(log, 100*time.Millisecond)
	defer smp.halt() // when the run fails
	want := int64(events * healthy)
	dumped := *benchDump == ""
	deadline := start.Add(*isoTimeout)
	last, lastAt := int64(0), start
	for n := log.n.Load(); n < want; n = log.n.Load() {
		now := time.Now()
		if n != last {
			last, lastAt = n, now
		}
		if !dumped && n >= want/2 {
			dumped = true
			dumpGoroutines(b, filepath.Join(*benchDump, "isolation-"+sc.name+"-goroutines.txt"))
		}
		stalled := now.Sub(lastAt) > *isoStall
		if stalled || now.After(deadline) {
			smp.halt()
			writeTrace(b, smp, cluster.Kind, sc.name)
			if *benchDump != "" {
				dumpGoroutines(b, filepath.Join(*benchDump, "isolation-"+sc.name+"-goroutines-at-failure.txt"))
			}
			e.dumpMetrics()
			what := fmt.Sprintf("after %v", now.Sub(start).Round(time.Second))
			if stalled {
				what = fmt.Sprintf("and none for the last %v: the healthy endpoints are starved", now.Sub(lastAt).Round(time.Second))
			}
			b.Fatalf("%s: %d of %d healthy deliveries %s; %s", sc.name, n, want, what, progress(recvs, events))
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	res.MeanInFlight, res.MeanQueued = smp.finish()
	writeTrace(b, smp, cluster.Kind, sc.name)
	cpu := cpuTime() - cpu0
	res.CPUMicrosPerDelivery = float64(cpu/time.Microsecond) / float64(want)
	if busy0 >= 0 {
		res.OtherCPU = max(0, (machineBusy()-busy0-cpu).Seconds()/time.Since(start).Seconds())
	}

	res.Deliverer = map[string]float64{}
	for _, r := range []string{"2xx", "3xx", "4xx", "5xx", "timeout", "error"} {
		res.Deliverer["attempts_"+r] = e.metric("hookstream_deliverer_attempts_total", "result", r)
	}
	for _, o := range []string{"delivered", "retry", "reparked", "dead_lettered"} {
		res.Deliverer["deliveries_"+o] = e.metric("hookstream_deliverer_deliveries_total", "outcome", o)
	}
	for _, s := range []string{"open", "half-open", "closed"} {
		res.Deliverer["breaker_to_"+s] = e.metric("hookstream_deliverer_breaker_transitions_total", "state", s)
	}
	res.Deliverer["inflight_at_end"] = e.metric("hookstream_deliverer_inflight_requests")
	// What is still queued once every healthy delivery is in is what the
	// bad endpoints hold (fetched, never started).
	res.Deliverer["queued_at_end"] = e.metric("hookstream_deliverer_queued_records")
	switch {
	case len(holes) > 0:
		res.Faulty = &faultyStats{Kind: sc.fault, Endpoints: len(holes)}
		for _, h := range holes {
			res.Faulty.Requests += h.accepted.Load()
			res.Faulty.PeakOpenConns += h.peak.Load()
		}
	case len(failing) > 0:
		res.Faulty = &faultyStats{Kind: sc.fault, Endpoints: len(failing)}
		for _, f := range failing {
			res.Faulty.Requests += f.requests.Load()
		}
	}
	stopDeliverer()

	res.Healthy = log.rates(start)
	res.SlowestEndpoint = -1
	for _, r := range recvs {
		if n := r.badSig.Load(); n > 0 {
			b.Errorf("%s: %s got %d requests with a bad signature", sc.name, r.URL, n)
		}
		res.Duplicates += r.dups.Load()
		if rate := r.rate(); res.SlowestEndpoint < 0 || rate < res.SlowestEndpoint {
			res.SlowestEndpoint = rate
		}
	}
	return res
}

// machineBusy is the CPU time all processes of the machine have used (busy
// jiffies of /proc/stat at 100 Hz), or -1 where there is no /proc/stat.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		if i != 3 && i != 4 && i < 8 { // user nice system [idle iowait] irq softirq steal
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// writeTrace writes a run's samples where -bench.trace asks.
func writeTrace(tb testing.TB, smp *sampler, kind, scenario string) {
	if *benchTrace == "" {
		return
	}
	if err := smp.writeCSV(filepath.Join(*benchTrace, fmt.Sprintf("isolation-%s-%s.csv", kind, scenario))); err != nil {
		tb.Error(err)
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func progress(recvs []*receiver, events int) string {
	s := "per healthy endpoint:"
	for _, r := range recvs {
		s += fmt.Sprintf(" %d/%d", r.distinct.Load(), events)
	}
	return s
}

func dumpGoroutines(tb testing.TB, path string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Error(err)
		return
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 1); err != nil {
		tb.Error(err)
	}
}

// isolationReport is one broker kind's entry in results/isolation.json.
type isolationReport struct {
	Date             time.Time                   `json:"date"`
	Broker           string                      `json:"broker"`
	GoVersion        string                      `json:"go"`
	GOMAXPROCS       int                         `json:"gomaxprocs"`
	Events           int                         `json:"events"`
	Rounds           int                         `json:"rounds"`
	HealthyEndpoints int                         `json:"healthy_endpoints"`
	BadEndpoints     int                         `json:"bad_endpoints"`
	BadPartitions    int                         `json:"bad_endpoint_partitions"`
	Target           float64                     `json:"target_ratio"`
	Rates            map[string]float64          `json:"healthy_deliveries_per_sec"`
	Ratios           map[string]float64          `json:"ratio_to_baseline"`
	Scenarios        map[string]*isolationResult `json:"scenarios"`
}

// reportIsolation prints the summary and records it in results/isolation.json
// under the broker kind. Without a baseline (a -bench filter that skipped
// it) there is no ratio, and nothing is written.
func reportIsolation(b *testing.B, kind string, events, healthy, bad int, results map[string]*isolationResult) {
	base, ok := results["baseline"]
	if !ok || len(results) < 2 {
		fmt.Printf("isolation [%s]: run baseline and at least one other scenario for a ratio; nothing written\n", kind)
		return
	}
	rep := isolationReport{
		Date: time.Now().UTC().Truncate(time.Second), Broker: kind, GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Events: events, Rounds: max(1, *isoRounds), HealthyEndpoints: healthy, BadEndpoints: bad, BadPartitions: *isoBadParts, Target: isoTarget,
		Rates: map[string]float64{}, Ratios: map[string]float64{}, Scenarios: results,
	}
	line := fmt.Sprintf("isolation [%s, %d events x %d healthy endpoints, %d bad, median of %d rounds, GOMAXPROCS %d]: baseline %.0f healthy deliveries/s",
		kind, events, healthy, bad, rep.Rounds, rep.GOMAXPROCS, base.Healthy.PerSecond)
	for _, sc := range isolationScenarios {
		r, ok := results[sc.name]
		if !ok {
			continue
		}
		rep.Rates[sc.name] = round(r.Healthy.PerSecond, 1)
		if sc.fault == faultNone {
			continue
		}
		ratio := r.Healthy.PerSecond / base.Healthy.PerSecond
		rep.Ratios[sc.name] = round(ratio, 4)
		verdict := "meets"
		if ratio < isoTarget {
			verdict = "BELOW"
		}
		line += fmt.Sprintf("; %s %.0f/s = %.1f %% of baseline (%s the %.0f %% target)", sc.name, r.Healthy.PerSecond, 100*ratio, verdict, 100*isoTarget)
	}
	fmt.Println(line)
	for _, sc := range isolationScenarios {
		r, ok := results[sc.name]
		if !ok {
			continue
		}
		fmt.Printf("  %-10s backlog published in %.1fs, fanned out in %.1fs; %6d deliveries in %6.2fs (first %.2fs after start), steady %.0f/s, slowest endpoint %.0f/s, %.1f µs CPU/delivery, mean %.0f in flight and %.0f queued, other processes %.2f cores, %d duplicates",
			sc.name, r.PublishSeconds, r.RouteSeconds, r.Healthy.Deliveries, r.Healthy.Seconds, r.Healthy.FirstAfterS, r.Healthy.SteadyRate, r.SlowestEndpoint, r.CPUMicrosPerDelivery, r.MeanInFlight, r.MeanQueued, r.OtherCPU, r.Duplicates)
		if len(r.Runs) > 1 {
			fmt.Printf("\n             runs (rate, CPU/delivery, cores busy here + elsewhere): %v", r.Runs)
		}
		if f := r.Faulty; f != nil {
			fmt.Printf("; %d bad endpoint(s): %d requests/connections (peak %d open), attempts 5xx %.0f timeout %.0f error %.0f, breaker opened %.0f times, %.0f records left queued",
				f.Endpoints, f.Requests, f.PeakOpenConns, r.Deliverer["attempts_5xx"], r.Deliverer["attempts_timeout"], r.Deliverer["attempts_error"], r.Deliverer["breaker_to_open"], r.Deliverer["queued_at_end"])
			if f.Kind == faultBlackHole && r.Deliverer["attempts_timeout"] == 0 {
				fmt.Printf(" (the run ended before the attempt timeout: raise -isolation.events to measure the timeouts and the breaker too)")
			}
		}
		fmt.Println()
	}

	path := filepath.Join(*benchResults, isoResults)
	all := map[string]*isolationReport{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &all); err != nil {
			b.Logf("%s does not parse (%v); rewriting it", path, err)
			all = map[string]*isolationReport{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		b.Error(err)
		return
	}
	all[kind] = &rep
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		b.Error(err)
		return
	}
	if err := os.MkdirAll(*benchResults, 0o755); err != nil {
		b.Error(err)
		return
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		b.Error(err)
		return
	}
	fmt.Printf("isolation [%s]: written to %s\n", kind, path)
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}
