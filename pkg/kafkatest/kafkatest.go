// Package kafkatest gives a Go test its own Kafka cluster, either franz-go's
// in-process kfake or a real Apache Kafka started by scripts/kafka.sh, and
// stops it when the test ends.
//
// The kind of broker comes from the environment variable
// HOOKSTREAM_TEST_BROKER ("kfake", the default, or "kafka"), so one test suite
// runs unchanged against both:
//
//	go test ./...                                # kfake: fast, in-process
//	HOOKSTREAM_TEST_BROKER=kafka go test ./...   # real Kafka, one cluster per Start
//
// A test asks for a cluster with [Start] and talks to it through [Cluster.Client],
// [Cluster.Admin] or its own client seeded with [Cluster.Addrs]:
//
//	c := kafkatest.Start(t, kafkatest.Nodes(3))
//	c.CreateTopic(t, "orders", 3, nil)
//	cl := c.Client(t, kgo.DefaultProduceTopic("orders"))
//
// Both kinds refuse to create topics implicitly (real Kafka runs with
// auto.create.topics.enable=false, kfake without AllowAutoTopicCreation), so a
// test catches code that forgets to create its topics.
//
// Real clusters: a 1-node cluster has every replication factor at 1; a 3-node
// cluster (Nodes(3)) runs with default.replication.factor=3 and
// min.insync.replicas=2, internal topics included, so acks=all produce keeps
// working while one node is down. A real cluster that cannot start fails the
// test (it is never skipped): CI must notice. Its logs are under [Cluster.Dir],
// which is kept when the test fails.
//
// kfake models no replication: stopping or killing one of its nodes removes
// it from the cluster and moves its partitions to the other nodes, closing
// the connections clients had to it, which exercises client failover but not
// durability. Durability and broker-loss claims need the real kind.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker kinds accepted by [Kind] and by the HOOKSTREAM_TEST_BROKER variable.
const (
	KindKfake = "kfake" // franz-go's in-process fake cluster (default)
	KindKafka = "kafka" // real Apache Kafka run by scripts/kafka.sh
)

// EnvBroker names the environment variable that selects the broker kind when
// no [Kind] option is given.
const EnvBroker = "HOOKSTREAM_TEST_BROKER"

// Cluster is a running test cluster. Its methods take the calling test's
// testing.TB and fail it on error; they are meant for the test goroutine.
type Cluster struct {
	Kind  string   // KindKfake or KindKafka
	Addrs []string // bootstrap addresses, one per node, in node order
	Dir   string   // real Kafka: directory holding node-N/server.log; empty for kfake

	fake  *kfake.Cluster
	conns *connTracker // kfake: connections per node, closed when a node stops

	script string // real Kafka: path to scripts/kafka.sh
}

type config struct {
	kind      string
	nodes     int
	kfakeOpts []kfake.Opt
}

// Option configures [Start].
type Option func(*config)

// Nodes sets the number of nodes: 1 (default) or 3. Real Kafka with 3 nodes
// uses replication factor 3 and min.insync.replicas=2.
func Nodes(n int) Option { return func(c *config) { c.nodes = n } }

// Kind forces the broker kind (KindKfake or KindKafka), overriding
// HOOKSTREAM_TEST_BROKER.
func Kind(kind string) Option { return func(c *config) { c.kind = kind } }

// KfakeOptions appends options for kfake.NewCluster, after this package's
// own; real Kafka ignores them.
func KfakeOptions(opts ...kfake.Opt) Option {
	return func(c *config) { c.kfakeOpts = append(c.kfakeOpts, opts...) }
}

// KindFromEnv returns the broker kind HOOKSTREAM_TEST_BROKER asks for:
// KindKfake when it is unset or empty, an error when it names no kind.
func KindFromEnv() (string, error) {
	switch k := strings.TrimSpace(os.Getenv(EnvBroker)); k {
	case "", KindKfake:
		return KindKfake, nil
	case KindKafka:
		return KindKafka, nil
	default:
		return "", fmt.Errorf("%s=%q: want %q or %q", EnvBroker, k, KindKfake, KindKafka)
	}
}

// Start starts a cluster for tb and registers a tb.Cleanup that stops it.
// It fails tb (never skips) when the cluster cannot start.
func Start(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	cfg := config{nodes: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.kind == "" {
		k, err := KindFromEnv()
		if err != nil {
			tb.Fatalf("kafkatest: %v", err)
		}
		cfg.kind = k
	}
	if cfg.nodes != 1 && cfg.nodes != 3 {
		tb.Fatalf("kafkatest: Nodes(%d): want 1 or 3", cfg.nodes)
	}
	switch cfg.kind {
	case KindKfake:
		return startFake(tb, cfg)
	case KindKafka:
		return startReal(tb, cfg)
	default:
		tb.Fatalf("kafkatest: unknown broker kind %q: want %q or %q", cfg.kind, KindKfake, KindKafka)
		return nil
	}
}

// StopNode stops node i (an index into Addrs; node i+1 of scripts/kafka.sh,
// kfake node ID i) gracefully: real Kafka gets
// SIGTERM (SIGKILL after 30 s); kfake removes the node and closes its
// connections. The node keeps its address for [Cluster.StartNode].
func (c *Cluster) StopNode(tb testing.TB, i int) {
	tb.Helper()
	c.checkIndex(tb, i)
	if c.fake != nil {
		c.stopFakeNode(tb, i)
		return
	}
	c.runScript(tb, "stop", "--node", fmt.Sprint(i+1))
}

// KillNode crashes node i: real Kafka gets SIGKILL; for kfake it is the same
// as [Cluster.StopNode].
func (c *Cluster) KillNode(tb testing.TB, i int) {
	tb.Helper()
	c.checkIndex(tb, i)
	if c.fake != nil {
		c.stopFakeNode(tb, i)
		return
	}
	c.runScript(tb, "kill", "--node", fmt.Sprint(i+1))
}

// StartNode starts a stopped or killed node i again on its old address and,
// for real Kafka, with its old data; it returns once the node serves.
func (c *Cluster) StartNode(tb testing.TB, i int) {
	tb.Helper()
	c.checkIndex(tb, i)
	if c.fake != nil {
		c.startFakeNode(tb, i)
		return
	}
	c.runScript(tb, "restart-node", "--node", fmt.Sprint(i+1))
}

func (c *Cluster) checkIndex(tb testing.TB, i int) {
	tb.Helper()
	if i < 0 || i >= len(c.Addrs) {
		tb.Fatalf("kafkatest: node index %d out of range [0,%d)", i, len(c.Addrs))
	}
}

// Client returns a client seeded with the cluster's addresses, plus opts; it
// is closed when the test ends.
func (c *Cluster) Client(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(c.Addrs...)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		tb.Fatalf("kafkatest: kgo.NewClient: %v", err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for the cluster, closed when the test ends.
func (c *Cluster) Admin(tb testing.TB) *kadm.Client {
	tb.Helper()
	return kadm.NewClient(c.Client(tb))
}

// ReplicationFactor is the replication factor topics of this cluster should
// use: the number of nodes (1 or 3).
func (c *Cluster) ReplicationFactor() int16 { return int16(len(c.Addrs)) }

// CreateTopic creates topic with the given partitions, the cluster's
// [Cluster.ReplicationFactor] and configs (may be nil), failing tb on error.
func (c *Cluster) CreateTopic(tb testing.TB, topic string, partitions int32, configs map[string]*string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...))
	if err != nil {
		tb.Fatalf("kafkatest: kgo.NewClient: %v", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, c.ReplicationFactor(), configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		tb.Fatalf("kafkatest: create topic %q (%d partitions, RF %d): %v", topic, partitions, c.ReplicationFactor(), err)
	}
}

// RepoRoot returns the root of the module that holds scripts/kafka.sh: the
// nearest directory with a go.mod, searched upwards from the working
// directory and then from this source file.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; {
			if fileExists(filepath.Join(d, "go.mod")) && fileExists(filepath.Join(d, "scripts", "kafka.sh")) {
				return d, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", errors.New("kafkatest: no directory with go.mod and scripts/kafka.sh above the working directory")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
