package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafka"
)

// TxnFloorResult is the broker's own latency floor for one transactional
// hop, the router's write path without Hookstream: back-to-back
// transactions of one record to each of Partitions single-partition topics
// (a 10 ms pause between them, the router's default linger), read by a
// read-committed consumer.
type TxnFloorResult struct {
	Partitions      int     `json:"partitions"`
	Transactions    int     `json:"transactions"`
	PerSecond       float64 `json:"transactions_per_second"`
	ProduceP50ms    float64 `json:"produce_p50_ms"` // first produce of a transaction to its ack
	CommitP50ms     float64 `json:"commit_p50_ms"`  // EndTransaction
	VisibleP50ms    float64 `json:"visible_p50_ms"` // record timestamp to the consumer
	VisibleP99ms    float64 `json:"visible_p99_ms"`
	VisibleRecorded int64   `json:"visible_samples"`
}

// txnFloor measures TxnFloorResult on br for d, on topics of its own that it
// deletes afterwards.
func txnFloor(ctx context.Context, br *broker, partitions int, d time.Duration) (*TxnFloorResult, error) {
	kcfg := kafka.Config{Brokers: br.addrs, ClientID: "hsbench"}
	prefix := fmt.Sprintf("floor%d", rand.IntN(1_000_000))
	topics := make([]string, partitions)
	specs := make([]kafka.TopicSpec, partitions)
	for i := range topics {
		topics[i] = fmt.Sprintf("%s.t%d", prefix, i)
		specs[i] = kafka.TopicSpec{Name: topics[i], Partitions: 1}
	}
	admCl, err := kgo.NewClient(kcfg.ClientOpts("floor-admin")...)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := kcfg.EnsureTopics(ctx, adm, specs...); err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, topics...)
	}()
	prod, err := kgo.NewClient(kcfg.ClientOpts("floor-producer",
		kgo.TransactionalID(prefix), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))...)
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kcfg.ClientOpts("floor-consumer",
		kgo.ConsumeTopics(topics...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, err
	}
	defer cons.Close()

	visible, produce, commit := newHistogram(), newHistogram(), newHistogram()
	var seen atomic.Int64
	cctx, stopConsumer := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) { visible.record(now.Sub(r.Timestamp)); seen.Add(1) })
		}
	}()
	txn := func() error {
		if err := prod.BeginTransaction(); err != nil {
			return err
		}
		t0 := time.Now()
		for _, t := range topics {
			prod.Produce(ctx, &kgo.Record{Topic: t, Value: []byte("floor")}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			return err
		}
		t1 := time.Now()
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("committing: %w", err)
		}
		produce.record(t1.Sub(t0))
		commit.record(time.Since(t1))
		return nil
	}
	// untilSeen waits until the consumer has read want records (or 10 s).
	untilSeen := func(want int64) {
		for wait := time.Now().Add(10 * time.Second); seen.Load() < want && time.Now().Before(wait); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	// One transaction, unmeasured, until the consumer has read it: both
	// clients find the new topics' leaders and offsets first (right after
	// the warm-up, the consumer's first fetch of the fresh topics once
	// took a second, which is start-up, not the hop).
	if err := txn(); err != nil {
		stopConsumer()
		return nil, err
	}
	untilSeen(int64(partitions))
	visible.reset()
	produce.reset()
	commit.reset()
	seen.Store(0)

	var n int
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		if err := txn(); err != nil {
			stopConsumer()
			return nil, err
		}
		n++
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(start)
	untilSeen(int64(n * partitions))
	stopConsumer()
	<-consumed
	res := &TxnFloorResult{Partitions: partitions, Transactions: n, PerSecond: float64(n) / el.Seconds()}
	p, _ := produce.quantiles(0.5)
	c, _ := commit.quantiles(0.5)
	v, nv := visible.quantiles(0.5, 0.99)
	res.ProduceP50ms, res.CommitP50ms, res.VisibleP50ms, res.VisibleP99ms, res.VisibleRecorded = p[0], c[0], v[0], v[1], nv
	return res, nil
}
