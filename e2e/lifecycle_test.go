package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
)

// TestLifecycle checks endpoint disabling (by failure streak and by 410),
// re-enabling, and deliverers joining and leaving the group mid-stream.
func TestLifecycle(t *testing.T) {
	cluster := kafkatest.Start(t)
	t.Run("AutoDisableThenResume", func(t *testing.T) { testAutoDisable(t, cluster, http.StatusInternalServerError) })
	t.Run("GoneDisablesThenResume", func(t *testing.T) { testAutoDisable(t, cluster, http.StatusGone) })
	t.Run("RebalanceLosesAndRepeatsNothing", func(t *testing.T) { testRebalance(t, cluster) })
}

func testAutoDisable(t *testing.T, cluster *kafkatest.Cluster, failWith int) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	dead := e.addEndpoint(recv.url("/dead"), "payment.*", "order.*")
	watch := e.addEndpoint(recv.url("/watch"), "endpoint.*")
	recv.trust("/dead", dead)
	recv.trust("/watch", watch)
	var healthy atomic.Bool
	recv.respond.Store(statusFor(func(path string, _ delivery) int {
		if path == "/dead" && !healthy.Load() {
			return failWith
		}
		return 0
	}))
	cfg := e.delivererConfig()
	cfg.AutoDisableAfter = 400 * time.Millisecond
	cfg.BreakerFailures = 3
	cfg.BreakerOpenTimeout = 100 * time.Millisecond
	cfg.Schedule = make(deliverer.Schedule, 40) // long enough that nothing is spent while failing
	for i := range cfg.Schedule {
		cfg.Schedule[i] = 100 * time.Millisecond
	}
	e.StartRouter()
	e.StartDeliverer(cfg)
	types, in, _ := samples(t, e)
	var payments []string
	for _, typ := range types {
		if strings.HasPrefix(typ, "payment.") || strings.HasPrefix(typ, "order.") {
			payments = append(payments, typ)
		}
	}
	sent := publish(t, e, "acme", 20, payments, in)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Registry.WaitFor(ctx, func(r *registry.Registry) bool {
		ep, _ := r.Get(dead.ID)
		return ep.Status == registry.StatusDisabled
	}); err != nil {
		t.Fatalf("endpoint was not disabled: %v", err)
	}
	ep, _ := e.Registry.Get(dead.ID)
	t.Logf("disabled: %s", ep.StatusReason)
	if failWith == http.StatusGone && ep.StatusReason != "410 Gone" || failWith != http.StatusGone && !strings.HasPrefix(ep.StatusReason, "failing since") {
		t.Fatalf("status reason %q", ep.StatusReason)
	}
	// The platform hears about it through an endpoint.disabled event.
	eventually(t, 30*time.Second, "the endpoint.disabled event", func() bool {
		for _, d := range recv.deliveries("/watch") {
			data, _ := d.Body["data"].(map[string]any)
			if d.Body["type"] == "endpoint.disabled" && data["endpoint_id"] == dead.ID && data["reason"] == ep.StatusReason {
				return true
			}
		}
		return false
	})
	// Events published while disabled wait in its topic.
	for id, typ := range publish(t, e, "acme", 10, payments, in) {
		sent[id] = typ
	}
	before := len(recv.attempts("/dead"))
	healthy.Store(true)
	if _, err := e.Admin.SetStatus(ctx, dead.ID, registry.StatusActive, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "every event after re-enabling", func() bool { return receivedAll(recv, sent, "/dead") })
	if n := e.dlqCount(); n != 0 {
		t.Fatalf("%d events dead-lettered; a disabled endpoint must keep them", n)
	}
	t.Logf("%d failing attempts before the endpoint was disabled; all %d events delivered after re-enabling", before, len(sent))
}

func testRebalance(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	const endpoints = 6
	paths := make([]string, endpoints)
	for i := range paths {
		paths[i] = "/r" + string(rune('a'+i))
		ep := e.CreateEndpoint(registry.Endpoint{TenantID: "acme", URL: recv.url(paths[i]), EventTypes: []string{"*"}, Partitions: 2})
		recv.trust(paths[i], ep)
	}
	// Slow receivers keep attempts in flight when partitions move.
	recv.respond.Store(statusFor(func(string, delivery) int { time.Sleep(2 * time.Millisecond); return 0 }))
	e.StartRouter()
	stopA := e.StartDeliverer(e.delivererConfig())
	types, in, _ := samples(t, e)
	sent := map[string]string{}
	total := func() int {
		n := 0
		for _, p := range paths {
			n += len(recv.ids(p))
		}
		return n
	}
	var stopB func()
	for batch := 0; batch < 6; batch++ {
		for id, typ := range publish(t, e, "acme", 200, types, in) {
			sent[id] = typ
		}
		switch batch {
		case 1: // a second deliverer joins: partitions move to it
			eventually(t, 60*time.Second, "deliveries before scaling out", func() bool { return total() > 0 })
			stopB = e.StartDeliverer(e.delivererConfig())
		case 3: // the first one leaves: its partitions move to the second
			stopA()
		}
	}
	eventually(t, 120*time.Second, "every event at every endpoint", func() bool { return receivedAll(recv, sent, paths...) })
	stopB()
	dups := 0
	for _, p := range paths {
		for _, n := range recv.ids(p) {
			dups += n - 1
		}
	}
	t.Logf("%d deliveries across a scale-out and a scale-in, %d duplicates", len(sent)*endpoints, dups)
	if dups != 0 {
		t.Fatalf("%d duplicate deliveries: revoked partitions must be settled and committed before they are given up", dups)
	}
}
