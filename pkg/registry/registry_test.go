package registry

// These tests need a broker: they run on kfake in-process (or on real Kafka
// when HOOKSTREAM_TEST_BROKER=kafka, see pkg/kafkatest). They live in the
// package itself to drive Admin's clock.

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// testEnv is one test's cluster with the registry topic created, an Admin
// whose clock the test sets, and the Registry the Admin reads through.
type testEnv struct {
	t   *testing.T
	ctx context.Context
	cfg kafka.Config
	cat *codec.Catalog
	reg *Registry // the admin's own view
	adm *Admin
	cl  *kgo.Client
	ka  *kadm.Client

	mu  sync.Mutex
	now time.Time
}

var regEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	c := kafkatest.Start(t)
	e := &testEnv{
		t: t, ctx: ctx, now: regEpoch,
		cfg: kafka.Config{Brokers: c.Addrs, Prefix: "regtest", ReplicationFactor: c.ReplicationFactor()},
	}
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	e.cat = cat
	e.cl = c.Client(t, e.cfg.ClientOpts("test-admin")...)
	e.ka = kadm.NewClient(e.cl)
	if err := e.cfg.EnsureTopics(ctx, e.ka, e.cfg.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	e.reg = e.open()
	e.adm = NewAdmin(e.cfg, e.cl, cat, e.reg)
	e.adm.now = e.clock
	return e
}

func (e *testEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// advance moves the admin's clock; every write the tests make happens at a
// distinct millisecond.
func (e *testEnv) advance(d time.Duration) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
	return e.now
}

// open opens another Registry on the same topic, closed when the test ends.
func (e *testEnv) open() *Registry {
	e.t.Helper()
	r, err := Open(e.ctx, e.cfg, e.cat, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(r.Close)
	return r
}

func (e *testEnv) create(spec Endpoint) *Endpoint {
	e.t.Helper()
	e.advance(time.Second)
	ep, err := e.adm.Create(e.ctx, spec)
	if err != nil {
		e.t.Fatalf("Create(%+v): %v", spec, err)
	}
	return ep
}

// waitFor waits until cond holds for r, failing the test at the deadline.
func (e *testEnv) waitFor(r *Registry, what string, cond func(*Registry) bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, cond); err != nil {
		e.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitPartitions polls metadata until topic has want partitions (0: the
// topic does not exist). kadm serves metadata from the client's cache, up to
// MetadataMinAge old, so a change made a moment ago may not show at once.
func (e *testEnv) waitPartitions(topic string, want int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.partitions(topic)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("topic %s has %d partitions, want %d", topic, got, want)
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatal(e.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// partitions returns the partition count of topic, 0 if it does not exist.
func (e *testEnv) partitions(topic string) int {
	e.t.Helper()
	md, err := e.ka.Metadata(e.ctx, topic)
	if err != nil {
		e.t.Fatalf("metadata of %s: %v", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return 0
	}
	return len(td.Partitions)
}

func idsOf(eps []*Endpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.ID
	}
	return out
}

func TestOpenEmptyTopicReturnsAtOnce(t *testing.T) {
	e := newTestEnv(t) // opens e.reg on the empty topic
	// Were Open waiting for a record, it would fail at this deadline.
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	r, err := Open(ctx, e.cfg, e.cat, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("Open on an empty topic: %v", err)
	}
	defer r.Close()
	t.Logf("Open on an empty topic took %v", time.Since(start))
	if got := r.List(""); len(got) != 0 {
		t.Errorf("List on an empty registry = %v", idsOf(got))
	}
	if _, ok := r.Get("ep_nope"); ok {
		t.Error("Get found an endpoint in an empty registry")
	}
	if got := r.Match(nil, "t1", "order.created"); len(got) != 0 {
		t.Errorf("Match on an empty registry = %v", idsOf(got))
	}
}

func TestOpenMissingTopic(t *testing.T) {
	c := kafkatest.Start(t)
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafka.Config{Brokers: c.Addrs, Prefix: "nothere"}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second) // Open waits for the topic until ctx ends
	defer cancel()
	r, err := Open(ctx, cfg, cat, WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil {
		r.Close()
		t.Fatal("Open succeeded without the registry topic")
	}
	if !strings.Contains(err.Error(), cfg.Topics().Endpoints()) {
		t.Errorf("error %q does not name the topic %s", err, cfg.Topics().Endpoints())
	}
}

func TestOpenCatchesUpBeforeReturning(t *testing.T) {
	e := newTestEnv(t)
	for _, id := range []string{"ep-c", "ep-a", "ep-b"} {
		e.create(Endpoint{ID: id, TenantID: "t1", URL: "https://example.com/" + id, EventTypes: []string{"*"}})
	}
	e.advance(time.Second)
	if _, err := e.adm.SetStatus(e.ctx, "ep-b", StatusDisabled, "paused"); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	if err := e.adm.Delete(e.ctx, "ep-c"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.adm.Purge(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	e.waitFor(e.reg, "the purge", func(r *Registry) bool { _, ok := r.Get("ep-c"); return !ok })

	// No WaitFor: Open itself returns only once caught up.
	r := e.open()
	if got, want := idsOf(r.List("")), []string{"ep-a", "ep-b"}; !slices.Equal(got, want) {
		t.Errorf("after Open, List = %v, want %v", got, want)
	}
	if b, ok := r.Get("ep-b"); !ok || b.Status != StatusDisabled || b.StatusReason != "paused" {
		t.Errorf("after Open, Get(ep-b) = %+v, %v; want it disabled with reason", b, ok)
	}
}

// changeCall is one OnChange call.
type changeCall struct{ old, cur *Endpoint }

// recordChanges registers a listener on r and returns the channel it feeds.
func recordChanges(r *Registry) <-chan changeCall {
	ch := make(chan changeCall, 64) // the listener must not block
	r.OnChange(func(old, cur *Endpoint) { ch <- changeCall{old, cur} })
	return ch
}

func nextChange(t *testing.T, ch <-chan changeCall) changeCall {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange call within 10s")
		return changeCall{}
	}
}

func TestAdminRoundTripSeenBySecondRegistry(t *testing.T) {
	e := newTestEnv(t)
	other := e.open()
	changes := recordChanges(other)
	topic := e.cfg.Topics().Endpoint("ep-1")

	// Create fills in status, secret and times; sorts and dedupes patterns.
	created := e.create(Endpoint{
		ID: "ep-1", TenantID: "t1", URL: "https://example.com/hooks",
		EventTypes: []string{"payment.*", "order.created", "payment.*"},
		Partitions: 2, Description: "first",
	})
	if created.Status != StatusActive || len(created.Secrets) != 1 || !created.CreatedAt.Equal(e.clock()) ||
		!created.UpdatedAt.Equal(e.clock()) || created.DeletedAt != nil {
		t.Errorf("Create returned %+v", created)
	}
	if _, err := webhook.ParseSecret(created.Secrets[0]); err != nil {
		t.Errorf("generated secret %q: %v", created.Secrets[0], err)
	}
	if want := []string{"order.created", "payment.*"}; !slices.Equal(created.EventTypes, want) {
		t.Errorf("EventTypes = %v, want %v", created.EventTypes, want)
	}
	e.waitPartitions(topic, 2)
	c := nextChange(t, changes)
	if c.old != nil || c.cur == nil || c.cur.ID != "ep-1" || c.cur.URL != created.URL ||
		!slices.Equal(c.cur.Secrets, created.Secrets) || !c.cur.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("OnChange after Create = (%+v, %+v)", c.old, c.cur)
	}
	if got, ok := other.Get("ep-1"); !ok || got != c.cur {
		t.Errorf("second registry Get(ep-1) = %p, %v; want the endpoint OnChange got (%p)", got, ok, c.cur)
	}
	prev := c.cur

	// Update replaces mutable fields, keeps tenant and creation time, grows partitions.
	upd := created.Clone()
	upd.TenantID = "someone-else" // ignored
	upd.URL = "https://example.com/v2"
	upd.EventTypes = []string{"*"}
	upd.Partitions = 3
	upd.Description = "second"
	upd.RateLimit = 5
	upd.MaxInFlight = 2
	updatedAt := e.advance(time.Second)
	got, err := e.adm.Update(e.ctx, upd)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got.TenantID != "t1" || !got.CreatedAt.Equal(created.CreatedAt) || !got.UpdatedAt.Equal(updatedAt) || got.Status != StatusActive {
		t.Errorf("Update returned %+v", got)
	}
	e.waitPartitions(topic, 3)
	c = nextChange(t, changes)
	if c.old != prev || c.cur.URL != "https://example.com/v2" || c.cur.Description != "second" || c.cur.Partitions != 3 ||
		c.cur.RateLimit != 5 || c.cur.MaxInFlight != 2 || c.cur.TenantID != "t1" || !slices.Equal(c.cur.EventTypes, []string{"*"}) {
		t.Fatalf("OnChange after Update = (%p, %+v), want old %p", c.old, c.cur, prev)
	}
	prev = c.cur

	// SetStatus disabled, then active again.
	e.advance(time.Second)
	if _, err := e.adm.SetStatus(e.ctx, "ep-1", StatusDisabled, "maintenance"); err != nil {
		t.Fatal(err)
	}
	c = nextChange(t, changes)
	if c.old != prev || c.cur.Status != StatusDisabled || c.cur.StatusReason != "maintenance" || c.cur.URL != "https://example.com/v2" {
		t.Fatalf("OnChange after SetStatus(disabled) = (%p, %+v)", c.old, c.cur)
	}
	prev = c.cur
	e.advance(time.Second)
	if _, err := e.adm.SetStatus(e.ctx, "ep-1", StatusActive, ""); err != nil {
		t.Fatal(err)
	}
	c = nextChange(t, changes)
	if c.old != prev || c.cur.Status != StatusActive {
		t.Fatalf("OnChange after SetStatus(active) = (%p, %+v)", c.old, c.cur)
	}
	prev = c.cur

	// Delete marks it deleted; the record and topic stay until Purge.
	deletedAt := e.advance(time.Second)
	if err := e.adm.Delete(e.ctx, "ep-1"); err != nil {
		t.Fatal(err)
	}
	c = nextChange(t, changes)
	if c.old != prev || c.cur.Status != StatusDeleted || c.cur.DeletedAt == nil || !c.cur.DeletedAt.Equal(deletedAt) {
		t.Fatalf("OnChange after Delete = (%p, %+v)", c.old, c.cur)
	}
	prev = c.cur
	if n := e.partitions(topic); n != 3 {
		t.Errorf("after Delete, topic %s has %d partitions, want it kept (3)", topic, n)
	}

	// Purge writes the tombstone: cur is nil.
	if _, err := e.adm.Purge(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	c = nextChange(t, changes)
	if c.old != prev || c.cur != nil {
		t.Fatalf("OnChange after Purge = (%p, %+v), want (%p, nil)", c.old, c.cur, prev)
	}
	if _, ok := other.Get("ep-1"); ok {
		t.Error("second registry still has ep-1 after its tombstone")
	}
	if got := other.List("t1"); len(got) != 0 {
		t.Errorf("List(t1) after the tombstone = %v", idsOf(got))
	}
	select {
	case c := <-changes:
		t.Errorf("unexpected extra change (%+v, %+v)", c.old, c.cur)
	default:
	}
}

func TestOnChangeOnlyAfterRegistration(t *testing.T) {
	e := newTestEnv(t)
	e.create(Endpoint{ID: "before", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}})
	changes := recordChanges(e.reg)
	e.create(Endpoint{ID: "after", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}})
	if c := nextChange(t, changes); c.cur == nil || c.cur.ID != "after" {
		t.Fatalf("first change after registration = %+v, want the creation of 'after'", c.cur)
	}
}

func TestPurgeOnlyAfterGrace(t *testing.T) {
	e := newTestEnv(t)
	other := e.open()
	const grace = time.Hour
	e.create(Endpoint{ID: "gone", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}})
	e.create(Endpoint{ID: "kept", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}})
	e.create(Endpoint{ID: "off", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}})
	e.advance(time.Second)
	if _, err := e.adm.SetStatus(e.ctx, "off", StatusDisabled, "x"); err != nil {
		t.Fatal(err)
	}
	deletedAt := e.advance(time.Second)
	if err := e.adm.Delete(e.ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	topic := e.cfg.Topics().Endpoint("gone")

	for _, now := range []time.Time{deletedAt, deletedAt.Add(grace - time.Millisecond)} {
		e.mu.Lock()
		e.now = now
		e.mu.Unlock()
		purged, err := e.adm.Purge(e.ctx, grace)
		if err != nil || len(purged) != 0 {
			t.Fatalf("Purge %v after the delete = %v, %v; want nothing purged within the grace", now.Sub(deletedAt), purged, err)
		}
		if e.partitions(topic) == 0 {
			t.Fatalf("topic %s deleted %v after the delete, within the grace", topic, now.Sub(deletedAt))
		}
	}

	e.advance(2 * time.Millisecond) // grace + 1ms
	purged, err := e.adm.Purge(e.ctx, grace)
	if err != nil || !slices.Equal(purged, []string{"gone"}) {
		t.Fatalf("Purge after the grace = %v, %v; want [gone]", purged, err)
	}
	e.waitPartitions(topic, 0)
	for _, id := range []string{"kept", "off"} {
		if e.partitions(e.cfg.Topics().Endpoint(id)) == 0 {
			t.Errorf("Purge removed the topic of %s, which is not deleted", id)
		}
	}
	e.waitFor(other, "the tombstone of gone", func(r *Registry) bool { _, ok := r.Get("gone"); return !ok })
	if got := idsOf(other.List("")); !slices.Equal(got, []string{"kept", "off"}) {
		t.Errorf("after Purge, List = %v, want [kept off]", got)
	}
	e.waitFor(e.reg, "the admin's view of the tombstone", func(r *Registry) bool { _, ok := r.Get("gone"); return !ok })
	if purged, err := e.adm.Purge(e.ctx, 0); err != nil || len(purged) != 0 {
		t.Errorf("second Purge = %v, %v; want nothing", purged, err)
	}
}

func TestMatch(t *testing.T) {
	e := newTestEnv(t)
	// Created out of id order; Match must return id order.
	e.create(Endpoint{ID: "t1-d", TenantID: "t1", URL: "https://d.example/", EventTypes: []string{"payment.succeeded"}})
	e.create(Endpoint{ID: "t1-c", TenantID: "t1", URL: "https://c.example/", EventTypes: []string{"order.*"}})
	e.create(Endpoint{ID: "t1-b", TenantID: "t1", URL: "https://b.example/", EventTypes: []string{"payment.*"}})
	e.create(Endpoint{ID: "t1-a", TenantID: "t1", URL: "https://a.example/", EventTypes: []string{"*"}})
	e.create(Endpoint{ID: "t1-e", TenantID: "t1", URL: "https://e.example/", EventTypes: []string{"*"}})
	e.create(Endpoint{ID: "t2-a", TenantID: "t2", URL: "https://t2.example/", EventTypes: []string{"*"}})
	e.advance(time.Second)
	if _, err := e.adm.SetStatus(e.ctx, "t1-b", StatusDisabled, "paused"); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	if err := e.adm.Delete(e.ctx, "t1-e"); err != nil {
		t.Fatal(err)
	}
	r := e.open() // a fresh view, caught up

	for _, tc := range []struct {
		tenant, eventType string
		want              []string
	}{
		{"t1", "payment.succeeded", []string{"t1-a", "t1-b", "t1-d"}}, // disabled t1-b included, deleted t1-e not
		{"t1", "payment.failed", []string{"t1-a", "t1-b"}},
		{"t1", "order.created", []string{"t1-a", "t1-c"}},
		{"t1", "user.created", []string{"t1-a"}},
		{"t2", "payment.succeeded", []string{"t2-a"}},
		{"t3", "payment.succeeded", []string{}},
		{"", "payment.succeeded", []string{}},
	} {
		got := r.Match(nil, tc.tenant, tc.eventType)
		if !slices.Equal(idsOf(got), tc.want) {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.tenant, tc.eventType, idsOf(got), tc.want)
		}
	}

	// Match appends to dst.
	dst := []*Endpoint{{ID: "sentinel"}}
	if got := idsOf(r.Match(dst, "t2", "order.paid")); !slices.Equal(got, []string{"sentinel", "t2-a"}) {
		t.Errorf("Match with a non-empty dst = %v", got)
	}
	// List returns every status, deleted included, in id order.
	if got, want := idsOf(r.List("t1")), []string{"t1-a", "t1-b", "t1-c", "t1-d", "t1-e"}; !slices.Equal(got, want) {
		t.Errorf("List(t1) = %v, want %v", got, want)
	}
	if got, want := idsOf(r.List("")), []string{"t1-a", "t1-b", "t1-c", "t1-d", "t1-e", "t2-a"}; !slices.Equal(got, want) {
		t.Errorf(`List("") = %v, want %v`, got, want)
	}
	// List's result is the caller's.
	l := r.List("t1")
	l[0] = nil
	if r.List("t1")[0] == nil {
		t.Error("modifying List's result changed the registry")
	}
}

func TestCreateValidation(t *testing.T) {
	e := newTestEnv(t)
	valid := Endpoint{TenantID: "t1", URL: "https://example.com/hooks", EventTypes: []string{"payment.*"}}
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Endpoint)
		field string
	}{
		{"no tenant", func(s *Endpoint) { s.TenantID = "" }, "tenant_id"},
		{"no url", func(s *Endpoint) { s.URL = "" }, "url"},
		{"ftp url", func(s *Endpoint) { s.URL = "ftp://example.com/" }, "url"},
		{"url without host", func(s *Endpoint) { s.URL = "https:///x" }, "url"},
		{"url with credentials", func(s *Endpoint) { s.URL = "https://u:p@example.com/" }, "url"},
		{"no event types", func(s *Endpoint) { s.EventTypes = nil }, "event_types"},
		{"unknown event type", func(s *Endpoint) { s.EventTypes = []string{"payment.teleported"} }, "event_types"},
		{"unknown category", func(s *Endpoint) { s.EventTypes = []string{"invoice.*"} }, "event_types"},
		{"one bad among good", func(s *Endpoint) { s.EventTypes = []string{"order.created", "pay*"} }, "event_types"},
		{"negative partitions", func(s *Endpoint) { s.Partitions = -1 }, "partitions"},
		{"65 partitions", func(s *Endpoint) { s.Partitions = MaxPartitions + 1 }, "partitions"},
		{"negative rate limit", func(s *Endpoint) { s.RateLimit = -1 }, "rate_limit"},
		{"negative max in flight", func(s *Endpoint) { s.MaxInFlight = -1 }, "max_in_flight"},
		{"bad secret", func(s *Endpoint) { s.Secrets = []string{"whsec_tooshort"} }, "secrets[0]"},
		{"second secret bad", func(s *Endpoint) { s.Secrets = []string{secret.String(), "not base64!"} }, "secrets[1]"},
		{"id with a dot", func(s *Endpoint) { s.ID = "ep.1" }, "id"},
		{"id with a slash", func(s *Endpoint) { s.ID = "ep/1" }, "id"},
		{"id too long", func(s *Endpoint) { s.ID = strings.Repeat("a", 101) }, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := valid
			spec.EventTypes = slices.Clone(valid.EventTypes)
			spec.ID = "ep-" + strings.ReplaceAll(tc.name, " ", "-")
			tc.edit(&spec)
			ep, err := e.adm.Create(e.ctx, spec)
			if err == nil {
				t.Fatalf("Create(%+v) = %+v, want a validation error on %s", spec, ep, tc.field)
			}
			if f := validationField(t, err); f != tc.field {
				t.Errorf("Create: error %q has Field %q, want %q", err, f, tc.field)
			}
			if validID(spec.ID) {
				if n := e.partitions(e.cfg.Topics().Endpoint(spec.ID)); n != 0 {
					t.Errorf("an invalid Create made topic %s", e.cfg.Topics().Endpoint(spec.ID))
				}
			}
		})
	}
	if got := e.reg.List(""); len(got) != 0 {
		t.Errorf("invalid Creates wrote endpoints: %v", idsOf(got))
	}

	// The limits themselves are accepted; 0 partitions means the default, 1.
	for _, p := range []int32{0, 1, MaxPartitions} {
		spec := valid
		spec.ID = "ep-parts-" + string(rune('a'+p%26))
		spec.Partitions = p
		ep := e.create(spec)
		want := max(p, 1)
		if ep.Partitions != want {
			t.Errorf("Create with %d partitions: endpoint has %d, want %d", p, ep.Partitions, want)
		}
		e.waitPartitions(e.cfg.Topics().Endpoint(ep.ID), int(want))
	}
	// A given secret is kept, and a generated id has the ep_ prefix.
	spec := valid
	spec.Secrets = []string{secret.String()}
	ep := e.create(spec)
	if !strings.HasPrefix(ep.ID, "ep_") || !validID(ep.ID) || !slices.Equal(ep.Secrets, spec.Secrets) {
		t.Errorf("Create with a secret and no id = id %q secrets %v", ep.ID, ep.Secrets)
	}
	// Create never modifies the caller's spec.
	spec2 := valid
	spec2.EventTypes = []string{"payment.*", "order.created"}
	e.create(spec2)
	if spec2.ID != "" || spec2.Status != "" || spec2.Secrets != nil || spec2.EventTypes[0] != "payment.*" {
		t.Errorf("Create modified its argument: %+v", spec2)
	}
}

func TestWriteErrors(t *testing.T) {
	e := newTestEnv(t)
	ep := e.create(Endpoint{ID: "ep-1", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}, Partitions: 2})

	if _, err := e.adm.Create(e.ctx, Endpoint{ID: "ep-1", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}}); err == nil {
		t.Error("Create with an existing id succeeded")
	} else if f := validationField(t, err); f != "id" {
		t.Errorf("Create with an existing id: Field %q, want id", f)
	}

	shrink := ep.Clone()
	shrink.Partitions = 1
	if _, err := e.adm.Update(e.ctx, shrink); err == nil {
		t.Error("Update shrinking partitions succeeded")
	} else if f := validationField(t, err); f != "partitions" {
		t.Errorf("Update shrinking partitions: Field %q, want partitions", f)
	}
	tooMany := ep.Clone()
	tooMany.Partitions = MaxPartitions + 1
	if _, err := e.adm.Update(e.ctx, tooMany); err == nil {
		t.Error("Update to 65 partitions succeeded")
	} else if f := validationField(t, err); f != "partitions" {
		t.Errorf("Update to 65 partitions: Field %q, want partitions", f)
	}
	badURL := ep.Clone()
	badURL.URL = "mailto:ops@example.com"
	if _, err := e.adm.Update(e.ctx, badURL); err == nil {
		t.Error("Update with a mailto: URL succeeded")
	} else if f := validationField(t, err); f != "url" {
		t.Errorf("Update with a bad URL: Field %q, want url", f)
	}
	if got, _ := e.reg.Get("ep-1"); got.URL != "https://example.com/" || got.Partitions != 2 {
		t.Errorf("failed Updates changed the endpoint: %+v", got)
	}
	if _, err := e.adm.SetStatus(e.ctx, "ep-1", StatusDeleted, ""); err == nil {
		t.Error("SetStatus(deleted) succeeded; Delete is the way")
	} else if f := validationField(t, err); f != "status" {
		t.Errorf("SetStatus(deleted): Field %q, want status", f)
	}
	if _, err := e.adm.SetStatus(e.ctx, "ep-1", "paused", ""); err == nil {
		t.Error(`SetStatus("paused") succeeded`)
	}

	for name, err := range map[string]error{
		"Update unknown":    func() error { _, err := e.adm.Update(e.ctx, &Endpoint{ID: "nope"}); return err }(),
		"SetStatus unknown": func() error { _, err := e.adm.SetStatus(e.ctx, "nope", StatusDisabled, ""); return err }(),
		"Delete unknown":    e.adm.Delete(e.ctx, "nope"),
	} {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nope") {
			t.Errorf("%s = %v, want ErrNotFound naming the id", name, err)
		}
	}

	e.advance(time.Second)
	if err := e.adm.Delete(e.ctx, "ep-1"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Delete deleted":    e.adm.Delete(e.ctx, "ep-1"),
		"Update deleted":    func() error { _, err := e.adm.Update(e.ctx, ep.Clone()); return err }(),
		"SetStatus deleted": func() error { _, err := e.adm.SetStatus(e.ctx, "ep-1", StatusActive, ""); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s = %v, want ErrNotFound", name, err)
		}
	}
	// A deleted, not yet purged endpoint still holds its id.
	if _, err := e.adm.Create(e.ctx, Endpoint{ID: "ep-1", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}}); err == nil {
		t.Error("Create reused the id of a deleted endpoint before its purge")
	}
}

// The registry skips records it cannot use (undecodable, or whose key is
// not the endpoint's id) and keeps following the topic.
func TestRegistrySkipsBadRecords(t *testing.T) {
	e := newTestEnv(t)
	other := e.open()
	topic := e.cfg.Topics().Endpoints()
	good, err := e.cat.Marshal(RecordName, &Endpoint{ID: "ep-good", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}, Status: StatusActive, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	mismatched, err := e.cat.Marshal(RecordName, &Endpoint{ID: "ep-other", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}, Status: StatusActive, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{
		{Topic: topic, Key: []byte("junk"), Value: []byte("not avro at all")},
		{Topic: topic, Key: []byte("ep-key"), Value: mismatched},
		{Topic: topic, Key: []byte("ep-good"), Value: good},
	}
	if err := e.cl.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.waitFor(other, "ep-good", func(r *Registry) bool { _, ok := r.Get("ep-good"); return ok })
	for _, id := range []string{"junk", "ep-key", "ep-other"} {
		if _, ok := other.Get(id); ok {
			t.Errorf("registry took the bad record %q", id)
		}
	}
	// A new view catches up over the bad records too.
	if got := idsOf(e.open().List("")); !slices.Equal(got, []string{"ep-good"}) {
		t.Errorf("fresh view List = %v, want [ep-good]", got)
	}
}

func TestWaitForHonoursContext(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	err := e.reg.WaitFor(ctx, func(*Registry) bool { return false })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor with a cancelled context = %v, want context.Canceled", err)
	}
	if err := e.reg.WaitFor(ctx, func(*Registry) bool { return true }); err != nil {
		t.Errorf("WaitFor with a condition that holds = %v, want nil even with a done context", err)
	}
}

// validationField returns the Field of the *ValidationError err wraps.
func validationField(t *testing.T, err error) string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Field
}

// Known bugs: these tests describe the wanted behaviour and are skipped
// until the fix lands (see the test report); remove the Skip then.

// Admin.validate does not require a signing secret, so Update with an
// endpoint whose Secrets is empty writes an endpoint the deliverer cannot
// sign for ("endpoint has no signing secret" on every attempt).
func TestUpdateRequiresASecret(t *testing.T) {
	e := newTestEnv(t)
	ep := e.create(Endpoint{ID: "ep-1", TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}})
	upd := ep.Clone()
	upd.Secrets = nil
	e.advance(time.Second)
	if _, err := e.adm.Update(e.ctx, upd); err == nil {
		t.Fatal("Update without secrets succeeded")
	} else if f := validationField(t, err); f != "secrets" {
		t.Errorf("Field = %q, want secrets", f)
	}
}

// Admin.validate does not look at RetryScheduleMS: zero and negative delays
// are written, and the deliverer then retries such an endpoint without any
// wait. deliverer.New rejects the same delays in its own schedule.
func TestRetryScheduleValidated(t *testing.T) {
	e := newTestEnv(t)
	for _, sched := range [][]int64{{0}, {1000, -5}} {
		_, err := e.adm.Create(e.ctx, Endpoint{TenantID: "t1", URL: "https://example.com/", EventTypes: []string{"*"}, RetryScheduleMS: sched})
		if err == nil {
			t.Errorf("Create with retry_schedule_ms %v succeeded", sched)
		} else if f := validationField(t, err); f != "retry_schedule_ms" {
			t.Errorf("Create with retry_schedule_ms %v: Field %q", sched, f)
		}
	}
}

// Right after the registry topic is created, a broker may not know it yet
// (UNKNOWN_TOPIC_OR_PARTITION on a multi-node cluster): Open waits for it
// rather than failing.
func TestOpenWaitsForATopicBeingCreated(t *testing.T) {
	c := kafkatest.Start(t)
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafka.Config{Brokers: c.Addrs, Prefix: "late", ReplicationFactor: c.ReplicationFactor()}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ka := kadm.NewClient(c.Client(t, cfg.ClientOpts("test-admin")...))
	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // Open is asking by then
		created <- cfg.EnsureTopics(ctx, ka, cfg.CoreTopics()...)
	}()
	r, err := Open(ctx, cfg, cat, WithLogger(slog.New(slog.DiscardHandler)))
	if cerr := <-created; cerr != nil {
		t.Fatalf("creating the topics: %v", cerr)
	}
	if err != nil {
		t.Fatalf("Open while the topic was being created: %v", err)
	}
	r.Close()
}
