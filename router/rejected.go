package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
)

// ErrUnwritable is the quarantine reason of an event whose copy for an
// endpoint Kafka refused for good, on its topic and as a dead letter.
var ErrUnwritable = errors.New("event copy unwritable")

// A write Kafka refuses for good (the record is larger than the endpoint
// topic's max.message.bytes, the router may not write to the topic, a
// policy rejects it) fails the same way every time it is tried again, and
// the batch it is in with it: the exactly-once router aborts and re-reads
// it, the at-least-once router writes it again, and every other endpoint's
// events wait. So the router remembers which copy was refused, and when the
// batch comes round again writes that copy as a dead letter (reason
// unwritable, the refusal as its last error) instead, which `dlq redrive`
// writes to the endpoint topic once the topic is fixed. A dead letter
// refused for good too (the dead-letter topic has the same limit) becomes
// a quarantine record of the event without its value, which is always
// small.

// refusal is one copy of an event that Kafka refused for good.
type refusal struct {
	topic    string // the topic refused: an endpoint topic, or the dead-letter topic
	eventID  string
	endpoint string
}

// refusals are the copies refused so far, until their event is written
// another way.
type refusals struct {
	n  atomic.Int32 // len(m): nothing to look up on the hot path while 0
	mu sync.Mutex
	m  map[refusal]string // -> the refusal's error
}

func (rs *refusals) add(k refusal, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[refusal]string{}
	}
	rs.m[k] = err.Error()
	rs.n.Store(int32(len(rs.m)))
}

// get returns the error a copy was refused with, if it was.
func (rs *refusals) get(k refusal) (string, bool) {
	if rs.n.Load() == 0 {
		return "", false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	e, ok := rs.m[k]
	return e, ok
}

// forget drops keys once their copy is written another way.
func (rs *refusals) forget(keys ...refusal) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, k := range keys {
		delete(rs.m, k)
	}
	rs.n.Store(int32(len(rs.m)))
}

// refusedForGood reports whether a write error will recur on every retry
// of the same record.
func refusedForGood(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.TopicAuthorizationFailed, kerr.PolicyViolation, kerr.InvalidTopicException, kerr.CorruptMessage} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refused records a copy that rec's write found refused for good: an
// endpoint copy (its event id from the envelope it carries) or a dead
// letter the router wrote (its ids from its headers).
func (r *Router) refused(rec *kgo.Record, err error) {
	k := refusal{topic: rec.Topic}
	if id, ok := r.topics.EndpointID(rec.Topic); ok {
		env, derr := r.cat.DecodeEnvelope(rec.Value)
		if derr != nil {
			return // routed records were decoded before: cannot happen
		}
		k.eventID, k.endpoint = env.ID, id
	} else if rec.Topic == r.topics.DLQ() {
		for _, h := range rec.Headers {
			switch h.Key {
			case kafka.HeaderEventID:
				k.eventID = string(h.Value)
			case deliverer.HeaderRetryEndpoint:
				k.endpoint = string(h.Value)
			}
		}
	} else {
		return
	}
	r.log.Error("router: Kafka refused a copy of an event for good; it is written another way when the batch is retried",
		"topic", rec.Topic, "event", k.eventID, "endpoint", k.endpoint, "err", err)
	r.refusals.add(k, err)
}

// writeCopy writes env's copy for endpoint e: to its topic, or, if Kafka
// refused that before, as a dead letter, or, if it refused that too, as a
// quarantine record without the value. A copy written another way is
// forgotten once the write is acknowledged (if its transaction aborts after
// all, the next try meets the refusal again and remembers it again).
func (r *Router) writeCopy(ctx context.Context, p producer, rec *kgo.Record, env *codec.Envelope, e *registry.Endpoint, promise func(*kgo.Record, error)) {
	topic := r.topics.Endpoint(e.ID)
	k := refusal{topic: topic, eventID: env.ID, endpoint: e.ID}
	why, refused := r.refusals.get(k)
	if !refused {
		p.Produce(ctx, &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Headers: rec.Headers}, promise)
		return
	}
	dk := refusal{topic: r.topics.DLQ(), eventID: env.ID, endpoint: e.ID}
	if dwhy, ok := r.refusals.get(dk); ok {
		reason := fmt.Errorf("%w: %s refused its copy for endpoint %s (%s), and %s its dead letter (%s)", ErrUnwritable, topic, e.ID, why, dk.topic, dwhy)
		r.quarantine(ctx, p, rec, reason, func(q *kgo.Record, err error) {
			if err == nil {
				r.refusals.forget(k, dk)
				r.m.unwritable.WithLabelValues("invalid").Inc()
			}
			promise(q, err)
		})
		return
	}
	now := time.Now().UTC()
	dl := deliverer.DeadLetter{
		Envelope: rec.Value, EventID: env.ID, EventType: env.Type, TenantID: env.TenantID,
		EndpointID: e.ID, EndpointURL: e.URL, FirstAttemptAt: now, LastAttemptAt: now,
		LastError: topic + ": " + why, Reason: deliverer.ReasonUnwritable, DeadAt: now,
	}
	val, err := r.cat.Marshal(deliverer.DeadLetterRecordName, &dl)
	if err != nil { // a bug, not bad input: fail the batch rather than drop the copy
		promise(&kgo.Record{Topic: dk.topic}, fmt.Errorf("router: encoding a dead letter: %w", err))
		return
	}
	hs := append(deliverer.DeadLetterHeaders(deliverer.ReasonUnwritable, e.ID, rec.Key),
		kgo.RecordHeader{Key: kafka.HeaderEventID, Value: []byte(env.ID)})
	r.log.Warn("router: writing a refused copy as a dead letter", "endpoint", e.ID, "event", env.ID, "refusal", why)
	p.Produce(ctx, &kgo.Record{Topic: dk.topic, Key: []byte(e.ID), Value: val, Headers: hs}, func(d *kgo.Record, err error) {
		if err == nil {
			r.refusals.forget(k)
			r.m.unwritable.WithLabelValues("dlq").Inc()
		}
		promise(d, err)
	})
}
