package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookstream/hookstream/pkg/kafkatest"
)

// Every probe runs against a broker and counts what it sent, never more
// than its pace.
func TestRunProbes(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	br := &broker{kind: c.Kind, addrs: c.Addrs, pids: []int{os.Getpid()}} // kfake runs in this process
	const rate, d = 2000.0, 500 * time.Millisecond
	probes := []costProbe{
		{name: "one", unit: "request", partitions: 1, run: syncRequests(200, 1)},
		{name: "wide", unit: "request", partitions: 5, consume: true, run: syncRequests(50, 5)},
		{name: "stream", unit: "record", partitions: 3, consume: true, run: stream(rate)},
		{name: "txn", unit: "transaction", partitions: 5, txn: true, consume: true, run: syncTxns(15, 5)},
	}
	res, err := runProbes(ctx, br, probes, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(probes) {
		t.Fatalf("%d results for %d probes", len(res), len(probes))
	}
	for i, want := range []float64{200, 50, rate, 15} { // units per second
		r := res[i]
		if r.Probe != probes[i].name || r.Unit != probes[i].unit {
			t.Errorf("result %d is %q/%q, want %q/%q", i, r.Probe, r.Unit, probes[i].name, probes[i].unit)
		}
		// Paced, so never above the pace; how far below it a machine busy
		// with other tests (and -race) falls is not this test's business.
		if r.PerSecond <= 0 || r.PerSecond > want*1.1 {
			t.Errorf("%s: %.0f %s/s, want some, at most about %.0f", r.Probe, r.PerSecond, r.Unit, want)
		}
		if r.BrokerCores < 0 || r.MsPerUnit < 0 {
			t.Errorf("%s: negative CPU: %+v", r.Probe, r)
		}
	}
}

// idleTopics creates the topics it measures, and its figures are CPU
// rates a broker can have.
func TestIdleTopics(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	br := &broker{kind: c.Kind, addrs: c.Addrs, pids: []int{os.Getpid()}}
	const n = 600 // two creation batches
	res, err := idleTopics(ctx, br, n, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.topics != n || res.before < 0 || res.after < 0 || res.createSeconds <= 0 || res.createCPU < 0 {
		t.Errorf("idleTopics = %+v", res)
	}
	topics, err := kadm.NewClient(c.Client(t)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	made := 0
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, "idle") {
			made++
		}
	}
	if made != n {
		t.Errorf("%d idle topics on the broker, want %d", made, n)
	}
}
