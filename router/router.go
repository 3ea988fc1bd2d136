// Package router fans each event on the events topic out to the topic of
// every endpoint subscribed to it.
//
// The router consumes <prefix>.events in the consumer group
// hookstream-router, decodes only the envelope (never the event data, whose
// schema it only checks by fingerprint), matches the event against the
// tenant's endpoints that take fan-out (active or disabled, not deleted) (exact type, category.* or *), and writes the
// record unchanged to each matching <prefix>.endpoint.<id> inside a Kafka
// transaction that also commits the consumed offsets. A router crash
// therefore neither drops nor duplicates fan-out. Records that cannot be
// routed (not Avro single-object encoded, an unknown schema, data that is
// not of the named type) are moved, in the same transaction, to
// <prefix>.events.invalid with the reason in the hookstream-error header.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
)

// DefaultGroup is the router's consumer group.
const DefaultGroup = "hookstream-router"

// Header names the router writes on quarantined records.
const (
	HeaderError           = "hookstream-error"
	HeaderSourceTopic     = "hookstream-source-topic"
	HeaderSourcePartition = "hookstream-source-partition"
	HeaderSourceOffset    = "hookstream-source-offset"
)

// Config configures a Router.
type Config struct {
	Kafka kafka.Config
	// Group is the consumer group (default "hookstream-router").
	Group string
	// TransactionalID identifies this router instance's transactions. It must
	// be stable across restarts of one instance (so a restart fences the
	// crashed instance's open transaction at once) and unique between
	// instances running at the same time. Default "<Group>-<hostname>".
	TransactionalID string
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions to another (default 10s).
	SessionTimeout time.Duration
	// InstanceID, if set, makes this a static group member: a restart with
	// the same id takes its partitions back at once, without a rebalance.
	InstanceID string
	// MaxPollRecords bounds one transaction (default 5000).
	MaxPollRecords int
	// TxnLinger is how long a transaction stays open gathering more events
	// after its first (default 10ms; negative: commit each poll at once).
	// Every commit writes a marker to each endpoint partition it touched,
	// so under a trickle of events a short linger cuts the broker's work
	// many times over for a few milliseconds of latency.
	TxnLinger time.Duration
	// Compression of the endpoint-topic batches: "none" (the default),
	// "lz4", "zstd", "snappy" or "gzip". Uncompressed batches cost the
	// broker more disk, but the deliverer's fetch sizes (compressed bytes)
	// then bound the records it holds, and nobody spends CPU on
	// compressing every fan-out copy and decompressing it again.
	Compression string
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Registerer for metrics (default none).
	Registerer prometheus.Registerer
}

// Router is the fan-out stage. Create it with New and start it with Run.
type Router struct {
	cfg    Config
	reg    *registry.Registry
	cat    *codec.Catalog
	topics kafka.Topics
	log    *slog.Logger
	m      *routerMetrics
}

// New returns a Router that routes with the endpoints of reg.
func New(cfg Config, reg *registry.Registry, cat *codec.Catalog) (*Router, error) {
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.TransactionalID == "" {
		host, _ := os.Hostname()
		cfg.TransactionalID = cfg.Group + "-" + host
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 5000
	}
	if cfg.Compression == "" {
		cfg.Compression = "none"
	}
	if _, ok := compressionCodecs[cfg.Compression]; !ok {
		return nil, fmt.Errorf("router: unknown compression %q (none, lz4, zstd, snappy, gzip)", cfg.Compression)
	}
	if cfg.TxnLinger == 0 {
		cfg.TxnLinger = 10 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Router{cfg: cfg, reg: reg, cat: cat, topics: cfg.Kafka.Topics(), log: cfg.Logger, m: newMetrics(cfg.Registerer)}, nil
}

// Run routes until ctx is cancelled, then aborts the open transaction (its
// records are consumed again by the next owner) and leaves the group. It returns nil after a clean shutdown.
func (r *Router) Run(ctx context.Context) error {
	opts := []kgo.Opt{kgo.SessionTimeout(r.cfg.SessionTimeout)}
	if r.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(r.cfg.InstanceID))
	}
	sess, err := kgo.NewGroupTransactSession(r.cfg.Kafka.ClientOpts("router", append(opts,
		kgo.ConsumerGroup(r.cfg.Group),
		kgo.ConsumeTopics(r.topics.Events()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.TransactionalID(r.cfg.TransactionalID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(r.produceLinger()),
		kgo.FetchMaxBytes(16<<20), // a transaction routes at most MaxPollRecords anyway
		kgo.ProducerBatchCompression(compressionCodecs[r.cfg.Compression], kgo.NoCompression()),
	)...)...)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	defer sess.Close()
	r.log.Info("router started", "group", r.cfg.Group, "topic", r.topics.Events(), "transactional_id", r.cfg.TransactionalID)

	var matches []*registry.Endpoint
	backoff := 100 * time.Millisecond
	for {
		fs := sess.PollRecords(ctx, r.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			return nil
		}
		r.logFetchErrors(fs, nil)
		if fs.NumRecords() == 0 {
			continue
		}
		start := time.Now()
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("router: begin transaction: %w", err)
		}
		var failed atomic.Pointer[error]
		promise := func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		}
		var polled, routed, unrouted, quarantined, fanout int
		routeAll := func(fs kgo.Fetches) {
			polled += fs.NumRecords()
			now := time.Now()
			fs.EachRecord(func(rec *kgo.Record) {
				r.m.fetchDelay.Observe(now.Sub(rec.Timestamp).Seconds())
				n, qerr := r.route(ctx, sess, rec, &matches, promise)
				switch {
				case qerr != nil:
					quarantined++
				case n == 0:
					unrouted++
				default:
					routed++
					fanout += n
				}
			})
		}
		routeAll(fs)
		// Linger: keep the transaction open a little for more events (their
		// records are produced meanwhile), so one commit covers them all.
		if r.cfg.TxnLinger > 0 {
			lctx, lcancel := context.WithDeadline(ctx, start.Add(r.cfg.TxnLinger))
			for polled < r.cfg.MaxPollRecords && lctx.Err() == nil {
				more := sess.PollRecords(lctx, r.cfg.MaxPollRecords-polled)
				r.logFetchErrors(more, lctx)
				routeAll(more)
			}
			lcancel()
		}
		if err := sess.Client().Flush(ctx); err != nil {
			// Only on ctx cancellation: abort now rather than leave the
			// transaction open until its timeout, which would hold back
			// read-committed consumers of the endpoint topics.
			r.abort(sess)
			return nil
		}
		try := kgo.TryCommit
		if perr := failed.Load(); perr != nil {
			r.log.Error("router: produce failed, aborting the transaction; the batch is consumed again", "err", *perr)
			try = kgo.TryAbort
		}
		committed, err := sess.End(ctx, try)
		if err != nil {
			if ctx.Err() != nil {
				r.abort(sess)
				return nil
			}
			return fmt.Errorf("router: end transaction: %w", err)
		}
		if !committed {
			r.m.transactions.WithLabelValues("aborted").Inc()
			r.log.Warn("router: transaction aborted (rebalance or produce failure); the batch is consumed again", "records", polled)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		r.m.transactions.WithLabelValues("committed").Inc()
		r.m.events.WithLabelValues("routed").Add(float64(routed))
		r.m.events.WithLabelValues("unrouted").Add(float64(unrouted))
		r.m.events.WithLabelValues("quarantined").Add(float64(quarantined))
		r.m.fanout.Add(float64(fanout))
		r.m.batchSeconds.Observe(time.Since(start).Seconds())
	}
}

// logFetchErrors logs the fetch errors of fs, except the expiry of the
// linger context lctx (a poll that ran out of linger is not an error).
func (r *Router) logFetchErrors(fs kgo.Fetches, lctx context.Context) {
	fs.EachError(func(t string, p int32, err error) {
		if lctx != nil && lctx.Err() != nil && errors.Is(err, lctx.Err()) {
			return
		}
		r.log.Error("router fetch", "topic", t, "partition", p, "err", err)
	})
}

// abort ends an open transaction with an abort, on a fresh deadline: the
// run context is already cancelled.
func (r *Router) abort(sess *kgo.GroupTransactSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sess.End(ctx, kgo.TryAbort); err != nil {
		r.log.Warn("router: aborting the open transaction at shutdown", "err", err)
	}
}

type producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// route produces rec to every matching endpoint topic, or to the quarantine
// topic with the reason. It returns the fan-out count, or the reason the
// record was quarantined.
func (r *Router) route(ctx context.Context, p producer, rec *kgo.Record, matches *[]*registry.Endpoint, promise func(*kgo.Record, error)) (int, error) {
	env, err := r.check(rec)
	if err != nil {
		r.quarantine(ctx, p, rec, err, promise)
		return 0, err
	}
	*matches = r.reg.Match((*matches)[:0], env.TenantID, env.Type)
	for _, e := range *matches {
		p.Produce(ctx, &kgo.Record{
			Topic:   r.topics.Endpoint(e.ID),
			Key:     rec.Key,
			Value:   rec.Value,
			Headers: rec.Headers,
		}, promise)
	}
	return len(*matches), nil
}

// check decodes the envelope and checks, by fingerprint only, that the data
// is an encoding of the named event type.
func (r *Router) check(rec *kgo.Record) (*codec.Envelope, error) {
	env, err := r.cat.DecodeEnvelope(rec.Value)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if env.ID == "" || env.TenantID == "" {
		return nil, errors.New("envelope: id and tenant_id are required")
	}
	if err := r.cat.CheckData(env.Type, env.Data); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if env.PreviousData != nil {
		if err := r.cat.CheckData(env.Type, env.PreviousData); err != nil {
			return nil, fmt.Errorf("previous_data: %w", err)
		}
	}
	return env, nil
}

func (r *Router) quarantine(ctx context.Context, p producer, rec *kgo.Record, reason error, promise func(*kgo.Record, error)) {
	r.log.Warn("router: quarantining record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "reason", reason)
	hs := append(append([]kgo.RecordHeader(nil), rec.Headers...),
		kgo.RecordHeader{Key: HeaderError, Value: []byte(reason.Error())},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
	)
	p.Produce(ctx, &kgo.Record{Topic: r.topics.Invalid(), Key: rec.Key, Value: rec.Value, Headers: hs}, promise)
}

var compressionCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	"snappy": kgo.SnappyCompression(), "gzip": kgo.GzipCompression(),
}

// produceLinger is the producer's linger: with a transaction linger the
// records of a transaction are sent in batches of a few milliseconds (End
// flushes the rest at once); fewer, larger appends wake fewer of the
// broker's waiting fetches.
func (r *Router) produceLinger() time.Duration {
	if r.cfg.TxnLinger <= 0 {
		return 0
	}
	return r.cfg.TxnLinger / 2
}
