package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/metrics"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/router"
	"github.com/hookstream/hookstream/schemas"
)

// TestPipeline runs the end-to-end scenarios against one broker started for
// it: kfake, or real Kafka with HOOKSTREAM_TEST_BROKER=kafka.
func TestPipeline(t *testing.T) {
	cluster := kafkatest.Start(t)
	t.Logf("broker: %s at %v", cluster.Kind, cluster.Addrs)
	t.Run("FanOutBySubscription", func(t *testing.T) { testFanOut(t, cluster) })
	t.Run("HandBuiltAvroRecord", func(t *testing.T) { testHandBuilt(t, cluster) })
	t.Run("RestartMidStream", func(t *testing.T) { testRestart(t, cluster) })
	t.Run("ReceiverRecoversFrom500", func(t *testing.T) { testRecover(t, cluster) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, cluster) })
}

// samples returns each catalog type's example data and the JSON data a
// receiver must get for it (the example after an Avro round trip, which
// fills defaults and normalises timestamps).
func samples(t *testing.T, e *env) (types []string, in map[string]json.RawMessage, want map[string]any) {
	t.Helper()
	in, want = map[string]json.RawMessage{}, map[string]any{}
	for _, typ := range e.Catalog.Types() {
		b, err := fs.ReadFile(schemas.FS, "events/"+typ+"/example.json")
		if err != nil {
			t.Fatalf("no example for %s: %v", typ, err)
		}
		soe, err := e.Catalog.EncodeJSON(typ, b)
		if err != nil {
			t.Fatalf("example of %s does not encode: %v", typ, err)
		}
		_, js, err := e.Catalog.DataToJSON(soe)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
		in[typ], want[typ] = b, v
	}
	return types, in, want
}

// publish publishes n events of the given types (round robin) for tenant and
// returns their ids by type.
func publish(t *testing.T, e *env, tenant string, n int, types []string, in map[string]json.RawMessage) map[string]string {
	t.Helper()
	evs := make([]producer.Event, n)
	for i := range evs {
		typ := types[i%len(types)]
		evs[i] = producer.Event{Type: typ, TenantID: tenant, Data: in[typ]}
	}
	out := map[string]string{}
	for i, id := range publishEvents(t, e, evs) {
		out[id] = evs[i].Type
	}
	return out
}

// publishEvents publishes evs in one batch and returns their ids, in order.
func publishEvents(t *testing.T, e *env, evs []producer.Event) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids, err := e.Producer.PublishBatch(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func testFanOut(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	subs := map[string][]string{
		"/exact":    {"payment.succeeded"},
		"/category": {"payment.*"},
		"/all":      {"*"},
	}
	eps := map[string]*registry.Endpoint{}
	for path, events := range subs {
		eps[path] = e.addEndpoint(recv.url(path), events...)
		recv.trust(path, eps[path])
	}
	e.StartRouter()
	e.StartDeliverer(e.delivererConfig())

	types, in, want := samples(t, e)
	sent := publish(t, e, "acme", 1000, types, in)
	publish(t, e, "someone-else", 50, types, in) // another tenant: nobody here subscribed

	expect := map[string]map[string]bool{}
	for path, events := range subs {
		expect[path] = map[string]bool{}
		for id, typ := range sent {
			for _, p := range events {
				if registry.MatchPattern(p, typ) {
					expect[path][id] = true
				}
			}
		}
	}
	if len(expect["/exact"]) == 0 || len(expect["/category"]) <= len(expect["/exact"]) || len(expect["/all"]) != 1000 {
		t.Fatalf("test data does not exercise the subscriptions: %d %d %d", len(expect["/exact"]), len(expect["/category"]), len(expect["/all"]))
	}
	for path, ids := range expect {
		eventually(t, 120*time.Second, fmt.Sprintf("%d events at %s", len(ids), path), func() bool { return receivedAll(recv, ids, path) })
	}
	// Give stragglers (events that should not come) a moment to show up.
	time.Sleep(500 * time.Millisecond)
	for path, ids := range expect {
		for id := range recv.ids(path) {
			if !ids[id] {
				t.Errorf("%s received %s (%s), which it did not subscribe to", path, id, sent[id])
			}
		}
		for _, d := range recv.deliveries(path) {
			typ := sent[d.ID]
			if d.Body["id"] != d.ID || d.Body["type"] != typ || d.Body["tenant_id"] != "acme" {
				t.Fatalf("%s: body envelope %v does not match webhook-id %s of type %s", path, d.Body, d.ID, typ)
			}
			if !reflect.DeepEqual(d.Body["data"], want[typ]) {
				t.Fatalf("%s: data of %s (%s)\n got %v\nwant %v", path, d.ID, typ, d.Body["data"], want[typ])
			}
			if _, err := time.Parse(time.RFC3339, d.Body["timestamp"].(string)); err != nil {
				t.Fatalf("timestamp %v: %v", d.Body["timestamp"], err)
			}
		}
	}
	if n := recv.badSig.Load(); n != 0 {
		t.Fatalf("%d deliveries failed signature verification", n)
	}
	// The stage latencies count every record at least once: each event
	// polled by the router, each endpoint-topic record fetched by the
	// deliverer (a batch polled again after an aborted transaction or a
	// rebalance counts again).
	records := 0
	for _, ids := range expect {
		records += len(ids)
	}
	if got := gaugeValue(t, e, "hookstream_router_fetch_delay_seconds"); got < 1050 {
		t.Errorf("router fetch delays observed = %v, want at least 1050 events", got)
	}
	if got := gaugeValue(t, e, "hookstream_deliverer_fetch_delay_seconds"); got < float64(records) {
		t.Errorf("deliverer fetch delays observed = %v, want at least %d endpoint records", got, records)
	}
}

func testRestart(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/r"), "*")
	recv.trust("/r", ep)
	stopRouter := e.StartRouter()
	stopDeliverer := e.StartDeliverer(e.delivererConfig())
	types, in, _ := samples(t, e)

	const total = 1000
	sent := map[string]string{}
	for batch := 0; batch < 10; batch++ {
		for id, typ := range publish(t, e, "acme", total/10, types, in) {
			sent[id] = typ
		}
		if batch == 3 {
			eventually(t, 60*time.Second, "first deliveries", func() bool { return len(recv.ids("/r")) > 0 })
			stopRouter()
			stopDeliverer()
			t.Logf("stopped router and deliverer after %d of %d events delivered", len(recv.ids("/r")), len(sent))
			stopRouter = e.StartRouter()
			stopDeliverer = e.StartDeliverer(e.delivererConfig())
		}
	}
	eventually(t, 120*time.Second, "every event after the restart", func() bool { return receivedAll(recv, sent, "/r") })
	dups := 0
	for _, n := range recv.ids("/r") {
		dups += n - 1
	}
	t.Logf("%d events, %d duplicate deliveries (at-least-once across the restart)", total, dups)
}

func testRecover(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/flaky"), "*")
	recv.trust("/flaky", ep)
	var healthy atomic.Bool
	fail := func(string) bool { return !healthy.Load() }
	recv.fail.Store(&fail)
	e.StartRouter()
	e.StartDeliverer(e.delivererConfig())
	types, in, _ := samples(t, e)
	sent := publish(t, e, "acme", 200, types, in)
	eventually(t, 60*time.Second, "failing attempts", func() bool { return recv.rejections.Load() >= 10 })
	healthy.Store(true)
	eventually(t, 60*time.Second, "every event once the receiver recovered", func() bool { return receivedAll(recv, sent, "/flaky") })
	retried := 0
	for _, d := range recv.deliveries("/flaky") {
		if n, _ := strconv.Atoi(d.Attempt); n > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no delivery carried webhook-attempt > 1 although every first attempt failed")
	}
}

func testBadInput(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/ok"), "*")
	recv.trust("/ok", ep)
	e.StartRouter()
	e.StartDeliverer(e.delivererConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Refused by Publish, before Kafka.
	_, err := e.Producer.Publish(ctx, producer.Event{Type: "no.such_type", TenantID: "acme", Data: json.RawMessage(`{}`)})
	if !errors.Is(err, producer.ErrInvalidEvent) {
		t.Fatalf("unknown type: err = %v, want ErrInvalidEvent", err)
	}
	types, in, _ := samples(t, e)
	_, err = e.Producer.Publish(ctx, producer.Event{Type: types[0], TenantID: "acme", Data: json.RawMessage(`{"not_a_field": 1}`)})
	if !errors.Is(err, producer.ErrInvalidEvent) {
		t.Fatalf("bad data: err = %v, want ErrInvalidEvent", err)
	}
	_, err = e.Producer.Publish(ctx, producer.Event{Type: types[0], Data: in[types[0]]})
	if !errors.Is(err, producer.ErrInvalidEvent) {
		t.Fatalf("no tenant: err = %v, want ErrInvalidEvent", err)
	}

	// Written to the events topic by someone else: quarantined, not fatal.
	good, err := e.Producer.Record(producer.Event{Type: types[0], TenantID: "acme", Data: in[types[0]]})
	if err != nil {
		t.Fatal(err)
	}
	unknownFP := append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, good.Value[10:]...)
	env, err := e.Catalog.DecodeEnvelope(good.Value)
	if err != nil {
		t.Fatal(err)
	}
	badData := handEnvelope(env.ID+"x", env.Type, env.TenantID, env.OccurredAt,
		append([]byte{0xC3, 0x01, 8, 7, 6, 5, 4, 3, 2, 1}, env.Data[10:]...))
	bad := map[string][]byte{
		"not avro":               []byte(`{"json": "is not avro"}`),
		"unknown schema":         unknownFP,
		"data of unknown schema": badData,
	}
	topic := e.Kafka.Topics().Events()
	for name, v := range bad {
		if err := e.Client.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(name), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	id, err := e.Producer.Publish(ctx, producer.Event{Type: types[0], TenantID: "acme", Data: in[types[0]]})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the valid event after the invalid ones", func() bool { return recv.ids("/ok")[id] > 0 })

	// Every invalid record is in the quarantine topic with its reason.
	qc := e.Cluster.Client(t, kgo.ConsumeTopics(e.Kafka.Topics().Invalid()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	reasons := map[string]string{}
	for len(reasons) < len(bad) {
		fs := qc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("quarantine has %d of %d records: %v", len(reasons), len(bad), reasons)
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == router.HeaderError {
					reasons[string(r.Key)] = string(h.Value)
				}
			}
		})
	}
	for name := range bad {
		if reasons[name] == "" {
			t.Errorf("%s: no %s header in quarantine", name, router.HeaderError)
		}
		t.Logf("quarantined %q: %s", name, reasons[name])
	}
	if got := counterValue(t, e, "hookstream_router_events_total", "result", "quarantined"); got != float64(len(bad)) {
		t.Errorf("quarantined counter = %v, want %d", got, len(bad))
	}
}

func counterValue(t *testing.T, e *env, name, label, value string) float64 {
	t.Helper()
	v, err := metrics.Sum(e.Metrics, name, label, value)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gaugeValue is the value of an unlabelled gauge (or a histogram's sample
// count), 0 if it is not there.
func gaugeValue(t *testing.T, e *env, name string) float64 {
	t.Helper()
	v, err := metrics.Sum(e.Metrics, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
