package deliverer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// Header names of a delivery: the Standard Webhooks three plus two of
// Hookstream's own.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
	HeaderEvent     = "Webhook-Event"
	HeaderAttempt   = "Webhook-Attempt"
)

// Outcomes of a delivery, the label of hookstream_deliverer_deliveries_total.
const (
	OutcomeDelivered   = "delivered"     // a 2xx answer
	OutcomeDeadLetter  = "dead_lettered" // written to the dead-letter topic
	OutcomeRetry       = "retry"         // written to a retry tier for a later attempt
	OutcomeReparked    = "reparked"      // retry-tier record of a paused endpoint, written back without an attempt
	OutcomeDropped     = "dropped"       // the endpoint was deleted
	OutcomeInterrupted = "interrupted"   // shutdown came first; delivered again after restart
)

// Dead-letter reasons.
const (
	ReasonRejected      = "rejected"      // a non-retryable answer (4xx other than 408, 410, 429)
	ReasonExhausted     = "exhausted"     // the retry schedule is spent
	ReasonUndeliverable = "undeliverable" // the record could not be decoded or rendered
	// ReasonUnwritable letters are the router's: Kafka refused the event's
	// copy on its endpoint topic for good (larger than the topic's
	// max.message.bytes, not authorized, a policy); never attempted.
	ReasonUnwritable = "unwritable"
)

// HeaderReason is a dead letter's header with its reason (Reason*).
const HeaderReason = "hookstream-reason"

// DeadLetterHeaders are the headers of a dead letter: its reason, its
// endpoint and, when the event had one, the event's record key (which a
// redrive writes it back under).
func DeadLetterHeaders(reason, endpointID string, eventKey []byte) []kgo.RecordHeader {
	hs := []kgo.RecordHeader{
		{Key: HeaderReason, Value: []byte(reason)},
		{Key: HeaderRetryEndpoint, Value: []byte(endpointID)},
	}
	if len(eventKey) > 0 {
		hs = append(hs, kgo.RecordHeader{Key: HeaderEventKey, Value: eventKey})
	}
	return hs
}

var errFailed = errors.New("delivery attempt failed")

// process runs a started job to its settlement and reports whether it is
// settled (false only when shutdown interrupted it: the record stays
// uncommitted and is delivered again after the restart).
func (d *Deliverer) process(p *partition, j *job, es *endpointState, done func(error), act action) bool {
	switch act {
	case actDrop:
		d.m.deliveries.WithLabelValues(OutcomeDropped).Inc()
		return true
	case actRepark:
		due := d.cfg.Clock.Now().Add(max(p.tier, d.cfg.ReparkDelay))
		d.log.Debug("deliverer: endpoint paused; reparking its retry", "endpoint", j.endpointID, "topic", p.tp.topic, "due", due)
		return d.forward(j.retryRecord(p.tp.topic, due), OutcomeReparked)
	}
	env, err := d.cat.DecodeEnvelope(j.rec.Value)
	var body []byte
	if err == nil {
		body, err = d.render(env)
	}
	if err != nil {
		es.release(done, nil, d.cfg.Clock.Now())
		d.log.Error("deliverer: undeliverable record", "topic", j.rec.Topic, "partition", j.rec.Partition, "offset", j.rec.Offset, "err", err)
		j.lastErr = err.Error()
		ep, _ := d.reg.Get(j.endpointID)
		return d.deadLetter(j, ep, nil, ReasonUndeliverable, Result{Err: err})
	}
	retryingInPlace := false
	defer func() {
		if retryingInPlace {
			p.setRetrying(-1)
		}
	}()
	for {
		ep, ok := d.reg.Get(j.endpointID)
		if !ok || ep.Status == registry.StatusDeleted {
			es.release(done, nil, d.cfg.Clock.Now())
			d.m.deliveries.WithLabelValues(OutcomeDropped).Inc()
			return true
		}
		now := d.cfg.Clock.Now()
		if j.firstAt.IsZero() {
			j.firstAt = now
		}
		res := d.attempt(ep, env, body, j.attempts+1)
		j.attempts++
		c := classify(res)
		if c != success { // a delivered job is done: nothing reads these
			j.lastStatus, j.lastErr = res.Status, describe(res)
		}
		var outcome error
		switch c {
		case throttled:
			outcome = errThrottled
		case retryable:
			outcome = errFailed
		}
		failingSince := es.release(done, outcome, d.cfg.Clock.Now())
		sched := d.schedule(ep)
		var delay time.Duration
		switch c {
		case success:
			if d.log.Enabled(context.Background(), slog.LevelDebug) { // spares boxing the arguments
				d.log.Debug("deliverer: delivered", "endpoint", ep.ID, "event", env.ID, "attempt", j.attempts)
			}
			d.m.deliveries.WithLabelValues(OutcomeDelivered).Inc()
			d.m.endToEnd.Observe(d.cfg.Clock.Now().Sub(env.OccurredAt).Seconds())
			return true
		case permanent:
			if !d.cfg.RetryClientErrors {
				return d.deadLetter(j, ep, env, ReasonRejected, res)
			}
			c = retryable
		case gone:
			if es.startDisabling() {
				d.log.Warn("deliverer: endpoint answered 410 Gone; disabling it", "endpoint", ep.ID)
				go d.disable(ep, es, "410 Gone", now)
			}
		}
		switch c {
		case retryable:
			j.budget++
			if !failingSince.IsZero() && now.Sub(failingSince) >= d.cfg.AutoDisableAfter && es.startDisabling() {
				go d.disable(ep, es, "failing since "+failingSince.UTC().Format(time.RFC3339), failingSince)
			}
			if j.budget > len(sched) {
				return d.deadLetter(j, ep, env, ReasonExhausted, res)
			}
			delay = sched[j.budget-1]
		case throttled, gone: // does not count against the budget
			next := sched[min(j.budget, len(sched)-1)]
			delay = next
			if res.RetryAfter > 0 {
				delay = min(res.RetryAfter, 2*next)
			}
			if j.attempts >= d.cfg.MaxAttempts {
				return d.deadLetter(j, ep, env, ReasonExhausted, res)
			}
		}
		d.log.Debug("deliverer: attempt failed", "endpoint", ep.ID, "event", env.ID, "attempt", j.attempts, "status", res.Status, "err", res.Err, "next_in", delay)
		if !ep.Ordered {
			due := now.Add(jitter(delay, d.cfg.Jitter))
			return d.forward(j.retryRecord(d.topics.Retry(tierFor(d.tiers, delay)), due), OutcomeRetry)
		}
		// An ordered endpoint retries in place: the events behind this one
		// on its partition wait, and are never overtaken by it.
		if !retryingInPlace {
			retryingInPlace = true
			p.setRetrying(1)
		}
		select {
		case <-d.cfg.Clock.After(jitter(delay, d.cfg.Jitter)):
		case <-d.soft.Done():
			d.m.deliveries.WithLabelValues(OutcomeInterrupted).Inc()
			return false
		}
		if done, ok = d.waitAdmitted(es, j.endpointID); !ok {
			if _, exists := d.reg.Get(j.endpointID); !exists {
				d.m.deliveries.WithLabelValues(OutcomeDropped).Inc()
				return true
			}
			d.m.deliveries.WithLabelValues(OutcomeInterrupted).Inc()
			return false
		}
	}
}

// waitAdmitted blocks until the endpoint admits an attempt (an ordered job
// retrying in place). It returns false at shutdown or if the endpoint is
// deleted.
func (d *Deliverer) waitAdmitted(es *endpointState, id string) (func(error), bool) {
	for {
		ep, ok := d.reg.Get(id)
		if !ok || ep.Status == registry.StatusDeleted {
			return nil, false
		}
		changed := es.changedCh()
		now := d.cfg.Clock.Now()
		done, why, at := es.admit(ep, now)
		if why == admitted {
			return done, true
		}
		var timer <-chan time.Time
		if !at.IsZero() {
			timer = d.cfg.Clock.After(at.Sub(now))
		}
		select {
		case <-changed:
		case <-timer:
		case <-d.soft.Done():
			return nil, false
		}
	}
}

// forward writes rec (to a retry tier) and reports whether it is acked; the
// job is settled only then.
func (d *Deliverer) forward(rec *kgo.Record, outcome string) bool {
	if !d.produceDurably(rec) {
		d.m.deliveries.WithLabelValues(OutcomeInterrupted).Inc()
		return false
	}
	d.m.deliveries.WithLabelValues(outcome).Inc()
	return true
}

// produceDurably produces rec with acks=all, retrying until it is acked or
// the shutdown deadline passes.
func (d *Deliverer) produceDurably(rec *kgo.Record) bool {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := d.prod.ProduceSync(d.hard, rec).FirstErr()
		if err == nil {
			return true
		}
		if d.hard.Err() != nil {
			return false
		}
		d.log.Error("deliverer: producing to "+rec.Topic+" failed; retrying", "err", err)
		select {
		case <-time.After(wait):
		case <-d.hard.Done():
			return false
		}
	}
}

// DeadLetter is the value of a dead-letter record (schemas/deadletter.avsc).
type DeadLetter struct {
	Envelope       []byte    `avro:"envelope"`
	EventID        string    `avro:"event_id"`
	EventType      string    `avro:"event_type"`
	TenantID       string    `avro:"tenant_id"`
	EndpointID     string    `avro:"endpoint_id"`
	EndpointURL    string    `avro:"endpoint_url"`
	Attempts       int32     `avro:"attempts"`
	FirstAttemptAt time.Time `avro:"first_attempt_at"`
	LastAttemptAt  time.Time `avro:"last_attempt_at"`
	LastStatus     int32     `avro:"last_status"`
	LastError      string    `avro:"last_error"`
	ResponseBody   string    `avro:"response_body"`
	Reason         string    `avro:"reason"`
	DeadAt         time.Time `avro:"dead_at"`
}

// DeadLetterRecordName is the Avro full name of dead-letter values.
const DeadLetterRecordName = "hookstream.DeadLetter"

func (d *Deliverer) deadLetter(j *job, ep *registry.Endpoint, env *codec.Envelope, reason string, res Result) bool {
	now := d.cfg.Clock.Now().UTC()
	dl := DeadLetter{
		Envelope: j.rec.Value, EndpointID: j.endpointID, Attempts: int32(j.attempts),
		FirstAttemptAt: j.firstAt, LastAttemptAt: now, LastStatus: int32(j.lastStatus),
		LastError: j.lastErr, ResponseBody: string(res.Body), Reason: reason, DeadAt: now,
	}
	if dl.FirstAttemptAt.IsZero() {
		dl.FirstAttemptAt = now
	}
	if ep != nil {
		dl.EndpointURL = ep.URL
	}
	if env != nil {
		dl.EventID, dl.EventType, dl.TenantID = env.ID, env.Type, env.TenantID
	}
	if !utf8.ValidString(dl.ResponseBody) {
		dl.ResponseBody = strconv.QuoteToASCII(dl.ResponseBody)
	}
	val, err := d.cat.Marshal(DeadLetterRecordName, &dl)
	if err != nil { // a bug, not bad input: keep the record uncommitted
		d.log.Error("deliverer: encoding dead letter", "err", err)
		return false
	}
	d.log.Warn("deliverer: dead-lettered", "endpoint", j.endpointID, "event", dl.EventID, "reason", reason, "attempts", j.attempts, "status", j.lastStatus, "error", j.lastErr)
	rec := &kgo.Record{Topic: d.topics.DLQ(), Key: []byte(j.endpointID), Value: val,
		Headers: DeadLetterHeaders(reason, j.endpointID, []byte(j.eventKey))}
	if !d.produceDurably(rec) {
		d.m.deliveries.WithLabelValues(OutcomeInterrupted).Inc()
		return false
	}
	d.m.deliveries.WithLabelValues(OutcomeDeadLetter).Inc()
	d.m.deadLetters.WithLabelValues(reason).Inc()
	return true
}

// disable marks the endpoint disabled in the registry and publishes an
// endpoint.disabled event so the platform can tell its customer.
func (d *Deliverer) disable(ep *registry.Endpoint, es *endpointState, reason string, failingSince time.Time) {
	defer es.doneDisabling()
	ctx, cancel := context.WithTimeout(d.hard, 30*time.Second)
	defer cancel()
	if _, err := d.admin.SetStatus(ctx, ep.ID, registry.StatusDisabled, reason); err != nil {
		d.log.Error("deliverer: disabling endpoint", "endpoint", ep.ID, "err", err)
		return
	}
	d.m.disabled.Inc()
	d.log.Warn("deliverer: endpoint disabled", "endpoint", ep.ID, "reason", reason)
	now := d.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	data := map[string]any{
		"endpoint_id": ep.ID, "tenant_id": ep.TenantID, "url": ep.URL, "reason": reason,
		"failing_since": failingSince.UTC().Truncate(time.Millisecond), "disabled_at": now,
	}
	if err := d.publish(ctx, "endpoint.disabled", ep.TenantID, data); err != nil {
		d.log.Error("deliverer: publishing endpoint.disabled", "endpoint", ep.ID, "err", err)
	}
}

// attempt signs and posts one attempt.
func (d *Deliverer) attempt(ep *registry.Endpoint, env *codec.Envelope, body []byte, attempt int) Result {
	signer, err := d.sign.get(ep)
	if err != nil {
		return Result{Err: err}
	}
	now := d.cfg.Clock.Now()
	h := make(http.Header, 8)
	h[HeaderID] = []string{env.ID}
	h[HeaderTimestamp] = []string{strconv.FormatInt(now.Unix(), 10)}
	h[HeaderSignature] = []string{signer.Sign(env.ID, now, body)}
	h[HeaderEvent] = []string{env.Type}
	h[HeaderAttempt] = []string{strconv.Itoa(attempt)}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{"Hookstream/" + Version}
	req := &Request{URL: ep.URL, Header: h, Body: body}
	start := time.Now()
	var res Result
	if d.fast != nil {
		res = d.fast.sendBy(d.hard, start.Add(d.cfg.AttemptTimeout), req)
	} else {
		ctx, cancel := context.WithTimeout(d.hardShards[d.shardNext.Add(1)%uint32(len(d.hardShards))], d.cfg.AttemptTimeout)
		res = d.cfg.Sender.Send(ctx, req)
		cancel()
	}
	d.m.attemptSeconds.Observe(time.Since(start).Seconds())
	d.m.attempts.WithLabelValues(attemptLabel(res)).Inc()
	return res
}

type class int

const (
	success   class = iota
	retryable       // transport error, timeout, 408, 5xx
	throttled       // 429, or 503/409 with Retry-After: retried, not counted against the budget
	gone            // 410: the endpoint is disabled
	permanent       // any other answer: dead-lettered (unless RetryClientErrors)
)

// classify sorts an attempt's result.
func classify(r Result) class {
	switch {
	case errors.Is(r.Err, ErrPrivateTarget):
		return permanent // configuration, not a passing fault: dead-letter with the reason
	case r.Err != nil || r.Status == 0:
		return retryable
	case r.Status >= 200 && r.Status < 300:
		return success
	case r.Status == http.StatusTooManyRequests,
		r.RetryAfter > 0 && (r.Status == http.StatusServiceUnavailable || r.Status == http.StatusConflict):
		// 409 with Retry-After is what pkg/webhook's middleware answers
		// while an earlier attempt of the same webhook-id is still running.
		return throttled
	case r.Status == http.StatusGone:
		return gone
	case r.Status == http.StatusRequestTimeout, r.Status >= 500:
		return retryable
	default:
		return permanent
	}
}

func describe(r Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("HTTP %d %s", r.Status, http.StatusText(r.Status))
}

func attemptLabel(r Result) string {
	switch {
	case r.Err != nil && errors.Is(r.Err, context.DeadlineExceeded):
		return "timeout"
	case r.Err != nil || r.Status == 0:
		return "error"
	case r.Status < 300:
		return "2xx"
	case r.Status < 400:
		return "3xx"
	case r.Status < 500:
		return "4xx"
	default:
		return "5xx"
	}
}

// schedule is the endpoint's retry schedule, or the deliverer's.
func (d *Deliverer) schedule(ep *registry.Endpoint) Schedule {
	if len(ep.RetryScheduleMS) == 0 {
		return d.cfg.Schedule
	}
	s := make(Schedule, len(ep.RetryScheduleMS))
	for i, ms := range ep.RetryScheduleMS {
		s[i] = time.Duration(ms) * time.Millisecond
	}
	return s
}

// render builds the JSON body receivers get:
//
//	{"id":…,"type":…,"timestamp":RFC 3339,"tenant_id":…,"data":{…},"previous_data":{…}|null}
func (d *Deliverer) render(env *codec.Envelope) ([]byte, error) {
	b := make([]byte, 0, 256+2*len(env.Data)+2*len(env.PreviousData))
	b = append(b, `{"id":`...)
	b = codec.AppendJSONString(b, env.ID)
	b = append(b, `,"type":`...)
	b = codec.AppendJSONString(b, env.Type)
	b = append(b, `,"timestamp":"`...)
	b = env.OccurredAt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","tenant_id":`...)
	b = codec.AppendJSONString(b, env.TenantID)
	b = append(b, `,"data":`...)
	var err error
	if b, err = d.cat.AppendDataJSON(b, env.Data); err != nil {
		return nil, err
	}
	b = append(b, `,"previous_data":`...)
	if env.PreviousData == nil {
		b = append(b, "null"...)
	} else if b, err = d.cat.AppendDataJSON(b, env.PreviousData); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// signers caches one webhook.Signer per endpoint version, so secrets are
// parsed and keys set up once, not per delivery.
type signers struct{ m sync.Map } // *registry.Endpoint -> *webhook.Signer

func (s *signers) get(ep *registry.Endpoint) (*webhook.Signer, error) {
	if v, ok := s.m.Load(ep); ok {
		return v.(*webhook.Signer), nil
	}
	secrets := make([]webhook.Secret, 0, len(ep.Secrets))
	for _, raw := range ep.Secrets {
		sec, err := webhook.ParseSecret(raw)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, sec)
	}
	if len(secrets) == 0 {
		return nil, errors.New("endpoint has no signing secret")
	}
	v, _ := s.m.LoadOrStore(ep, webhook.NewSigner(secrets...))
	return v.(*webhook.Signer), nil
}

func (s *signers) forget(ep *registry.Endpoint) { s.m.Delete(ep) }
