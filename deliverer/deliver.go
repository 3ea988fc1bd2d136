package deliverer

import (
	"context"
	"errors"
	"math/rand/v2"
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

// Header names of a delivery, per the Standard Webhooks spec plus two of
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
	OutcomeDelivered     = "delivered"     // a 2xx answer
	OutcomeRejected      = "rejected"      // a non-retryable answer (4xx other than 408/429)
	OutcomeDropped       = "dropped"       // the endpoint was deleted
	OutcomeUndeliverable = "undeliverable" // the record could not be decoded or rendered
)

// deliver runs the attempts for one record until it is settled. It returns
// false only when shutdown interrupted it before an outcome: the record is
// then left uncommitted and delivered again after the restart.
func (d *Deliverer) deliver(endpointID string, rec *kgo.Record) bool {
	ep, ok := d.reg.Get(endpointID)
	if !ok || ep.Status == registry.StatusDeleted {
		d.m.deliveries.WithLabelValues(OutcomeDropped).Inc()
		return true
	}
	env, err := d.cat.DecodeEnvelope(rec.Value)
	var body []byte
	if err == nil {
		body, err = d.render(env)
	}
	if err != nil {
		d.log.Error("deliverer: undeliverable record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		d.m.deliveries.WithLabelValues(OutcomeUndeliverable).Inc()
		return true
	}
	for attempt := 1; ; attempt++ {
		ep, ok = d.reg.Get(endpointID)
		if !ok || ep.Status == registry.StatusDeleted {
			d.m.deliveries.WithLabelValues(OutcomeDropped).Inc()
			return true
		}
		var res Result
		if ep.Status == registry.StatusActive {
			res = d.attempt(ep, env, body, attempt)
			switch classify(res) {
			case success:
				d.m.deliveries.WithLabelValues(OutcomeDelivered).Inc()
				d.m.endToEnd.Observe(d.cfg.Clock.Now().Sub(env.OccurredAt).Seconds())
				return true
			case permanent:
				d.log.Warn("deliverer: endpoint rejected the delivery", "endpoint", ep.ID, "event", env.ID, "status", res.Status, "body", string(res.Body))
				d.m.deliveries.WithLabelValues(OutcomeRejected).Inc()
				return true
			}
		}
		wait := backoff(d.cfg.RetryMinBackoff, d.cfg.RetryMaxBackoff, attempt)
		if res.RetryAfter > wait {
			wait = min(res.RetryAfter, 2*d.cfg.RetryMaxBackoff)
		}
		d.log.Debug("deliverer: attempt failed, retrying", "endpoint", ep.ID, "event", env.ID, "attempt", attempt, "status", res.Status, "err", res.Err, "wait", wait)
		select {
		case <-d.cfg.Clock.After(wait):
		case <-d.soft.Done():
			return false
		}
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
	ctx, cancel := context.WithTimeout(d.hard, d.cfg.AttemptTimeout)
	defer cancel()
	start := time.Now()
	res := d.cfg.Sender.Send(ctx, &Request{URL: ep.URL, Header: h, Body: body})
	d.m.attemptSeconds.Observe(time.Since(start).Seconds())
	d.m.attempts.WithLabelValues(attemptLabel(res)).Inc()
	return res
}

type class int

const (
	success class = iota
	retryable
	permanent
)

// classify sorts an attempt's result: 2xx succeeds; transport errors,
// timeouts, 408, 429 and 5xx are retried; any other answer is permanent.
func classify(r Result) class {
	switch {
	case r.Err != nil || r.Status == 0:
		return retryable
	case r.Status >= 200 && r.Status < 300:
		return success
	case r.Status == http.StatusRequestTimeout, r.Status == http.StatusTooManyRequests, r.Status >= 500:
		return retryable
	default:
		return permanent
	}
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

// backoff is min·2^(attempt-1) capped at max, with ±20 % jitter.
func backoff(minB, maxB time.Duration, attempt int) time.Duration {
	d := minB
	for i := 1; i < attempt && d < maxB; i++ {
		d *= 2
	}
	d = min(d, maxB)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// render builds the JSON body receivers get:
//
//	{"id":…,"type":…,"timestamp":RFC 3339,"tenant_id":…,"data":{…},"previous_data":{…}|null}
func (d *Deliverer) render(env *codec.Envelope) ([]byte, error) {
	b := make([]byte, 0, 256+2*len(env.Data)+2*len(env.PreviousData))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, env.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, env.Type)
	b = append(b, `,"timestamp":"`...)
	b = env.OccurredAt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","tenant_id":`...)
	b = appendJSONString(b, env.TenantID)
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

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
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
