package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafka"
)

// The broker-cost mode (-broker-cost) measures what the broker alone costs,
// with no Hookstream process running: the CPU it spends per produce request
// and per partition batch, and on a stream of events like the benchmark's
// publisher. These are the figures behind the README's account of why
// latency at half load is out of reach on this machine with real Kafka.

// costProbe is one measured load on a freshly started broker.
type costProbe struct {
	name string
	run  func(ctx context.Context, cl *kgo.Client, topic string, d time.Duration) (units int, err error)
	unit string // what units counts: "request" or "record"
	// partitions of the probe's topic; consume adds a consumer reading it.
	partitions int
	consume    bool
	// split, with consume, reads the partitions with this many consumers,
	// each assigned its share (0 or 1: one consumer of the whole topic).
	split int
	// txn runs the probe on a transactional producer, and its consumer
	// (if any) reads committed records only, as deliverers do.
	txn bool
}

// CostResult is one probe's figures.
type CostResult struct {
	Probe, Unit string
	PerSecond   float64 // units per second
	BrokerCores float64 // broker CPU seconds per second
	MsPerUnit   float64 // broker CPU milliseconds per unit
}

// syncRequests sends one produce request at a time, rate per second, each
// with one 1 KB record for every partition of topic, and waits for its
// acknowledgement (acks=all, no linger): every request is one request.
func syncRequests(rate int, partitions int) func(context.Context, *kgo.Client, string, time.Duration) (int, error) {
	return paced(rate, partitions, false)
}

// syncTxns commits rate transactions per second, each with one 1 KB record
// for every partition of topic, as the exactly-once router does at a low
// rate: every partition a transaction touches gets a commit marker.
func syncTxns(rate int, partitions int) func(context.Context, *kgo.Client, string, time.Duration) (int, error) {
	return paced(rate, partitions, true)
}

// paced writes one 1 KB record to every partition of topic rate times a
// second and waits for each round to be acknowledged (and, with txn,
// committed in a transaction of its own). It returns the rounds done.
func paced(rate int, partitions int, txn bool) func(context.Context, *kgo.Client, string, time.Duration) (int, error) {
	return func(ctx context.Context, cl *kgo.Client, topic string, d time.Duration) (int, error) {
		val := make([]byte, 1024)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		n := 0
		for end := time.Now().Add(d); time.Now().Before(end); n++ {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-tick.C:
			}
			if txn {
				if err := cl.BeginTransaction(); err != nil {
					return n, err
				}
			}
			for p := range partitions {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(p), Value: val}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				return n, err
			}
			if txn {
				if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
					return n, err
				}
			}
		}
		return n, nil
	}
}

// stream publishes rate keyed 1 KB records per second for d, as the
// benchmark's publisher does (a 5 ms tick; the client's linger and
// compression do the batching).
func stream(rate float64) func(context.Context, *kgo.Client, string, time.Duration) (int, error) {
	return func(ctx context.Context, cl *kgo.Client, topic string, d time.Duration) (int, error) {
		val := make([]byte, 1024)
		for i := range val {
			val[i] = byte(rand.IntN(256)) // incompressible, like signed payloads
		}
		var mu sync.Mutex
		var firstErr error
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		start, i := time.Now(), 0
		for time.Since(start) < d {
			select {
			case <-ctx.Done():
				return i, ctx.Err()
			case <-tick.C:
			}
			for due := int(rate * time.Since(start).Seconds()); i < due; i++ {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("t" + strconv.Itoa(i%100)), Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				})
			}
		}
		err := cl.Flush(ctx)
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil {
			return i, firstErr
		}
		return i, err
	}
}

// brokerCost starts each broker kind of o, runs the probes on it and
// prints their figures.
func brokerCost(ctx context.Context, o options, w io.Writer, rate float64, d time.Duration) error {
	const wide = 50     // partitions per request of the second and third probes
	const bigTxn = 2000 // partitions of the largest transactions
	probes := []costProbe{
		{name: "produce requests of 1 record, 200/s", unit: "request", partitions: 1, run: syncRequests(200, 1)},
		{name: fmt.Sprintf("produce requests of %d partitions x 1 record, 50/s", wide), unit: "request", partitions: wide, run: syncRequests(50, wide)},
		{name: "the same, with a consumer reading them", unit: "request", partitions: wide, consume: true, run: syncRequests(50, wide)},
		{name: fmt.Sprintf("publisher stream, %.0f records/s (6 partitions, linger 5 ms, lz4)", rate), unit: "record", partitions: 6, run: stream(rate)},
		{name: "the same, with a consumer reading it", unit: "record", partitions: 6, consume: true, run: stream(rate)},
		{name: fmt.Sprintf("transactions of %d partitions x 1 record, 15/s", wide), unit: "transaction", partitions: wide, txn: true, run: syncTxns(15, wide)},
		{name: "the same, with a read-committed consumer", unit: "transaction", partitions: wide, txn: true, consume: true, run: syncTxns(15, wide)},
		// How a read-committed reader's cost grows with the partitions a
		// transaction touches (the broker re-checks a parked fetch, all its
		// partitions, after appends to any of them, and a transaction's
		// records become readable only partition by partition as its
		// markers land), and whether spreading the partitions over several
		// readers (deliverer processes) changes it.
		{name: fmt.Sprintf("transactions of %d partitions x 1 record, 1/s", bigTxn/4), unit: "transaction", partitions: bigTxn / 4, txn: true, run: syncTxns(1, bigTxn/4)},
		{name: "the same, with a read-committed consumer", unit: "transaction", partitions: bigTxn / 4, txn: true, consume: true, run: syncTxns(1, bigTxn/4)},
		{name: fmt.Sprintf("transactions of %d partitions x 1 record, 1/s", bigTxn), unit: "transaction", partitions: bigTxn, txn: true, run: syncTxns(1, bigTxn)},
		{name: "the same, with a read-committed consumer", unit: "transaction", partitions: bigTxn, txn: true, consume: true, run: syncTxns(1, bigTxn)},
		{name: "the same, with 4 read-committed consumers of a quarter each", unit: "transaction", partitions: bigTxn, txn: true, consume: true, split: 4, run: syncTxns(1, bigTxn)},
	}
	tmp, err := os.MkdirTemp("", "hsbench-cost-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, kind := range o.brokers {
		dir := filepath.Join(tmp, kind)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		br, err := startBroker(ctx, kind, o.bin, o.repo, dir, o.brokerJIT)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		res, err := runProbes(ctx, br, probes, d)
		var idle *idleCost
		if err == nil {
			idle, err = idleTopics(ctx, br, idleTopicCount, d)
		}
		br.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		jit := "(Go)"
		if kind == "kafka" {
			jit = "JIT " + o.brokerJIT
		}
		fmt.Fprintf(w, "\nbroker alone (%s, %s), %s per probe after a warm-up of %s:\n", kind, jit, d, min(5*time.Second, d))
		for _, r := range res {
			fmt.Fprintf(w, "  %-72s %7.0f %s/s  broker %3.0f %% of a core  %6.3f ms per %s\n", r.Probe, r.PerSecond, r.Unit, 100*r.BrokerCores, r.MsPerUnit, r.Unit)
		}
		// The first two probes differ only in partitions per request; the
		// last two add a commit (and read-committed reading) to the second
		// and third.
		fmt.Fprintf(w, "  %-72s %6.3f ms\n", "so each further partition batch in a request costs", (res[1].MsPerUnit-res[0].MsPerUnit)/(wide-1))
		fmt.Fprintf(w, "  %-72s %6.3f ms\n", "committing a transaction costs, per partition it touched", (res[5].MsPerUnit-res[1].MsPerUnit)/wide)
		fmt.Fprintf(w, "  %-72s %6.3f ms\n", "reading it read-committed costs, per partition", (res[6].MsPerUnit-res[5].MsPerUnit)/wide)
		for i, n := range []int{bigTxn / 4, bigTxn} {
			fmt.Fprintf(w, "  %-72s %6.3f ms\n", fmt.Sprintf("the same at %d partitions a transaction, per partition", n), (res[8+2*i].MsPerUnit-res[7+2*i].MsPerUnit)/float64(n))
		}
		fmt.Fprintf(w, "  %-72s %6.3f ms\n", fmt.Sprintf("and at %d read by 4 consumers of %d each, per partition", bigTxn, bigTxn/4), (res[11].MsPerUnit-res[9].MsPerUnit)/float64(bigTxn))
		fmt.Fprintf(w, "  %-72s %6.1f %% of a core\n", "idle, the probes' topics only", 100*idle.before)
		fmt.Fprintf(w, "  %-72s %6.1f s, broker %.1f CPU s\n", fmt.Sprintf("creating %d more single-partition topics", idle.topics), idle.createSeconds, idle.createCPU)
		fmt.Fprintf(w, "  %-72s %6.1f %% of a core\n", "idle with them, after one record to each", 100*idle.after)
	}
	return nil
}

// idleTopicCount is how many topics idleTopics adds: the benchmark's
// largest scale run has as many endpoints.
const idleTopicCount = 5000

// idleCost is what topics cost a broker that serves no traffic.
type idleCost struct {
	topics                   int
	before, after            float64 // broker CPU seconds per second, idle
	createSeconds, createCPU float64
}

// idleTopics measures the broker idle for d, creates n single-partition
// topics (an endpoint's each), writes one record to each, and measures it
// idle for d again after a settling pause (10 s, or d if shorter): the
// standing cost of topic-per-endpoint (Kafka keeps meters, gauges and log
// state per topic and partition).
func idleTopics(ctx context.Context, br *broker, n int, d time.Duration) (*idleCost, error) {
	kcfg := kafka.Config{Brokers: br.addrs, ClientID: "hsbench"}
	cl, err := kgo.NewClient(kcfg.ClientOpts("cost-admin")...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	idle := func() (float64, error) {
		c0, t0 := br.cpu(), time.Now()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(d):
		}
		return (br.cpu() - c0) / time.Since(t0).Seconds(), nil
	}
	res := &idleCost{topics: n}
	if res.before, err = idle(); err != nil {
		return nil, err
	}
	c0, t0 := br.cpu(), time.Now()
	prefix := fmt.Sprintf("idle%d.", rand.IntN(1_000_000))
	const batch = 500
	for lo := 0; lo < n; lo += batch {
		specs := make([]kafka.TopicSpec, 0, batch)
		for i := lo; i < min(lo+batch, n); i++ {
			specs = append(specs, kafka.TopicSpec{Name: prefix + strconv.Itoa(i), Partitions: 1})
		}
		if err := kcfg.EnsureTopics(ctx, adm, specs...); err != nil {
			return nil, err
		}
	}
	res.createSeconds, res.createCPU = time.Since(t0).Seconds(), br.cpu()-c0
	fmt.Fprintf(os.Stderr, "hsbench: %s: created %d topics in %.1f s\n", br.kind, n, res.createSeconds)
	// One record to each, as endpoints that have had an event: Kafka
	// creates a topic's meters on its first traffic, and ticks them from
	// then on.
	val := make([]byte, 1024)
	var once sync.Once
	var perr error
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: prefix + strconv.Itoa(i), Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				once.Do(func() { perr = err })
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, fmt.Errorf("writing to the new topics: %w", perr)
	}
	select { // let the broker finish creating their logs
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(min(10*time.Second, d)):
	}
	if res.after, err = idle(); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "hsbench: %s: idle %.1f %% of a core, %.1f %% with %d more topics\n", br.kind, 100*res.before, 100*res.after, n)
	return res, nil
}

func runProbes(ctx context.Context, br *broker, probes []costProbe, d time.Duration) ([]CostResult, error) {
	kcfg := kafka.Config{Brokers: br.addrs, ClientID: "hsbench"}
	cl, err := kgo.NewClient(kcfg.ClientOpts("cost-producer",
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond), // only the stream lingers: the sync probes flush each request
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.MaxBufferedRecords(100_000),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var out []CostResult
	for i, p := range probes {
		topic := fmt.Sprintf("cost%d.p%d", rand.IntN(1_000_000), i)
		if err := kcfg.EnsureTopics(ctx, adm, kafka.TopicSpec{Name: topic, Partitions: int32(p.partitions)}); err != nil {
			return nil, err
		}
		prod := cl
		if p.txn {
			txCl, err := kgo.NewClient(kcfg.ClientOpts("cost-transactions",
				kgo.TransactionalID(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))...)
			if err != nil {
				return nil, err
			}
			defer txCl.Close()
			prod = txCl
		}
		isolation := kgo.ReadUncommitted()
		if p.txn {
			isolation = kgo.ReadCommitted()
		}
		var stops []func()
		stopConsumers := func() {
			for _, stop := range stops {
				stop()
			}
		}
		for _, assign := range consumerAssignments(p, topic) {
			cons, err := kgo.NewClient(kcfg.ClientOpts("cost-consumer", append(assign, kgo.FetchIsolationLevel(isolation))...)...)
			if err != nil {
				stopConsumers()
				return nil, err
			}
			cctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for cctx.Err() == nil {
					cons.PollFetches(cctx)
				}
			}()
			stops = append(stops, func() { cancel(); <-done; cons.Close() })
		}
		n, el, c, err := measure(ctx, br, p, prod, topic, d)
		stopConsumers()
		if err != nil {
			return nil, err
		}
		r := CostResult{Probe: p.name, Unit: p.unit, PerSecond: float64(n) / el, BrokerCores: c / el}
		if n > 0 {
			r.MsPerUnit = 1000 * c / float64(n)
		}
		out = append(out, r)
		fmt.Fprintf(os.Stderr, "hsbench: %s: %s: %.3f ms per %s\n", br.kind, p.name, r.MsPerUnit, p.unit)
	}
	return out, nil
}

// consumerAssignments is the options of each of p's consumers, reading
// from the end: none without consume; one consumer of the whole topic; or,
// with split, that many, each with an equal share of its partitions.
func consumerAssignments(p costProbe, topic string) [][]kgo.Opt {
	if !p.consume {
		return nil
	}
	if p.split <= 1 {
		return [][]kgo.Opt{{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd())}}
	}
	out := make([][]kgo.Opt, p.split)
	for c := range p.split {
		parts := map[int32]kgo.Offset{}
		for i := c; i < p.partitions; i += p.split {
			parts[int32(i)] = kgo.NewOffset().AtEnd()
		}
		out[c] = []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts})}
	}
	return out
}

// measure runs p for a warm-up (5 s, or d if shorter), then for d, and
// returns the units of the measured part, its seconds and the broker's CPU
// seconds in it.
func measure(ctx context.Context, br *broker, p costProbe, cl *kgo.Client, topic string, d time.Duration) (int, float64, float64, error) {
	if _, err := p.run(ctx, cl, topic, min(5*time.Second, d)); err != nil {
		return 0, 0, 0, err
	}
	c0, t0 := br.cpu(), time.Now()
	n, err := p.run(ctx, cl, topic, d)
	return n, time.Since(t0).Seconds(), br.cpu() - c0, err
}
