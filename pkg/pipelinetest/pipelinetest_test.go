package pipelinetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
)

// An Env with its own cleanup list stops its parts last-started-first when
// the list is run, and WithDeleteTopics removes the scenario's topics then.
func TestEnvCleanupAndDeleteTopics(t *testing.T) {
	c := kafkatest.Start(t)
	var closers []func()
	e := New(t, c, WithPrefix("p"), WithEventsPartitions(2), WithDeleteTopics(),
		WithCleanup(func(f func()) { closers = append(closers, f) }))
	if !strings.HasPrefix(e.Kafka.Prefix, "p") || e.Kafka.EventsPartitions != 2 {
		t.Errorf("Kafka config %+v: want prefix p… and 2 events partitions", e.Kafka)
	}
	ep := e.CreateEndpoint(registry.Endpoint{TenantID: "acme", URL: "http://127.0.0.1:1/x", EventTypes: []string{"*"}})
	var order []string
	stopA := e.Service("a", func(ctx context.Context) error { <-ctx.Done(); order = append(order, "a"); return nil })
	e.Service("b", func(ctx context.Context) error { <-ctx.Done(); order = append(order, "b"); return nil })
	stopA() // stopping early is fine; the cleanup's second stop is a no-op
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := c.Admin(t)
	topics := func() []string {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var mine []string
		for _, n := range td.Names() {
			if strings.HasPrefix(n, e.Kafka.Prefix+".") {
				mine = append(mine, n)
			}
		}
		return mine
	}
	if got := topics(); !slices.Contains(got, e.Kafka.Topics().Endpoint(ep.ID)) {
		t.Fatalf("topics before cleanup %v: the endpoint's topic is missing", got)
	}
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	if strings.Join(order, ",") != "a,b" {
		t.Errorf("services stopped in order %v, want a (stopped early), then b", order)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(topics()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("topics left after cleanup: %v", topics())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
