package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/schemas"
)

// TestOperatorCommands runs the operator commands (endpoints update and
// rotate, dlq, replay) through run() against one cluster (kfake, or real
// Kafka with HOOKSTREAM_TEST_BROKER=kafka); each subtest has its own topic
// prefix.
func TestOperatorCommands(t *testing.T) {
	c := kafkatest.Start(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *opsEnv)
	}{
		{"EndpointsAddAndUpdate", testEndpointsAddAndUpdate},
		{"EndpointsRotate", testEndpointsRotate},
		{"RotationDeliversSignedWithBoth", testRotationDelivers},
		{"DLQListAndRedrive", testDLQListAndRedrive},
		{"DLQRedriveIsDelivered", testDLQRedriveDelivered},
		{"ReplayRewind", testReplayRewind},
		{"ReplayRefusesLiveGroup", testReplayLiveGroup},
		{"ReplayCopy", testReplayCopy},
		{"UsageErrors", testOpsUsageErrors},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newOpsEnv(t, c))
		})
	}
}

// opsEnv is one subtest's slice of the shared cluster.
type opsEnv struct {
	t       *testing.T
	cluster *kafkatest.Cluster
	kcfg    kafka.Config
	cat     *codec.Catalog
	cl      *kgo.Client
	adm     *kadm.Client
	reg     *registry.Registry
	admin   *registry.Admin
}

func newOpsEnv(t *testing.T, c *kafkatest.Cluster) *opsEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prefix := fmt.Sprintf("ops%d", rand.Uint32())
	kcfg := kafka.Config{Brokers: c.Addrs, Prefix: prefix, ClientID: prefix}
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if err := kcfg.EnsureTopics(ctx, adm, kcfg.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, kcfg, cat, registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return &opsEnv{t: t, cluster: c, kcfg: kcfg, cat: cat, cl: cl, adm: adm, reg: reg, admin: registry.NewAdmin(kcfg, cl, cat, reg)}
}

// run runs the hookstream command with the env's brokers and prefix and
// returns its exit code and output.
func (e *opsEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	args = append(slices.Clone(args), "--brokers", strings.Join(e.kcfg.Brokers, ","), "--topic-prefix", e.kcfg.Prefix, "--client-id", e.kcfg.Prefix)
	code = run(ctx, args, &out, &errOut)
	e.t.Logf("hookstream %s → %d\n%s%s", strings.Join(args[:len(args)-6], " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// mustRun runs the command and fails the test unless it exits 0.
func (e *opsEnv) mustRun(args ...string) string {
	e.t.Helper()
	code, out, errOut := e.run(args...)
	if code != 0 {
		e.t.Fatalf("hookstream %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (e *opsEnv) createEndpoint(spec registry.Endpoint) *registry.Endpoint {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if spec.TenantID == "" {
		spec.TenantID = "acme"
	}
	if spec.URL == "" {
		spec.URL = "http://127.0.0.1:1/hook"
	}
	if spec.EventTypes == nil {
		spec.EventTypes = []string{"*"}
	}
	ep, err := e.admin.Create(ctx, spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// endpoint returns the endpoint as the env's registry sees it once cond
// holds for it.
func (e *opsEnv) endpoint(id string, cond func(*registry.Endpoint) bool) *registry.Endpoint {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got *registry.Endpoint
	err := e.reg.WaitFor(ctx, func(r *registry.Registry) bool {
		ep, ok := r.Get(id)
		got = ep
		return ok && cond(ep)
	})
	if err != nil {
		e.t.Fatalf("endpoint %s never reached the expected state; last seen %+v", id, got)
	}
	return got
}

// envelope returns the encoded envelope of a new payment.succeeded event
// of tenant acme, and its id.
func (e *opsEnv) envelope() ([]byte, string) {
	e.t.Helper()
	data, err := schemas.FS.ReadFile("events/payment.succeeded/example.json")
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := producer.New(producer.WithKafkaConfig(e.kcfg), producer.WithCatalog(e.cat))
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	rec, err := p.Record(producer.Event{Type: "payment.succeeded", TenantID: "acme", Data: json.RawMessage(data)})
	if err != nil {
		e.t.Fatal(err)
	}
	return rec.Value, string(rec.Headers[0].Value)
}

func (e *opsEnv) produce(recs ...*kgo.Record) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// readTopic returns the committed data records of topic, every partition
// read up to its end now.
func (e *opsEnv) readTopic(topic string) []*kgo.Record {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	if len(pending) == 0 {
		return nil
	}
	cl := e.cluster.Client(e.t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	defer cl.Close()
	var out []*kgo.Record
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("reading %s: %v (still pending %v)", topic, ctx.Err(), pending)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := pending[r.Partition]; ok && r.Offset >= end-1 {
				delete(pending, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func testEndpointsAddAndUpdate(t *testing.T, e *opsEnv) {
	out := e.mustRun("endpoints", "add", "--tenant", "acme", "--url", "http://127.0.0.1:1/a", "--events", "payment.*",
		"--ordered", "--rate-limit", "5", "--max-in-flight", "3", "--retry-schedule", "1s,2m", "--description", "first", "--json")
	var added struct {
		ID      string   `json:"id"`
		Secrets []string `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.ID == "" {
		t.Fatalf("endpoints add --json printed %q: %v", out, err)
	}
	ep := e.endpoint(added.ID, func(*registry.Endpoint) bool { return true })
	if !ep.Ordered || ep.RateLimit != 5 || ep.MaxInFlight != 3 || !slices.Equal(ep.RetryScheduleMS, []int64{1000, 120000}) {
		t.Fatalf("added endpoint %+v: want ordered, rate 5, max in flight 3, schedule [1000 120000]", ep)
	}

	// Only the flags given change.
	e.mustRun("endpoints", "update", "--id", ep.ID, "--url", "http://127.0.0.1:2/b", "--ordered=false", "--retry-schedule", "default", "--partitions", "2")
	got := e.endpoint(ep.ID, func(x *registry.Endpoint) bool { return x.URL == "http://127.0.0.1:2/b" })
	if got.Ordered || len(got.RetryScheduleMS) != 0 || got.Partitions != 2 {
		t.Errorf("after update: ordered %v, schedule %v, partitions %d; want false, [], 2", got.Ordered, got.RetryScheduleMS, got.Partitions)
	}
	if got.RateLimit != 5 || got.MaxInFlight != 3 || got.Description != "first" || !slices.Equal(got.EventTypes, []string{"payment.*"}) ||
		!slices.Equal(got.Secrets, added.Secrets) || got.TenantID != "acme" || got.Status != registry.StatusActive {
		t.Errorf("update changed fields it was not given: %+v", got)
	}
	// CreatePartitions returns once the controller has the change; a
	// broker's metadata may show it a moment later.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n := 0; n != 2; {
		md, err := e.adm.Metadata(ctx, e.kcfg.Topics().Endpoint(ep.ID))
		if err != nil {
			t.Fatalf("endpoint topic has %d partitions after --partitions 2 (%v)", n, err)
		}
		if n = len(md.Topics[e.kcfg.Topics().Endpoint(ep.ID)].Partitions); n != 2 {
			time.Sleep(50 * time.Millisecond)
		}
	}

	out = e.mustRun("endpoints", "update", "--id", ep.ID, "--events", "order.created, payment.succeeded", "--rate-limit", "0",
		"--max-in-flight", "0", "--retry-schedule", "5s,1m,10m", "--description", "", "--ordered")
	got = e.endpoint(ep.ID, func(x *registry.Endpoint) bool { return x.Ordered })
	if !slices.Equal(got.EventTypes, []string{"order.created", "payment.succeeded"}) || got.RateLimit != 0 || got.MaxInFlight != 0 ||
		!slices.Equal(got.RetryScheduleMS, []int64{5000, 60000, 600000}) || got.Description != "" || got.URL != "http://127.0.0.1:2/b" {
		t.Errorf("second update: %+v", got)
	}
	if !strings.Contains(out, "retry schedule  5s,1m,10m") {
		t.Errorf("update output does not show the new settings:\n%s", out)
	}

	// Shrinking partitions is refused by the registry: exit 1 with why.
	code, _, errOut := e.run("endpoints", "update", "--id", ep.ID, "--partitions", "1")
	if code != 1 || !strings.Contains(errOut, "can only grow") {
		t.Errorf("shrinking partitions: exit %d, %q; want 1 and 'can only grow'", code, errOut)
	}
}

func testEndpointsRotate(t *testing.T, e *opsEnv) {
	s0 := mustSecret(t)
	ep := e.createEndpoint(registry.Endpoint{Secrets: []string{s0.String()}})

	out := e.mustRun("endpoints", "rotate", "--id", ep.ID)
	s1 := secretFrom(t, out)
	got := e.endpoint(ep.ID, func(x *registry.Endpoint) bool { return len(x.Secrets) == 2 })
	if !slices.Equal(got.Secrets, []string{s1.String(), s0.String()}) {
		t.Fatalf("after rotate: secrets %v, want [new, old]", got.Secrets)
	}
	if !strings.Contains(out, "--drop-old") {
		t.Errorf("rotate does not say how to end the rotation:\n%s", out)
	}
	// Both sign: one v1 entry each, and a receiver trusting either verifies.
	sig := webhook.NewSigner(s1, s0)
	now := time.Now()
	header := http.Header{}
	sig.SetHeaders(header, "msg_1", now, []byte(`{}`))
	if n := strings.Count(header.Get("webhook-signature"), "v1,"); n != 2 {
		t.Errorf("signature %q has %d v1 entries, want 2", header.Get("webhook-signature"), n)
	}
	for _, s := range []webhook.Secret{s0, s1} {
		if err := webhook.Verify(s, header, []byte(`{}`)); err != nil {
			t.Errorf("a receiver trusting one secret does not verify: %v", err)
		}
	}

	s2 := mustSecret(t)
	out = e.mustRun("endpoints", "rotate", "--id", ep.ID, "--secret", s2.String())
	if !strings.Contains(out, s2.String()) {
		t.Errorf("rotate --secret does not print the secret:\n%s", out)
	}
	e.endpoint(ep.ID, func(x *registry.Endpoint) bool {
		return slices.Equal(x.Secrets, []string{s2.String(), s1.String(), s0.String()})
	})

	code, _, errOut := e.run("endpoints", "rotate", "--id", ep.ID, "--secret", s1.String())
	if code != 1 || !strings.Contains(errOut, "already has this secret") {
		t.Errorf("rotating to a secret the endpoint has: exit %d, %q", code, errOut)
	}

	e.mustRun("endpoints", "rotate", "--id", ep.ID, "--drop-old")
	e.endpoint(ep.ID, func(x *registry.Endpoint) bool { return slices.Equal(x.Secrets, []string{s2.String()}) })
	out = e.mustRun("endpoints", "rotate", "--id", ep.ID, "--drop-old") // nothing left to drop
	if !strings.Contains(out, "newest secret only") {
		t.Errorf("second --drop-old: %q", out)
	}

	s3 := mustSecret(t)
	e.mustRun("endpoints", "rotate", "--id", ep.ID, "--secret", s3.String(), "--drop-old")
	e.endpoint(ep.ID, func(x *registry.Endpoint) bool { return slices.Equal(x.Secrets, []string{s3.String()}) })
}

// testRotationDelivers: after a rotation a running deliverer signs with
// both secrets, so a receiver trusting only the new one and a receiver
// trusting only the old one both verify the same delivery.
func testRotationDelivers(t *testing.T, e *opsEnv) {
	oldSecret := mustSecret(t)
	type verdict struct{ oldOK, newOK bool }
	var (
		mu        sync.Mutex
		newSecret webhook.Secret
		got       = make(chan verdict, 16)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		ns := newSecret
		mu.Unlock()
		v := verdict{oldOK: webhook.Verify(oldSecret, r.Header, body) == nil}
		if !ns.IsZero() {
			v.newOK = webhook.Verify(ns, r.Header, body) == nil
		}
		got <- v
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close) // after the deliverer stops
	ep := e.createEndpoint(registry.Endpoint{URL: srv.URL + "/hook", Secrets: []string{oldSecret.String()}})

	out := e.mustRun("endpoints", "rotate", "--id", ep.ID)
	mu.Lock()
	newSecret = secretFrom(t, out)
	mu.Unlock()
	e.endpoint(ep.ID, func(x *registry.Endpoint) bool { return len(x.Secrets) == 2 })

	e.startDeliverer()

	env, _ := e.envelope()
	e.produce(&kgo.Record{Topic: e.kcfg.Topics().Endpoint(ep.ID), Key: []byte("acme"), Value: env})
	select {
	case v := <-got:
		if !v.oldOK || !v.newOK {
			t.Errorf("delivery verified with old secret: %v, with new secret: %v; want both", v.oldOK, v.newOK)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
	}
}

// startDeliverer runs a deliverer of the env's endpoints until the test
// ends.
func (e *opsEnv) startDeliverer() {
	e.t.Helper()
	d, err := deliverer.New(deliverer.Config{Kafka: e.kcfg, Group: e.kcfg.Prefix + "-deliverer", AllowPrivateTargets: true, Schedule: deliverer.Schedule{100 * time.Millisecond},
		CommitInterval: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, e.reg, e.cat)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("deliverer: %v", err)
		}
	})
}

func mustSecret(t *testing.T) webhook.Secret {
	t.Helper()
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// secretFrom parses the "secret:" line of rotate's output.
func secretFrom(t *testing.T, out string) webhook.Secret {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "secret:"); ok {
			s, err := webhook.ParseSecret(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("rotate printed a bad secret: %v", err)
			}
			return s
		}
	}
	t.Fatalf("no secret: line in\n%s", out)
	return webhook.Secret{}
}

func testOpsUsageErrors(t *testing.T, e *opsEnv) {
	ep := e.createEndpoint(registry.Endpoint{})
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"endpoints", "update", "--url", "http://x"}, 2, "--id is required"},
		{[]string{"endpoints", "rotate"}, 2, "--id is required"},
		{[]string{"endpoints", "update", "--id", ep.ID}, 2, "nothing to update"},
		{[]string{"endpoints", "update", "--id", ep.ID, "--retry-schedule", "5s,soon"}, 2, "--retry-schedule"},
		{[]string{"endpoints", "update", "--id", ep.ID, "--retry-schedule", "-5s"}, 2, "must be positive"},
		{[]string{"endpoints", "update", "--id", ep.ID, "--retry-schedule", "1500us"}, 2, "whole milliseconds"},
		{[]string{"endpoints", "update", "--id", ep.ID, "--events", " , "}, 2, "--events"},
		{[]string{"endpoints", "update", "--id", ep.ID, "--max-in-flight", "-1"}, 2, "--max-in-flight"},
		{[]string{"endpoints", "add", "--tenant", "acme", "--url", "http://x", "--events", "*", "--retry-schedule", "0s"}, 2, "--retry-schedule"},
		{[]string{"endpoints", "rotate", "--id", ep.ID, "--secret", "whsec_short"}, 2, "--secret"},
		{[]string{"endpoints", "update", "--id", "ep_nope", "--url", "http://127.0.0.1:1/x"}, 1, "not found"},
		{[]string{"endpoints", "rotate", "--id", "ep_nope"}, 1, "not found"},
		{[]string{"endpoints", "update", "--id", ep.ID, "--rate-limit", "-1"}, 1, "rate_limit"},
		{[]string{"replay", "--from", "earliest"}, 2, "--endpoint is required"},
		{[]string{"replay", "--endpoint", ep.ID}, 2, "--from is required"},
		{[]string{"replay", "--endpoint", ep.ID, "--from", "yesterday"}, 2, "--from"},
		{[]string{"replay", "--endpoint", ep.ID, "--from", "2h"}, 2, "must be negative"},
		{[]string{"replay", "--endpoint", ep.ID, "--from", "2999-01-01T00:00:00Z"}, 2, "in the future"},
		{[]string{"replay", "--endpoint", "ep_nope", "--from", "earliest"}, 1, "not found"},
		{[]string{"dlq"}, 2, "Usage"},
		{[]string{"dlq", "purge"}, 2, "unknown subcommand"},
		{[]string{"dlq", "list", "--reason", "bored"}, 2, "--reason"},
		{[]string{"dlq", "list", "--limit", "-3"}, 2, "--limit"},
		{[]string{"dlq", "redrive", "--limit", "3"}, 2, "flag provided but not defined"},
	} {
		code, _, errOut := e.run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("hookstream %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
	for _, args := range [][]string{{"replay", "--help"}, {"dlq", "list", "--help"}, {"dlq", "redrive", "--help"}, {"dlq", "--help"},
		{"endpoints", "update", "--help"}, {"endpoints", "rotate", "--help"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 0 || out.Len()+errOut.Len() == 0 {
			t.Errorf("hookstream %s: exit %d, no help printed", strings.Join(args, " "), code)
		}
	}
}
