// Package producer is the library domain services import to publish
// versioned Avro events to Hookstream's events topic.
//
// Publish validates an event's type against the schema catalog and its data
// against the type's latest schema, encodes the data and the envelope with
// Avro Single Object Encoding, and produces the record with the idempotent
// producer and acks=all, keyed by tenant (or by an ordering key).
package producer

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/ids"
	"github.com/hookstream/hookstream/pkg/kafka"
)

// Event is one domain event to publish.
type Event struct {
	// Type is the event type, e.g. "payment.succeeded"; it must be in the catalog.
	Type string
	// TenantID is the customer account the event belongs to. Required.
	TenantID string
	// Data is the event's payload: JSON ([]byte or json.RawMessage), or a Go
	// value hamba/avro can encode with the type's schema (a struct with avro
	// tags or a map[string]any).
	Data any
	// PreviousData is the prior state for *.updated events (nil = none).
	PreviousData any
	// Key orders events: events with one key go to one partition in order.
	// Default: TenantID.
	Key string
	// ID is the event id; default a new "evt_" id.
	ID string
	// OccurredAt is when the event happened; default now.
	OccurredAt time.Time
}

// ErrInvalidEvent is wrapped by every error about the event itself (unknown
// type, data not matching the schema, missing tenant, a record over
// kafka.MaxEventBytes): retrying will not help.
var ErrInvalidEvent = errors.New("invalid event")

// Producer publishes events. It is safe for concurrent use.
type Producer struct {
	cl    *kgo.Client
	cat   *codec.Catalog
	topic string
	now   func() time.Time
}

type config struct {
	kafka kafka.Config
	cat   *codec.Catalog
	now   func() time.Time
}

// Option configures a Producer.
type Option func(*config)

// WithBrokers sets the seed brokers (host:port). Required.
func WithBrokers(brokers ...string) Option {
	return func(c *config) { c.kafka.Brokers = brokers }
}

// WithClientID sets the Kafka client id (default "hookstream-producer").
func WithClientID(id string) Option { return func(c *config) { c.kafka.ClientID = id } }

// WithTLS dials the brokers with TLS.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.kafka.TLS = cfg } }

// WithSASL authenticates to the brokers.
func WithSASL(m sasl.Mechanism) Option { return func(c *config) { c.kafka.SASL = m } }

// WithTopicPrefix sets the topic prefix (default "webhooks").
func WithTopicPrefix(p string) Option { return func(c *config) { c.kafka.Prefix = p } }

// WithKafkaConfig replaces the whole Kafka configuration.
func WithKafkaConfig(k kafka.Config) Option { return func(c *config) { c.kafka = k } }

// WithKgoOpts passes extra options to the franz-go client.
func WithKgoOpts(opts ...kgo.Opt) Option {
	return func(c *config) { c.kafka.Opts = append(c.kafka.Opts, opts...) }
}

// WithCatalog sets the schema catalog (default codec.Default()).
func WithCatalog(cat *codec.Catalog) Option { return func(c *config) { c.cat = cat } }

// WithClock sets the clock used for OccurredAt defaults (tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// New returns a Producer. It does not contact the brokers until the first
// Publish.
func New(opts ...Option) (*Producer, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if err := c.kafka.Validate(); err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	if c.cat == nil {
		cat, err := codec.Default()
		if err != nil {
			return nil, fmt.Errorf("producer: %w", err)
		}
		c.cat = cat
	}
	if c.now == nil {
		c.now = time.Now
	}
	cl, err := kgo.NewClient(c.kafka.ClientOpts("producer",
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default and needs acks=all
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &Producer{cl: cl, cat: c.cat, topic: c.kafka.Topics().Events(), now: c.now}, nil
}

// Close flushes buffered records and closes the client.
func (p *Producer) Close() {
	_ = p.cl.Flush(context.Background())
	p.cl.Close()
}

// Publish validates, encodes and produces one event and waits until Kafka
// has it on every in-sync replica. It returns the event id.
func (p *Producer) Publish(ctx context.Context, ev Event) (string, error) {
	rec, id, err := p.record(ev)
	if err != nil {
		return "", err
	}
	if err := p.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return "", fmt.Errorf("producer: publishing %s: %w", ev.Type, err)
	}
	return id, nil
}

// PublishBatch publishes several events concurrently and waits for all of
// them. It returns the ids in order; on error, ids of events that failed are
// empty and the error joins every failure. Invalid events are rejected
// before anything is produced.
func (p *Producer) PublishBatch(ctx context.Context, evs []Event) ([]string, error) {
	recs := make([]*kgo.Record, len(evs))
	eventIDs := make([]string, len(evs))
	for i, ev := range evs {
		r, id, err := p.record(ev)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		recs[i], eventIDs[i] = r, id
	}
	out := make([]string, len(evs))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	wg.Add(len(recs))
	for i, r := range recs {
		p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("event %d: %w", i, err))
				mu.Unlock()
				return
			}
			out[i] = eventIDs[i]
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Record validates and encodes ev into the Kafka record Publish would
// produce, without producing it.
func (p *Producer) Record(ev Event) (*kgo.Record, error) {
	r, _, err := p.record(ev)
	return r, err
}

func (p *Producer) record(ev Event) (*kgo.Record, string, error) {
	if ev.TenantID == "" {
		return nil, "", fmt.Errorf("producer: %w: tenant id is required", ErrInvalidEvent)
	}
	if _, ok := p.cat.Latest(ev.Type); !ok {
		return nil, "", fmt.Errorf("producer: %w: unknown event type %q (known: %s)", ErrInvalidEvent, ev.Type, strings.Join(p.cat.Types(), ", "))
	}
	data, err := p.encode(ev.Type, ev.Data)
	if err != nil {
		return nil, "", fmt.Errorf("producer: %w: %s data: %w", ErrInvalidEvent, ev.Type, err)
	}
	var prev []byte
	if ev.PreviousData != nil {
		if prev, err = p.encode(ev.Type, ev.PreviousData); err != nil {
			return nil, "", fmt.Errorf("producer: %w: %s previous_data: %w", ErrInvalidEvent, ev.Type, err)
		}
	}
	env := codec.Envelope{
		ID:           ev.ID,
		Type:         ev.Type,
		TenantID:     ev.TenantID,
		OccurredAt:   ev.OccurredAt,
		Data:         data,
		PreviousData: prev,
	}
	if env.ID == "" {
		env.ID = ids.Event()
	}
	if env.OccurredAt.IsZero() {
		env.OccurredAt = p.now()
	}
	env.OccurredAt = env.OccurredAt.UTC().Truncate(time.Millisecond)
	val, err := p.cat.EncodeEnvelope(&env)
	if err != nil {
		return nil, "", fmt.Errorf("producer: %w: envelope: %w", ErrInvalidEvent, err)
	}
	key := ev.Key
	if key == "" {
		key = ev.TenantID
	}
	rec := &kgo.Record{
		Topic:   p.topic,
		Key:     []byte(key),
		Value:   val,
		Headers: []kgo.RecordHeader{{Key: kafka.HeaderEventID, Value: []byte(env.ID)}},
	}
	if n := kafka.RecordBytes(rec); n > kafka.MaxEventBytes {
		return nil, "", fmt.Errorf("producer: %w: the event's record is %d bytes (data, previous_data, key and envelope), the most is %d", ErrInvalidEvent, n, kafka.MaxEventBytes)
	}
	return rec, env.ID, nil
}

func (p *Producer) encode(eventType string, data any) ([]byte, error) {
	switch d := data.(type) {
	case nil:
		return nil, errors.New("data is required")
	case json.RawMessage:
		return p.cat.EncodeJSON(eventType, d)
	case []byte:
		return p.cat.EncodeJSON(eventType, d)
	case string:
		return p.cat.EncodeJSON(eventType, []byte(d))
	default:
		return p.cat.EncodeNative(eventType, d)
	}
}
