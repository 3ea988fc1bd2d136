// Package router fans each event on the events topic out to the topic of
// every endpoint subscribed to it.
//
// The router consumes <prefix>.events in the consumer group
// hookstream-router, decodes only the envelope (never the event data, whose
// schema it only checks by fingerprint), matches the event against the
// tenant's endpoints that take fan-out (active or disabled, not deleted)
// (exact type, category.* or *), and writes the record unchanged to each
// matching <prefix>.endpoint.<id>.
//
// By default (ExactlyOnce) the writes and the consumed offsets go in one
// Kafka transaction, so a router crash neither drops nor duplicates
// fan-out. With AtLeastOnce the writes use the idempotent producer and the
// offsets are committed once they are acknowledged: a crash never drops
// fan-out but may write the last commit interval's events again, and in
// exchange records reach deliverers as soon as they are written, with no
// transaction markers for the broker to write.
//
// Records that cannot be routed (not Avro single-object encoded, an
// unknown schema, data that is not of the named type) are moved to
// <prefix>.events.invalid with the reason in the hookstream-error header,
// in the same transaction (ExactlyOnce) or before their offset is
// committed (AtLeastOnce).
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
)

// DefaultGroup is the router's consumer group.
const DefaultGroup = "hookstream-router"

// DefaultMaxPollRecords is Config.MaxPollRecords' default.
const DefaultMaxPollRecords = 50000

// Header names the router writes on quarantined records.
const (
	HeaderError           = "hookstream-error"
	HeaderSourceTopic     = "hookstream-source-topic"
	HeaderSourcePartition = "hookstream-source-partition"
	HeaderSourceOffset    = "hookstream-source-offset"
)

// ErrEventTooLarge is the quarantine reason of an event record larger than
// kafka.MaxEventBytes.
var ErrEventTooLarge = errors.New("event too large")

// Guarantee is what a router crash may do to fan-out.
type Guarantee string

const (
	// ExactlyOnce writes each batch's fan-out and its consumed offsets in
	// one Kafka transaction: a crash neither drops nor duplicates fan-out.
	// Deliverers (read-committed) see a batch only once it commits, and
	// every commit writes a marker to each endpoint partition it touched.
	ExactlyOnce Guarantee = "exactly-once"
	// AtLeastOnce writes fan-out with the idempotent producer and commits
	// the consumed offsets after the writes are acknowledged: a crash never
	// drops fan-out, but the events since the last commit (at most
	// CommitInterval's worth, plus the batch being written) are fanned out
	// again, and their deliveries repeat with the same webhook-id. Records
	// reach deliverers as soon as they are written, and the broker writes
	// no transaction markers: lower latency and less broker work per event.
	AtLeastOnce Guarantee = "at-least-once"
)

// MinCommitInterval is the shortest CommitInterval (franz-go's minimum
// autocommit interval).
const MinCommitInterval = 100 * time.Millisecond

// Config configures a Router.
type Config struct {
	Kafka kafka.Config
	// Group is the consumer group (default "hookstream-router").
	Group string
	// Guarantee is ExactlyOnce (the default) or AtLeastOnce.
	Guarantee Guarantee
	// CommitInterval is how often an AtLeastOnce router commits the offsets
	// of what it has written (default 1s, at least MinCommitInterval): about
	// the most a crash fans out twice.
	CommitInterval time.Duration
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
	// MaxPollRecords bounds one batch: one transaction, or one acknowledged
	// write with at-least-once (default 50000). Under a backlog a large batch
	// gives each endpoint partition several records per produce: with 5,000
	// endpoints nearly every record of a 5,000-record batch is a partition
	// batch of its own, and the broker pays per partition batch, as it
	// does per commit marker (one for each partition a transaction
	// touched). A batch must route and commit within the transaction
	// timeout (60 s).
	MaxPollRecords int
	// TxnLinger is how long a transaction stays open gathering more events
	// after its first (default 10ms; negative: commit each poll at once).
	// ExactlyOnce only.
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

	refusals refusals // copies Kafka refused for good
}

// New returns a Router that routes with the endpoints of reg.
func New(cfg Config, reg *registry.Registry, cat *codec.Catalog) (*Router, error) {
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	switch cfg.Guarantee {
	case "":
		cfg.Guarantee = ExactlyOnce
	case ExactlyOnce, AtLeastOnce:
	default:
		return nil, fmt.Errorf("router: unknown guarantee %q (%s or %s)", cfg.Guarantee, ExactlyOnce, AtLeastOnce)
	}
	switch {
	case cfg.CommitInterval == 0:
		cfg.CommitInterval = time.Second
	case cfg.CommitInterval < MinCommitInterval:
		return nil, fmt.Errorf("router: commit interval %v is under the minimum %v", cfg.CommitInterval, MinCommitInterval)
	}
	if cfg.TransactionalID == "" {
		host, _ := os.Hostname()
		cfg.TransactionalID = cfg.Group + "-" + host
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = DefaultMaxPollRecords
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

// Run routes until ctx is cancelled and leaves the group. With ExactlyOnce
// it aborts the open transaction first (its records are consumed again by
// the next owner); with AtLeastOnce it commits what it has written. It
// returns nil after a clean shutdown.
func (r *Router) Run(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	r.cfg.Kafka = r.cfg.Kafka.WithBrokerBatchLimit(pctx, r.log, "router")
	cancel()
	if r.cfg.Guarantee == AtLeastOnce {
		return r.runAtLeastOnce(ctx)
	}
	return r.runExactlyOnce(ctx)
}

// clientOpts are the options both guarantees share.
func (r *Router) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SessionTimeout(r.cfg.SessionTimeout)}
	if r.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(r.cfg.InstanceID))
	}
	return r.cfg.Kafka.ClientOpts("router", append(append(opts,
		kgo.ConsumerGroup(r.cfg.Group),
		kgo.ConsumeTopics(r.topics.Events()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.FetchMaxBytes(16<<20), // a batch routes at most MaxPollRecords anyway
		kgo.ProducerBatchCompression(compressionCodecs[r.cfg.Compression], kgo.NoCompression()),
	), extra...)...)
}

func (r *Router) runExactlyOnce(ctx context.Context) error {
	sess, err := kgo.NewGroupTransactSession(r.clientOpts(
		kgo.TransactionalID(r.cfg.TransactionalID),
		// Kafka's default. A batch of MaxPollRecords events to thousands
		// of endpoints takes seconds to route on a slow broker (the first
		// after a start longer still: the client's first record to each
		// topic), and a transaction that outlives this is aborted. A
		// crashed router's open transaction holds back read_committed
		// readers until this passes or its transactional id is reused.
		kgo.TransactionTimeout(60*time.Second),
		kgo.ProducerLinger(r.produceLinger()),
	)...)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	defer sess.Close()
	r.log.Info("router started", "guarantee", r.cfg.Guarantee, "group", r.cfg.Group, "topic", r.topics.Events(), "transactional_id", r.cfg.TransactionalID)

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
		b := &batch{r: r, p: sess, matches: &matches}
		b.routeAll(ctx, fs)
		// Linger: keep the transaction open a little for more events (their
		// records are produced meanwhile), so one commit covers them all.
		if r.cfg.TxnLinger > 0 {
			lctx, lcancel := context.WithDeadline(ctx, start.Add(r.cfg.TxnLinger))
			for b.polled < r.cfg.MaxPollRecords && lctx.Err() == nil {
				more := sess.PollRecords(lctx, r.cfg.MaxPollRecords-b.polled)
				r.logFetchErrors(more, lctx)
				b.routeAll(ctx, more)
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
		if perr := b.failed.Load(); perr != nil {
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
			r.log.Warn("router: transaction aborted (rebalance or produce failure); the batch is consumed again", "records", b.polled)
			r.recreateMissing(ctx, sess.Client(), b)
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
		b.done(start)
	}
}

// runAtLeastOnce routes each poll with the idempotent producer, waits until
// every write is acknowledged (retrying the batch after a failed write),
// then marks the poll's offsets for the periodic commit. Rebalances wait
// between polls (BlockRebalanceOnPoll), so a revocation's commit covers
// only written records.
func (r *Router) runAtLeastOnce(ctx context.Context) error {
	cl, err := kgo.NewClient(r.clientOpts(
		kgo.ProducerLinger(0), // visible when written: nothing gains from waiting
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(r.cfg.CommitInterval),
	)...)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	r.log.Info("router started", "guarantee", r.cfg.Guarantee, "group", r.cfg.Group, "topic", r.topics.Events(), "commit_interval", r.cfg.CommitInterval)

	var matches []*registry.Endpoint
	for {
		fs := cl.PollRecords(ctx, r.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			break
		}
		r.logFetchErrors(fs, nil)
		if fs.NumRecords() == 0 {
			cl.AllowRebalance()
			continue
		}
		start := time.Now()
		b, ok := r.writeAll(ctx, cl, fs, &matches)
		if !ok {
			break // cancelled: this poll's offsets stay unmarked
		}
		cl.MarkCommitRecords(fs.Records()...)
		b.done(start)
		cl.AllowRebalance()
	}
	// Everything marked is written: commit it, then leave (a static member
	// does not leave, so the commit cannot rely on the revocation's).
	cl.AllowRebalance()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		r.log.Warn("router: committing written offsets at shutdown; the next owner fans them out again", "err", err)
	}
	cl.Close()
	return nil
}

// writeAll routes fs until every write is acknowledged, retrying the whole
// batch (at least once: a retry rewrites what had succeeded) after a
// failure, with backoff. It returns false only when ctx is cancelled.
func (r *Router) writeAll(ctx context.Context, cl *kgo.Client, fs kgo.Fetches, matches *[]*registry.Endpoint) (*batch, bool) {
	backoff := 100 * time.Millisecond
	for retry := false; ; retry = true {
		b := &batch{r: r, p: cl, matches: matches, retry: retry}
		b.routeAll(ctx, fs)
		if err := cl.Flush(ctx); err != nil {
			return nil, false
		}
		perr := b.failed.Load()
		if perr == nil {
			return b, true
		}
		r.m.writeRetries.Inc()
		r.log.Error("router: produce failed; writing the batch again", "records", b.polled, "err", *perr, "backoff", backoff)
		r.recreateMissing(ctx, cl, b)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// batch routes polled records to one producer and counts the results.
type batch struct {
	r       *Router
	p       producer
	matches *[]*registry.Endpoint
	failed  atomic.Pointer[error]
	retry   bool // the records were routed before: their fetch delay is counted

	missingMu sync.Mutex
	missing   map[string]bool // topics a write found not to exist

	polled, routed, unrouted, quarantined, fanout int
}

func (b *batch) promise(rec *kgo.Record, err error) {
	if err == nil {
		return
	}
	b.failed.CompareAndSwap(nil, &err)
	if refusedForGood(err) {
		b.r.refused(rec, err)
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		b.missingMu.Lock()
		if b.missing == nil {
			b.missing = map[string]bool{}
		}
		b.missing[rec.Topic] = true
		b.missingMu.Unlock()
	}
}

// recreateMissing creates again the endpoint topics b's writes found
// missing, for endpoints the registry still has (not deleted): one whose
// topic was deleted by hand, or lost with a broker's data, would otherwise
// fail every batch it is in, and with it every other endpoint's events.
// A deleted endpoint's topic is left alone (purge removes it, and the
// router no longer routes to it). Errors are logged: the batch is retried
// anyway, and so is this.
func (r *Router) recreateMissing(ctx context.Context, cl *kgo.Client, b *batch) {
	b.missingMu.Lock()
	defer b.missingMu.Unlock()
	var specs []kafka.TopicSpec
	for topic := range b.missing {
		id, ok := r.topics.EndpointID(topic)
		if !ok {
			r.log.Error("router: a topic it writes to does not exist", "topic", topic)
			continue
		}
		ep, ok := r.reg.Get(id)
		if !ok || ep.Status == registry.StatusDeleted {
			continue
		}
		specs = append(specs, kafka.TopicSpec{Name: topic, Partitions: max(ep.Partitions, 1)})
	}
	if len(specs) == 0 {
		return
	}
	if err := r.cfg.Kafka.EnsureTopics(ctx, kadm.NewClient(cl), specs...); err != nil {
		r.log.Error("router: recreating missing endpoint topics", "topics", len(specs), "err", err)
		return
	}
	for _, s := range specs {
		r.m.recreated.Inc()
		r.log.Warn("router: an endpoint's topic was missing; created it again (what it held before is gone)", "topic", s.Name, "partitions", s.Partitions)
	}
}

func (b *batch) routeAll(ctx context.Context, fs kgo.Fetches) {
	b.polled += fs.NumRecords()
	now := time.Now()
	fs.EachRecord(func(rec *kgo.Record) {
		if !b.retry {
			b.r.m.fetchDelay.Observe(now.Sub(rec.Timestamp).Seconds())
		}
		n, qerr := b.r.route(ctx, b.p, rec, b.matches, b.promise)
		switch {
		case qerr != nil:
			b.quarantined++
		case n == 0:
			b.unrouted++
		default:
			b.routed++
			b.fanout += n
		}
	})
}

// done records a batch that is written (and committed, ExactlyOnce).
func (b *batch) done(start time.Time) {
	m := b.r.m
	m.events.WithLabelValues("routed").Add(float64(b.routed))
	m.events.WithLabelValues("unrouted").Add(float64(b.unrouted))
	m.events.WithLabelValues("quarantined").Add(float64(b.quarantined))
	m.fanout.Add(float64(b.fanout))
	m.batchSeconds.Observe(time.Since(start).Seconds())
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
	if n := kafka.RecordBytes(rec); n > kafka.MaxEventBytes {
		err := fmt.Errorf("%w: %d bytes (key, value and headers), the most is %d; not copied here, read it at the source offset", ErrEventTooLarge, n, kafka.MaxEventBytes)
		r.quarantine(ctx, p, rec, err, promise)
		return 0, err
	}
	env, err := r.check(rec)
	if err != nil {
		r.quarantine(ctx, p, rec, err, promise)
		return 0, err
	}
	*matches = r.reg.Match((*matches)[:0], env.TenantID, env.Type)
	for _, e := range *matches {
		r.writeCopy(ctx, p, rec, env, e, promise)
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

// quarantine writes rec to the invalid topic with the reason and where it
// came from. A record over MaxEventBytes, or one whose copy Kafka refused
// (ErrUnwritable), is written without its key, value and headers, which
// could not be written anywhere: the headers say where to read it.
func (r *Router) quarantine(ctx context.Context, p producer, rec *kgo.Record, reason error, promise func(*kgo.Record, error)) {
	r.log.Warn("router: quarantining record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "reason", reason)
	q := &kgo.Record{Topic: r.topics.Invalid()}
	if !errors.Is(reason, ErrEventTooLarge) && !errors.Is(reason, ErrUnwritable) {
		q.Key, q.Value = rec.Key, rec.Value
		q.Headers = append(q.Headers, rec.Headers...)
	}
	q.Headers = append(q.Headers,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(reason.Error())},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
	)
	p.Produce(ctx, q, promise)
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
