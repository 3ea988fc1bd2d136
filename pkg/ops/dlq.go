package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
)

// Headers a redrive writes on the records it re-produces.
const (
	// HeaderRedrivenFrom names the dead letter a record was redriven from:
	// <dlq topic>/<partition>/<offset>.
	HeaderRedrivenFrom = "hookstream-redriven-from"
	// HeaderEventID is the event id header the producer writes
	// (kafka.HeaderEventID).
	HeaderEventID = kafka.HeaderEventID
)

// RedrivenTopic is the compacted topic where redrives record the dead
// letters they have redriven: <prefix>.dlq.redriven, keyed by
// <partition>/<offset> of the dead letter.
func RedrivenTopic(t kafka.Topics) string { return t.DLQ() + ".redriven" }

// redriveTxnID is the transactional id of every redrive of a deployment:
// a redrive that starts fences any other still running.
func redriveTxnID(t kafka.Topics) string { return "hookstream-dlq-redrive." + t.Prefix }

// sessionKey is the key of the record each redrive writes first to the
// redriven topic (never a <partition>/<offset> key).
const sessionKey = "session"

// DeadLetterFilter selects dead letters; an empty field matches every
// letter.
type DeadLetterFilter struct {
	EndpointID string
	Reason     string // rejected, exhausted, undeliverable or unwritable
	EventID    string
}

// Match reports whether dl passes the filter.
func (f DeadLetterFilter) Match(dl *deliverer.DeadLetter) bool {
	return (f.EndpointID == "" || dl.EndpointID == f.EndpointID) &&
		(f.Reason == "" || dl.Reason == f.Reason) &&
		(f.EventID == "" || dl.EventID == f.EventID)
}

// DeadLetter is one record of the dead-letter topic.
type DeadLetter struct {
	Partition int32
	Offset    int64
	deliverer.DeadLetter
	// EventKey is the event's record key on its endpoint topic, from the
	// dead letter's hookstream-event-key header ("" if it has none: letters
	// written before the header existed, or events published without a
	// key); a redrive writes the event back under it, else under its tenant.
	EventKey string
	// Redriven reports that a redrive has re-produced this letter.
	Redriven bool
}

// Ref is <partition>/<offset>, the letter's key in the redriven topic.
func (d *DeadLetter) Ref() string { return letterRef(d.Partition, d.Offset) }

func letterRef(p int32, o int64) string {
	return strconv.FormatInt(int64(p), 10) + "/" + strconv.FormatInt(o, 10)
}

// DeadLetterList is what ListDeadLetters read.
type DeadLetterList struct {
	// Letters are the matching letters, oldest dead_at first (the newest
	// limit of them), without their envelope bytes.
	Letters     []DeadLetter
	Matched     int // matching letters, Letters and those left out by the limit
	Scanned     int // records read from the dead-letter topic
	Undecodable int // records that are not hookstream.DeadLetter values
}

// ListDeadLetters reads the dead-letter topic from its start to its end at
// the time of the call and returns the newest limit letters f matches (0 =
// all), each marked with whether a redrive has already re-produced it.
func (o *Ops) ListDeadLetters(ctx context.Context, f DeadLetterFilter, limit int) (*DeadLetterList, error) {
	cl, adm, err := o.adminClient("ops-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	redriven, err := o.readRedriven(ctx, adm)
	if err != nil {
		return nil, err
	}
	out := &DeadLetterList{}
	byDeadAt := func(a, b DeadLetter) int { return a.DeadAt.Compare(b.DeadAt) }
	keepNewest := func() {
		slices.SortStableFunc(out.Letters, byDeadAt)
		out.Letters = slices.Delete(out.Letters, 0, len(out.Letters)-limit)
	}
	err = o.eachDeadLetter(ctx, adm, func(dl *DeadLetter, derr error) error {
		out.Scanned++
		if derr != nil {
			out.Undecodable++
			return nil
		}
		if f.Match(&dl.DeadLetter) {
			out.Matched++
			dl.Redriven = redriven[dl.Ref()]
			dl.Envelope = nil
			out.Letters = append(out.Letters, *dl)
			if limit > 0 && len(out.Letters) >= 2*limit+1024 { // bound memory on a large topic
				keepNewest()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out.Letters, byDeadAt)
	if limit > 0 && len(out.Letters) > limit {
		keepNewest()
	}
	return out, nil
}

// eachDeadLetter decodes every record of the dead-letter topic up to its
// current end; derr is set for a record that does not decode.
func (o *Ops) eachDeadLetter(ctx context.Context, adm *kadm.Client, fn func(dl *DeadLetter, derr error) error) error {
	topic := o.kcfg.Topics().DLQ()
	spans, err := wholeTopic(ctx, adm, topic)
	if err != nil {
		return err
	}
	return o.scan(ctx, topic, spans, func(r *kgo.Record) error {
		dl := &DeadLetter{Partition: r.Partition, Offset: r.Offset}
		if err := o.cat.Unmarshal(r.Value, deliverer.DeadLetterRecordName, &dl.DeadLetter); err != nil {
			return fn(&DeadLetter{Partition: r.Partition, Offset: r.Offset, DeadLetter: deliverer.DeadLetter{EndpointID: string(r.Key)}}, err)
		}
		if dl.EndpointID == "" {
			dl.EndpointID = string(r.Key)
		}
		for _, h := range r.Headers {
			if h.Key == deliverer.HeaderEventKey {
				dl.EventKey = string(h.Value)
			}
		}
		return fn(dl, nil)
	})
}

// readRedriven returns the refs recorded in the redriven topic (none if it
// does not exist yet).
func (o *Ops) readRedriven(ctx context.Context, adm *kadm.Client) (map[string]bool, error) {
	topic := RedrivenTopic(o.kcfg.Topics())
	set := map[string]bool{}
	spans, err := wholeTopic(ctx, adm, topic)
	if errors.Is(err, ErrTopicNotFound) {
		return set, nil
	}
	if err != nil {
		return nil, err
	}
	err = o.scan(ctx, topic, spans, func(r *kgo.Record) error {
		k := string(r.Key)
		if k == sessionKey {
			return nil
		}
		if r.Value == nil {
			delete(set, k)
		} else {
			set[k] = true
		}
		return nil
	})
	return set, err
}

// Skip reasons of a redrive.
const (
	SkipUnknownEndpoint = "unknown endpoint"
	SkipDeletedEndpoint = "endpoint deleted"
	SkipMissingTopic    = "endpoint topic missing"
	SkipUndecodable     = "undecodable dead letter"
	SkipNoEnvelope      = "no envelope"
)

// Skipped is a dead letter a redrive matched but left alone.
type Skipped struct {
	Ref        string // <partition>/<offset>
	EndpointID string
	EventID    string
	Reason     string // one of the Skip* constants
}

// RedriveOptions configure Redrive.
type RedriveOptions struct {
	Filter DeadLetterFilter
	// DryRun reads and reports, and writes nothing.
	DryRun bool
	// BatchSize is how many letters one transaction redrives (default 500).
	BatchSize int
}

// RedriveReport says what a redrive did (or, dry, would do).
type RedriveReport struct {
	DryRun          bool
	Scanned         int            // records read from the dead-letter topic
	NotMatching     int            // letters the filter left out
	AlreadyRedriven int            // matching letters an earlier redrive re-produced
	Redriven        int            // letters re-produced now
	ByEndpoint      map[string]int // Redriven per endpoint id
	Disabled        []string       // endpoints redriven to while disabled: delivered once enabled
	Skipped         []Skipped      // matching letters left alone, with why
}

// Redrive re-produces the original envelope of every matching dead letter
// that no redrive has re-produced yet to its endpoint's topic, so the
// deliverer attempts it afresh with a full retry schedule and the same
// webhook-id.
//
// The redriven record's key is the event's own key, from the letter's
// hookstream-event-key header (carried through the retry tiers; the router
// sets it on the letters it writes), so it lands in that key's partition;
// a letter without one is keyed by its tenant id, the producer's default
// key. Its headers are hookstream-event-id and hookstream-redriven-from
// (<dlq>/<partition>/<offset>).
//
// Progress: each letter redriven is recorded under <partition>/<offset> in
// the compacted topic RedrivenTopic, in the same Kafka transaction as its
// re-produced envelope, so a letter is redriven exactly once however often
// redrive runs, whatever its filters, and even if it is interrupted. (A
// consumer group's committed offset could not do this: a filter leaves
// unredriven letters behind the redriven ones.) All redrives of a deployment
// share one transactional id, and each fences its predecessor before it
// reads the record of what was redriven, so two redrives at once cannot
// both redrive a letter: the older one fails.
//
// Letters of unknown or deleted endpoints, of endpoints whose topic is
// missing, and letters that cannot be decoded are skipped, reported, and
// not recorded: they stay eligible. Letters of a disabled endpoint are
// redriven; the deliverer holds them until the endpoint is enabled.
func (o *Ops) Redrive(ctx context.Context, opts RedriveOptions) (*RedriveReport, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	topics := o.kcfg.Topics()
	cl, adm, err := o.adminClient("ops-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	var txn *kgo.Client
	if !opts.DryRun {
		err := o.kcfg.EnsureTopics(ctx, adm, kafka.TopicSpec{Name: RedrivenTopic(topics), Partitions: 1, Configs: map[string]string{
			"cleanup.policy":        "compact",
			"min.compaction.lag.ms": "0",
		}})
		if err != nil {
			return nil, err
		}
		txn, err = kgo.NewClient(o.kcfg.ClientOpts("dlq-redrive",
			kgo.TransactionalID(redriveTxnID(topics)),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.TransactionTimeout(time.Minute),
		)...)
		if err != nil {
			return nil, err
		}
		defer txn.Close()
		// Fence any redrive still running before reading what it did.
		host, _ := os.Hostname()
		session, _ := json.Marshal(map[string]any{"started_at": time.Now().UTC(), "host": host, "pid": os.Getpid()})
		if err := commitTxn(ctx, txn, []*kgo.Record{{Topic: RedrivenTopic(topics), Key: []byte(sessionKey), Value: session}}); err != nil {
			return nil, err
		}
	}
	redriven, err := o.readRedriven(ctx, adm)
	if err != nil {
		return nil, err
	}

	rep := &RedriveReport{DryRun: opts.DryRun, ByEndpoint: map[string]int{}}
	topicOK := map[string]bool{} // endpoint topic -> exists
	disabled := map[string]bool{}
	var batch []*kgo.Record
	var batchEndpoints []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if !opts.DryRun {
			if err := commitTxn(ctx, txn, batch); err != nil {
				return err
			}
			if o.afterBatch != nil {
				o.afterBatch()
			}
		}
		for _, id := range batchEndpoints {
			rep.Redriven++
			rep.ByEndpoint[id]++
		}
		batch, batchEndpoints = batch[:0], batchEndpoints[:0]
		return nil
	}
	now := time.Now().UTC()
	dlqTopic := topics.DLQ()
	err = o.eachDeadLetter(ctx, adm, func(dl *DeadLetter, derr error) error {
		rep.Scanned++
		skip := func(reason string) {
			rep.Skipped = append(rep.Skipped, Skipped{Ref: dl.Ref(), EndpointID: dl.EndpointID, EventID: dl.EventID, Reason: reason})
		}
		if derr != nil {
			// Only the endpoint id (the record key) is known.
			if f := opts.Filter; f.Reason == "" && f.EventID == "" && (f.EndpointID == "" || f.EndpointID == dl.EndpointID) {
				skip(SkipUndecodable)
			} else {
				rep.NotMatching++
			}
			return nil
		}
		if !opts.Filter.Match(&dl.DeadLetter) {
			rep.NotMatching++
			return nil
		}
		if redriven[dl.Ref()] {
			rep.AlreadyRedriven++
			return nil
		}
		ep, ok := o.reg.Get(dl.EndpointID)
		switch {
		case !ok:
			skip(SkipUnknownEndpoint)
			return nil
		case ep.Status == registry.StatusDeleted:
			skip(SkipDeletedEndpoint)
			return nil
		case len(dl.Envelope) == 0:
			skip(SkipNoEnvelope)
			return nil
		}
		topic := topics.Endpoint(ep.ID)
		exists, known := topicOK[topic]
		if !known {
			var err error
			if exists, err = topicExists(ctx, adm, topic); err != nil {
				return fmt.Errorf("looking up %s: %w", topic, err)
			}
			topicOK[topic] = exists
		}
		if !exists {
			skip(SkipMissingTopic)
			return nil
		}
		if ep.Status == registry.StatusDisabled && !disabled[ep.ID] {
			disabled[ep.ID] = true
			rep.Disabled = append(rep.Disabled, ep.ID)
		}
		marker, _ := json.Marshal(map[string]any{"endpoint_id": ep.ID, "event_id": dl.EventID, "topic": topic, "redriven_at": now})
		batch = append(batch,
			&kgo.Record{Topic: topic, Key: []byte(o.eventKey(dl)), Value: dl.Envelope, Headers: []kgo.RecordHeader{
				{Key: HeaderEventID, Value: []byte(dl.EventID)},
				{Key: HeaderRedrivenFrom, Value: []byte(dlqTopic + "/" + dl.Ref())},
			}},
			&kgo.Record{Topic: RedrivenTopic(topics), Key: []byte(dl.Ref()), Value: marker},
		)
		batchEndpoints = append(batchEndpoints, ep.ID)
		if len(batchEndpoints) >= opts.BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// eventKey is the key a redriven letter is written under: its event's key
// on the endpoint topic, else (not recorded) its tenant (the letter's, or
// the one in its envelope), the producer's default key.
func (o *Ops) eventKey(dl *DeadLetter) string {
	if dl.EventKey != "" {
		return dl.EventKey
	}
	if dl.TenantID != "" {
		return dl.TenantID
	}
	if env, err := o.cat.DecodeEnvelope(dl.Envelope); err == nil {
		return env.TenantID
	}
	return ""
}

// commitTxn produces recs in one transaction and commits it.
func commitTxn(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("redrive: begin transaction: %w", err)
	}
	perr := cl.ProduceSync(ctx, recs...).FirstErr()
	commit := kgo.TryCommit
	if perr != nil {
		commit = kgo.TryAbort
	}
	eerr := cl.EndTransaction(ctx, commit)
	if err := errors.Join(perr, eerr); err != nil {
		if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
			return fmt.Errorf("redrive: another redrive started and took over (%w); this one's last batch was not written", err)
		}
		return fmt.Errorf("redrive: transaction not committed, nothing of it was written: %w", err)
	}
	return nil
}

// SkipSummary groups skipped letters by reason, with the endpoint ids
// involved: "unknown endpoint: 2 (ep_a, ep_b)".
func (r *RedriveReport) SkipSummary() []string {
	byReason := map[string]map[string]int{}
	counts := map[string]int{}
	for _, s := range r.Skipped {
		if byReason[s.Reason] == nil {
			byReason[s.Reason] = map[string]int{}
		}
		byReason[s.Reason][s.EndpointID]++
		counts[s.Reason]++
	}
	var out []string
	for _, reason := range slices.Sorted(maps.Keys(byReason)) {
		var eps []string
		for id, n := range byReason[reason] {
			if id == "" {
				id = "?"
			}
			eps = append(eps, fmt.Sprintf("%s ×%d", id, n))
		}
		slices.Sort(eps)
		out = append(out, fmt.Sprintf("%s: %d (%s)", reason, counts[reason], strings.Join(eps, ", ")))
	}
	return out
}
