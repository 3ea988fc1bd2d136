// Package kafka holds what every Hookstream service shares about Kafka: the
// client configuration (brokers, TLS, SASL), the topic names derived from one
// prefix, and idempotent topic creation with the configured replication.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// DefaultPrefix is the default topic prefix.
const DefaultPrefix = "webhooks"

// Config is the Kafka connection and topic layout shared by every service.
// The zero value of every field but Brokers has a sensible default.
type Config struct {
	Brokers  []string       // seed brokers, host:port
	ClientID string         // client id prefix; services append their role
	TLS      *tls.Config    // nil = plaintext
	SASL     sasl.Mechanism // nil = no authentication

	// Prefix is the topic prefix (default "webhooks").
	Prefix string
	// ReplicationFactor for topics Hookstream creates; 0 or -1 = broker default.
	ReplicationFactor int16
	// MinInsyncReplicas for topics Hookstream creates; 0 = broker default.
	MinInsyncReplicas int
	// EventsPartitions is the partition count of the events topic (default 6).
	EventsPartitions int32
	// MaxBatchBytes caps the record batches every client writes (0 =
	// franz-go's default, DefaultMaxBatchBytes). Brokers refuse a batch
	// over their message.max.bytes for good; FitBatchesToBrokers sets this
	// from them, and the router and deliverer call it when they start.
	MaxBatchBytes int32
	// Opts are extra franz-go options appended to every client.
	Opts []kgo.Opt
	// Hook, if set, is called once per client made through ClientOpts with
	// that client's id, and the hook it returns is installed on the client
	// (one kprom.Metrics per client, for example).
	Hook func(clientID string) kgo.Hook
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers configured")
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("kafka: broker %q is not host:port", b)
		}
	}
	if p := c.Prefix; p != "" && !validTopicName(p) {
		return fmt.Errorf("kafka: topic prefix %q has characters Kafka does not allow (a-z A-Z 0-9 . _ -)", p)
	}
	if c.MinInsyncReplicas < 0 || c.ReplicationFactor > 0 && c.MinInsyncReplicas > int(c.ReplicationFactor) {
		return fmt.Errorf("kafka: min in-sync replicas %d does not fit replication factor %d", c.MinInsyncReplicas, c.ReplicationFactor)
	}
	return nil
}

// ClientOpts returns the franz-go options to reach the cluster as role
// (used in the client id), followed by extra.
func (c Config) ClientOpts(role string, extra ...kgo.Opt) []kgo.Opt {
	id := c.ClientID
	if id == "" {
		id = "hookstream"
	}
	if role != "" {
		id += "-" + role
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(id),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	if c.SASL != nil {
		opts = append(opts, kgo.SASL(c.SASL))
	}
	if c.MaxBatchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(c.MaxBatchBytes))
	}
	if c.Hook != nil {
		if h := c.Hook(id); h != nil {
			opts = append(opts, kgo.WithHooks(h))
		}
	}
	opts = append(opts, c.Opts...)
	return append(opts, extra...)
}

// Topics returns the topic names for this configuration's prefix.
func (c Config) Topics() Topics {
	p := c.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	return Topics{Prefix: p}
}

// HeaderEventID is the header with the event's id that the producer
// writes on every event record, and the router and a redrive on the
// records they write for an event outside its envelope (dead letters,
// redriven copies).
const HeaderEventID = "hookstream-event-id"

// Topics names every topic Hookstream uses. All names share one prefix.
type Topics struct{ Prefix string }

// Events is where domain services publish: <prefix>.events.
func (t Topics) Events() string { return t.Prefix + ".events" }

// Invalid is the quarantine for records on the events topic that cannot be
// routed: <prefix>.events.invalid.
func (t Topics) Invalid() string { return t.Prefix + ".events.invalid" }

// Endpoints is the compacted endpoint registry: <prefix>.endpoints.
func (t Topics) Endpoints() string { return t.Prefix + ".endpoints" }

// Endpoint is one endpoint's delivery topic: <prefix>.endpoint.<id>.
func (t Topics) Endpoint(id string) string { return t.Prefix + ".endpoint." + id }

// EndpointID returns the endpoint id of an endpoint topic name.
func (t Topics) EndpointID(topic string) (string, bool) {
	id, ok := strings.CutPrefix(topic, t.Prefix+".endpoint.")
	if !ok || id == "" {
		return "", false
	}
	return id, true
}

// EndpointPattern is a regular expression matching every endpoint topic.
func (t Topics) EndpointPattern() string {
	return "^" + regexp.QuoteMeta(t.Prefix+".endpoint.") + "[A-Za-z0-9_-]+$"
}

// DLQ is the dead-letter topic: <prefix>.dlq.
func (t Topics) DLQ() string { return t.Prefix + ".dlq" }

// Retry is the retry tier for one delay: <prefix>.retry.<delay>, e.g.
// webhooks.retry.5m.
func (t Topics) Retry(delay time.Duration) string {
	return t.Prefix + ".retry." + FormatDelay(delay)
}

// RetryPattern is a regular expression matching every retry tier topic.
func (t Topics) RetryPattern() string {
	return "^" + regexp.QuoteMeta(t.Prefix+".retry.") + "[0-9]+(ms|s|m|h)$"
}

// RetryDelay returns the delay of a retry tier topic name (the inverse of
// Retry), or false if topic is not a retry tier of this prefix.
func (t Topics) RetryDelay(topic string) (time.Duration, bool) {
	s, ok := strings.CutPrefix(topic, t.Prefix+".retry.")
	if !ok {
		return 0, false
	}
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n <= 0 || strconv.FormatInt(n, 10) != num {
				return 0, false
			}
			return time.Duration(n) * u.unit, true
		}
	}
	return 0, false
}

// FormatDelay writes a delay the way retry topic names carry it: the largest
// whole unit among h, m, s, ms ("5s", "30m", "2h", "1500ms").
func FormatDelay(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
}

func validTopicName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// TopicSpec describes a topic Hookstream creates.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// CoreTopics are the topics every deployment needs before any service runs:
// events, quarantine, registry (compacted) and dead letters.
func (c Config) CoreTopics() []TopicSpec {
	t := c.Topics()
	parts := c.EventsPartitions
	if parts <= 0 {
		parts = 6
	}
	return []TopicSpec{
		{Name: t.Events(), Partitions: parts},
		{Name: t.Invalid(), Partitions: 1},
		{Name: t.Endpoints(), Partitions: 1, Configs: map[string]string{
			"cleanup.policy":            "compact",
			"min.compaction.lag.ms":     "0",
			"segment.ms":                "3600000",
			"min.cleanable.dirty.ratio": "0.1",
		}},
		{Name: t.DLQ(), Partitions: 3, Configs: map[string]string{"retention.ms": "-1"}},
	}
}

// EnsureTopics creates the topics that do not exist yet, with the configured
// replication factor and min.insync.replicas. Existing topics are left as
// they are. Topics with the same partition count and configs are created in
// one request (thousands of endpoint topics take seconds, not minutes). It
// waits until every topic is visible in metadata.
func (c Config) EnsureTopics(ctx context.Context, adm *kadm.Client, specs ...TopicSpec) error {
	rf := c.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	type group struct {
		parts int32
		cfgs  map[string]*string
		names []string
	}
	groups := map[string]*group{}
	var order []string
	for _, s := range specs {
		cfgs := map[string]*string{}
		for k, v := range s.Configs {
			cfgs[k] = kadm.StringPtr(v)
		}
		if c.MinInsyncReplicas > 0 {
			cfgs["min.insync.replicas"] = kadm.StringPtr(strconv.Itoa(c.MinInsyncReplicas))
		}
		parts := max(s.Partitions, 1)
		keys := make([]string, 0, len(cfgs))
		for k, v := range cfgs {
			keys = append(keys, k+"="+*v)
		}
		slices.Sort(keys)
		key := strconv.Itoa(int(parts)) + "|" + strings.Join(keys, ",")
		g, ok := groups[key]
		if !ok {
			g = &group{parts: parts, cfgs: cfgs}
			groups[key] = g
			order = append(order, key)
		}
		g.names = append(g.names, s.Name)
	}
	for _, key := range order {
		g := groups[key]
		for chunk := range slices.Chunk(g.names, 1000) {
			resps, err := adm.CreateTopics(ctx, g.parts, rf, g.cfgs, chunk...)
			if err != nil {
				return fmt.Errorf("kafka: create topics: %w", err)
			}
			for _, r := range resps.Sorted() {
				if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
					return fmt.Errorf("kafka: create topic %s: %w", r.Topic, r.Err)
				}
			}
		}
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return WaitTopics(ctx, adm, names...)
}

// WaitTopics waits until every named topic has a leader for every partition.
func WaitTopics(ctx context.Context, adm *kadm.Client, names ...string) error {
	for {
		md, err := adm.Metadata(ctx, names...)
		if err == nil {
			ready := true
			for _, n := range names {
				td, ok := md.Topics[n]
				if !ok || td.Err != nil || len(td.Partitions) == 0 {
					ready = false
					break
				}
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: waiting for topics %v: %w", names, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
