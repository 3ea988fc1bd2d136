package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/metrics"
)

// gauges gathers reg and returns the value of each gauge by name.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestLagCollector(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const topic, group = "lag-topic", "lag-group"
	c.CreateTopic(t, topic, 2, nil)
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(partition int32, n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 5)
	produce(1, 3)
	adm := kadm.NewClient(cl)
	offsets := kadm.Offsets{}
	offsets.AddOffset(topic, 0, 2, -1) // 3 behind
	offsets.AddOffset(topic, 1, 3, -1) // caught up
	resp, err := adm.CommitOffsets(ctx, group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	metrics.Register(reg, metrics.NewLagCollector(adm, group, time.Hour))
	want := map[string]float64{
		"hookstream_consumer_lag_records":     3,
		"hookstream_consumer_lag_max_records": 3,
		"hookstream_consumer_lag_partitions":  1,
	}
	got := gauges(t, reg)
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}

	// Within maxAge a scrape is served from the cache.
	produce(1, 4)
	got = gauges(t, reg)
	for name, v := range want {
		if got[name] != v {
			t.Errorf("cached %s = %v, want %v", name, got[name], v)
		}
	}

	// With maxAge 0 every scrape asks the cluster.
	reg2 := prometheus.NewRegistry()
	metrics.Register(reg2, metrics.NewLagCollector(adm, group, 0))
	got = gauges(t, reg2)
	for name, v := range map[string]float64{
		"hookstream_consumer_lag_records":     7,
		"hookstream_consumer_lag_max_records": 4,
		"hookstream_consumer_lag_partitions":  2,
	} {
		if got[name] != v {
			t.Errorf("fresh %s = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}
}
