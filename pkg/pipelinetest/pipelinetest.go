// Package pipelinetest runs Hookstream's stages in-process against a
// kafkatest cluster, for the end-to-end tests and the in-process
// benchmarks.
//
// Each Env is one scenario's slice of a shared cluster: a fresh topic
// prefix (so its topics, consumer groups and transactional ids never meet
// another scenario's), the core topics, a live registry view, an admin, a
// producer and a Prometheus registry that the stages it starts report to.
// Everything an Env starts is stopped by the cleanup function it was
// created with, last started first.
package pipelinetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/router"
)

// Env is one scenario's slice of a cluster. Its fields are ready to use
// once New returns.
type Env struct {
	TB       testing.TB
	Cluster  *kafkatest.Cluster
	Kafka    kafka.Config // brokers, the scenario's prefix, replication
	Catalog  *codec.Catalog
	Client   *kgo.Client // acks=all; admin requests and test records
	Registry *registry.Registry
	Admin    *registry.Admin
	Producer *producer.Producer
	Metrics  *prometheus.Registry // the stages' metrics
	Logger   *slog.Logger

	cleanup func(func())
}

// Option configures New.
type Option func(*options)

type options struct {
	prefix       string
	partitions   int32
	logger       *slog.Logger
	cleanup      func(func())
	deleteTopics bool
}

// WithPrefix starts the scenario's topic prefix with p (a random number
// follows); default "s".
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithEventsPartitions sets the events topic's partition count (default:
// pkg/kafka's).
func WithEventsPartitions(n int32) Option { return func(o *options) { o.partitions = n } }

// WithLogger sets the logger of the registry and the stages (default:
// discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCleanup sets how the Env registers what stops its parts: tests pass
// t.Cleanup; the default is tb.Cleanup of New's tb.
func WithCleanup(register func(func())) Option { return func(o *options) { o.cleanup = register } }

// WithDeleteTopics deletes the scenario's topics when it is cleaned up,
// after every stage and client using them has stopped (kfake keeps all
// data in the test process's heap, which a later scenario would otherwise
// pay for).
func WithDeleteTopics() Option { return func(o *options) { o.deleteTopics = true } }

// New creates the core topics under a fresh prefix and opens the registry,
// the admin and a producer; it fails tb if any of that fails.
func New(tb testing.TB, cluster *kafkatest.Cluster, opts ...Option) *Env {
	tb.Helper()
	o := options{prefix: "s", logger: slog.New(slog.NewTextHandler(io.Discard, nil)), cleanup: tb.Cleanup}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("%s%d", o.prefix, rand.Uint32())
	kcfg := kafka.Config{Brokers: cluster.Addrs, Prefix: prefix, ClientID: prefix, EventsPartitions: o.partitions}
	if rf := cluster.ReplicationFactor(); rf >= 3 {
		kcfg.ReplicationFactor, kcfg.MinInsyncReplicas = rf, 2
	}
	e := &Env{TB: tb, Cluster: cluster, Kafka: kcfg, Metrics: prometheus.NewRegistry(), Logger: o.logger, cleanup: o.cleanup}
	var err error
	if e.Catalog, err = codec.Default(); err != nil {
		tb.Fatal(err)
	}
	if e.Client, err = kgo.NewClient(kcfg.ClientOpts("test", kgo.RequiredAcks(kgo.AllISRAcks()))...); err != nil {
		tb.Fatal(err)
	}
	e.Defer(e.Client.Close)
	if o.deleteTopics {
		e.Defer(e.deleteTopics)
	}
	if err := kcfg.EnsureTopics(ctx, kadm.NewClient(e.Client), kcfg.CoreTopics()...); err != nil {
		tb.Fatal(err)
	}
	if e.Registry, err = registry.Open(ctx, kcfg, e.Catalog, registry.WithLogger(e.Logger)); err != nil {
		tb.Fatal(err)
	}
	e.Defer(e.Registry.Close)
	e.Admin = registry.NewAdmin(kcfg, e.Client, e.Catalog, e.Registry)
	if e.Producer, err = producer.New(producer.WithKafkaConfig(kcfg), producer.WithCatalog(e.Catalog)); err != nil {
		tb.Fatal(err)
	}
	e.Defer(e.Producer.Close)
	return e
}

// Defer registers f with the Env's cleanup: it runs before everything
// registered earlier.
func (e *Env) Defer(f func()) { e.cleanup(f) }

// Service runs run in the background until the returned stop is called or
// the Env is cleaned up; an error from run fails the test.
func (e *Env) Service(name string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil {
			e.TB.Errorf("%s: %v", name, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.Defer(stop)
	return stop
}

// StartRouter runs a router with its production defaults in the
// scenario's group and transactional id.
func (e *Env) StartRouter() (stop func()) {
	e.TB.Helper()
	r, err := router.New(router.Config{
		Kafka: e.Kafka, Group: e.Kafka.Prefix + "-router", TransactionalID: e.Kafka.Prefix + "-router",
		Logger: e.Logger, Registerer: e.Metrics,
	}, e.Registry, e.Catalog)
	if err != nil {
		e.TB.Fatal(err)
	}
	return e.Service("router", r.Run)
}

// DelivererConfig is the deliverer's production configuration in the
// scenario's group, reporting to the Env's logger and metrics. Receivers
// of tests are on loopback: set AllowPrivateTargets.
func (e *Env) DelivererConfig() deliverer.Config {
	return deliverer.Config{Kafka: e.Kafka, Group: e.Kafka.Prefix + "-deliverer", Logger: e.Logger, Registerer: e.Metrics}
}

// StartDeliverer runs a deliverer with cfg.
func (e *Env) StartDeliverer(cfg deliverer.Config) (stop func()) {
	e.TB.Helper()
	d, err := deliverer.New(cfg, e.Registry, e.Catalog)
	if err != nil {
		e.TB.Fatal(err)
	}
	return e.Service("deliverer", d.Run)
}

// CreateEndpoint creates an endpoint and its topic through the admin.
func (e *Env) CreateEndpoint(spec registry.Endpoint) *registry.Endpoint {
	e.TB.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := e.Admin.Create(ctx, spec)
	if err != nil {
		e.TB.Fatal(err)
	}
	return ep
}

// deleteTopics deletes every topic of the scenario's prefix.
func (e *Env) deleteTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(e.Client)
	td, err := adm.ListTopics(ctx)
	if err != nil {
		e.TB.Logf("listing topics to delete: %v", err)
		return
	}
	var names []string
	for _, t := range td.Names() {
		if strings.HasPrefix(t, e.Kafka.Prefix+".") {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return
	}
	resps, err := adm.DeleteTopics(ctx, names...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		e.TB.Logf("deleting the scenario's topics: %v", err)
	}
}
