// Command hsbench is Hookstream's end-to-end benchmark (make bench).
//
// For each broker (real Apache Kafka from scripts/kafka.sh, and the embedded
// kfake broker as its own process) it runs the real router and deliverer as
// separate processes, delivering to local receivers that verify every
// signature, and measures:
//
//   - throughput: N events of ~1 KB data, one per endpoint in turn over M
//     endpoints (N deliveries), published before the pipeline starts;
//     delivered/s in steady state (10 %–90 % of the run), CPU seconds per
//     1,000 deliveries (router, deliverer, broker, and the benchmark's own
//     receivers), peak RSS of router and deliverer;
//   - latency at half that rate: events published at a steady 50 % of the
//     measured maximum; p50/p95/p99 from the event's occurred_at to the
//     receiver;
//   - the physical baseline: a plain Go HTTP client (net/http) posting the
//     same signed 1 KB bodies to the same receivers with the same
//     concurrency, no Kafka; and the same loop on the deliverer's own HTTP
//     client (fasthttp), to show what the pipeline around it costs;
//   - scale: 10, 1,000 and 5,000 endpoints (one topic each): throughput,
//     RSS, and how long a deliverer joining the group takes to deliver; the
//     largest between two 100-endpoint pipelines of the same size, so its
//     ratio also compares runs next to each other in time;
//   - isolation: 20 healthy endpoints with and without a black-hole one,
//     in three pairs of runs side by side in time (the median pair counts).
//
// It prints a table and writes the figures as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

type options struct {
	brokers        []string
	events         int
	endpoints      int
	dataBytes      int
	scale          []int
	scaleRef       bool
	scaleEvents    int
	isoEvents      int
	isoRounds      int
	halfSeconds    int
	latencyRate    float64
	trickleRate    float64
	trickleSeconds int
	floorSeconds   int
	routerArgs     string
	delivererArgs  string
	baseSeconds    int
	out            string
	bin            string
	repo           string
	skipScale      bool
	skipIso        bool
	atLeastOnce    bool
	inflight       int
	profileDir     string
	warmupEvents   int
	brokerJIT      string
	cost           bool
	costRate       float64
	costSeconds    int
}

func main() {
	var o options
	var brokers, scale string
	flag.StringVar(&brokers, "brokers", "kafka,kfake", "broker kinds to run, in order: kafka (real, scripts/kafka.sh) and/or kfake")
	flag.IntVar(&o.events, "events", 200_000, "events in the throughput run (one delivery each)")
	flag.IntVar(&o.endpoints, "endpoints", 100, "endpoints in the throughput run")
	flag.IntVar(&o.dataBytes, "data-bytes", 1024, "size of each event's Avro data")
	flag.StringVar(&scale, "scale", "10,1000,5000", "endpoint counts of the scale runs")
	flag.IntVar(&o.scaleEvents, "scale-events", 50_000, "events of each scale run")
	flag.BoolVar(&o.scaleRef, "scale-reference", true, "bracket the largest scale run with two pipelines of -scale-events events to -endpoints endpoints, so its ratio compares runs next to each other in time")
	flag.IntVar(&o.isoEvents, "isolation-events", 2_000, "events of each isolation run (each goes to every endpoint)")
	flag.IntVar(&o.isoRounds, "isolation-rounds", 3, "pairs of isolation runs (alone, beside the black hole; alternating order); the median pair is reported")
	flag.IntVar(&o.halfSeconds, "half-rate-seconds", 15, "duration of the half-rate latency run")
	flag.Float64Var(&o.latencyRate, "latency-rate", 0, "events/s of the latency run (default: half the measured maximum)")
	flag.Float64Var(&o.trickleRate, "trickle-rate", 100, "events/s of the trickle run, the latency floor (0: skip it)")
	flag.IntVar(&o.trickleSeconds, "trickle-seconds", 10, "duration of the trickle run")
	flag.IntVar(&o.floorSeconds, "floor-seconds", 10, "duration of the transactional-hop floor (a transactional producer and a read-committed consumer alone; 0 skips it)")
	flag.BoolVar(&o.atLeastOnce, "at-least-once", true, "after the latency runs, restart the router with --guarantee=at-least-once and measure them again")
	flag.IntVar(&o.warmupEvents, "warmup-events", 100_000, "events delivered through a throwaway pipeline before anything is measured, so the broker runs warm (JIT-compiled, heap sized) as a long-running one does (0: none)")
	flag.StringVar(&o.brokerJIT, "broker-jit", "quick", "JIT of the real Kafka broker: quick (C1 only: fast start; a 100,000-event warm-up compiles it) or full (tiered C2 as in production: less CPU per request once warm, which takes minutes; the warm-up is too short for it)")
	flag.IntVar(&o.baseSeconds, "baseline-seconds", 8, "duration of the bare-HTTP baseline")
	flag.StringVar(&o.routerArgs, "router-args", "", "extra flags for the router processes (space-separated)")
	flag.StringVar(&o.delivererArgs, "deliverer-args", "", "extra flags for the deliverer processes (space-separated)")
	flag.IntVar(&o.inflight, "inflight", 16, "deliverer --max-inflight-per-partition")
	flag.StringVar(&o.out, "out", "bench/results/latest.json", "where to write the JSON results")
	flag.StringVar(&o.bin, "bin", "", "hookstream binary (default: go build ./cmd/hookstream)")
	flag.BoolVar(&o.skipScale, "skip-scale", false, "skip the scale runs")
	flag.StringVar(&o.profileDir, "profile-dir", "", "write CPU profiles of the router and deliverer of the throughput run here")
	flag.BoolVar(&o.skipIso, "skip-isolation", false, "skip the isolation runs")
	flag.BoolVar(&o.cost, "broker-cost", false, "measure only what the broker alone costs (CPU per produce request, per partition batch, on a publisher's stream, per transaction and reader, and idle with 5,000 topics), with no Hookstream process, and exit")
	flag.Float64Var(&o.costRate, "broker-cost-rate", 5300, "records/s of -broker-cost's publisher stream")
	flag.IntVar(&o.costSeconds, "broker-cost-seconds", 20, "seconds of each -broker-cost probe")
	printOnly := flag.String("print", "", "print the table of this results JSON file (from an earlier run) and exit")
	cpuprofile := flag.String("cpuprofile", "", "write this process's CPU profile (receivers, publisher, baseline client) here")
	flag.Parse()
	if *printOnly != "" {
		if err := printFile(os.Stdout, *printOnly); err != nil {
			fmt.Fprintf(os.Stderr, "hsbench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if o.brokerJIT != "full" && o.brokerJIT != "quick" {
		fmt.Fprintf(os.Stderr, "hsbench: -broker-jit must be full or quick, not %q\n", o.brokerJIT)
		os.Exit(2)
	}
	if o.warmupEvents < 0 {
		fmt.Fprintf(os.Stderr, "hsbench: -warmup-events must be 0 or more, not %d\n", o.warmupEvents)
		os.Exit(2)
	}
	if o.halfSeconds <= 2 || (o.trickleRate > 0 && o.trickleSeconds <= 2) {
		fmt.Fprintln(os.Stderr, "hsbench: -half-rate-seconds and -trickle-seconds must be over 2 (the first 2 s are a warm-up)")
		os.Exit(2)
	}
	if o.cost && (o.costRate <= 0 || o.costSeconds < 1) {
		fmt.Fprintln(os.Stderr, "hsbench: -broker-cost-rate and -broker-cost-seconds must be positive")
		os.Exit(2)
	}
	if o.isoRounds < 1 {
		fmt.Fprintf(os.Stderr, "hsbench: -isolation-rounds must be 1 or more, not %d\n", o.isoRounds)
		os.Exit(2)
	}
	o.brokers = strings.Split(brokers, ",")
	for _, s := range strings.Split(scale, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "hsbench: bad -scale entry %q\n", s)
			os.Exit(2)
		}
		o.scale = append(o.scale, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintf(os.Stderr, "hsbench: %v\n", err)
		os.Exit(1)
	}
}

// Results is what the JSON file holds.
type Results struct {
	Date    string          `json:"date"`
	Machine string          `json:"machine"`
	Command string          `json:"command"`
	Runs    []*BrokerResult `json:"runs"`
}

func run(ctx context.Context, o options) error {
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	o.repo = repo
	tmp, err := os.MkdirTemp("", "hsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "hookstream")
		fmt.Fprintln(os.Stderr, "hsbench: building hookstream")
		cmd := exec.Command("go", "build", "-o", o.bin, "./cmd/hookstream")
		cmd.Dir, cmd.Stdout, cmd.Stderr = repo, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building hookstream: %w", err)
		}
	}
	if o.cost {
		return brokerCost(ctx, o, os.Stdout, o.costRate, time.Duration(o.costSeconds)*time.Second)
	}
	res := &Results{
		Date:    time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Machine: machine(),
		Command: "make bench  (go run ./bench/hsbench " + strings.Join(os.Args[1:], " ") + ")",
	}
	for _, kind := range o.brokers {
		dir := filepath.Join(tmp, kind)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		br, err := runBroker(ctx, o, kind, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		res.Runs = append(res.Runs, br)
	}
	printTable(os.Stdout, res)
	if o.out != "" {
		out := o.out
		if !filepath.IsAbs(out) {
			out = filepath.Join(repo, out) // relative to the repository
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "hsbench: results written to %s\n", o.out)
	}
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/1024/1024)
	}
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = ", " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores%s%s, %s", runtime.NumCPU(), mem, model, runtime.Version())
}

// printFile prints the table of a results file that run wrote.
func printFile(w io.Writer, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(res.Runs) == 0 {
		return fmt.Errorf("%s: no runs", path)
	}
	printTable(w, &res)
	return nil
}
