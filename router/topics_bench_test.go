package router

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkFirstProduceToEveryTopic measures what a freshly started router
// pays before its first batch is written when there are many endpoints: its
// Kafka client (franz-go) adds each topic it first produces to by copying
// its whole map of known topics, so the first record to each of N endpoint
// topics costs O(N²), once per process. Later records cost nothing extra.
// kfake runs in the same process, so cpu-s counts the broker too.
//
//	go test -run '^$' -bench FirstProduceToEveryTopic -benchtime 1x ./router/
func BenchmarkFirstProduceToEveryTopic(b *testing.B) {
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprintf("topics=%d", n), func(b *testing.B) {
			topics := make([]string, n)
			for i := range topics {
				topics[i] = fmt.Sprintf("hookstream.endpoint.ep_%d", i)
			}
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			var first, again time.Duration
			b.ResetTimer()
			for range b.N {
				cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
				if err != nil {
					b.Fatal(err)
				}
				c0 := cpuTime()
				produceOneEach(ctx, b, cl, topics)
				c1 := cpuTime()
				produceOneEach(ctx, b, cl, topics)
				first, again = first+c1-c0, again+cpuTime()-c1
				cl.Close()
			}
			b.ReportMetric(first.Seconds()/float64(b.N), "first-cpu-s")
			b.ReportMetric(again.Seconds()/float64(b.N), "second-cpu-s")
		})
	}
}

func produceOneEach(ctx context.Context, b *testing.B, cl *kgo.Client, topics []string) {
	for _, t := range topics {
		cl.Produce(ctx, &kgo.Record{Topic: t, Value: []byte("x")}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
