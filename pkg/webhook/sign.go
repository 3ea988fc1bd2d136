package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Header names defined by Standard Webhooks, plus the two informational
// headers Hookstream sends. http.Header canonicalizes them ("Webhook-Id").
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	// HeaderAttempt and HeaderEventType are not part of the signed content.
	HeaderAttempt   = "webhook-attempt"
	HeaderEventType = "webhook-event"
)

// Canonical forms, for allocation-free map lookups.
var (
	canonicalID        = http.CanonicalHeaderKey(HeaderID)
	canonicalTimestamp = http.CanonicalHeaderKey(HeaderTimestamp)
	canonicalSignature = http.CanonicalHeaderKey(HeaderSignature)
	canonicalAttempt   = http.CanonicalHeaderKey(HeaderAttempt)
	canonicalEventType = http.CanonicalHeaderKey(HeaderEventType)
)

const (
	sigVersion = "v1"
	// sigLen is the length of one "v1,<base64 of 32 bytes, padded>" entry.
	sigB64Len = 44
	sigLen    = len(sigVersion) + 1 + sigB64Len
	// maxScratch bounds the per-state prefix buffer kept in the pool, so a
	// huge webhook-id does not pin memory.
	maxScratch = 1 << 10
)

// macKey is the per-secret signing state: a pool of keyed HMAC-SHA256
// instances. Taking one from the pool and resetting it costs no key setup.
type macKey struct {
	pool sync.Pool // of *macState
}

type macState struct {
	h       hash.Hash
	scratch []byte // "id.timestamp." prefix
	sum     [sha256.Size]byte
}

func newMACKey(s Secret) *macKey {
	if s.IsZero() {
		panic("webhook: zero Secret")
	}
	key := []byte(s.key)
	k := &macKey{}
	k.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, key), scratch: make([]byte, 0, 64)}
	}
	return k
}

// mac computes HMAC-SHA256(id + "." + ts + "." + body) into out.
func (k *macKey) mac(out *[sha256.Size]byte, id string, ts int64, body []byte) {
	st := k.pool.Get().(*macState)
	p := append(st.scratch[:0], id...)
	p = append(p, '.')
	p = strconv.AppendInt(p, ts, 10)
	p = append(p, '.')
	st.h.Reset()
	st.h.Write(p)
	st.h.Write(body)
	st.h.Sum(st.sum[:0])
	*out = st.sum
	if cap(p) > maxScratch {
		p = nil
	}
	st.scratch = p
	k.pool.Put(st)
}

// appendEntry appends "v1,<base64 mac>".
func (k *macKey) appendEntry(dst []byte, id string, ts int64, body []byte) []byte {
	var sum [sha256.Size]byte
	k.mac(&sum, id, ts, body)
	dst = append(dst, sigVersion...)
	dst = append(dst, ',')
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// Signer signs webhooks with one or more secrets. It precomputes the keyed
// HMAC state per secret, so signing does no key setup. A Signer is safe for
// concurrent use.
type Signer struct {
	keys []*macKey
}

// NewSigner returns a Signer for secrets. With several secrets (during a
// rotation) every signature carries one v1 entry per secret, in the order
// given, so receivers holding either the old or the new secret accept it.
//
// NewSigner panics if secrets is empty or holds a zero Secret: an unsigned
// webhook must never be sent.
func NewSigner(secrets ...Secret) *Signer {
	if len(secrets) == 0 {
		panic("webhook: NewSigner needs at least one secret")
	}
	s := &Signer{keys: make([]*macKey, len(secrets))}
	for i, sec := range secrets {
		s.keys[i] = newMACKey(sec)
	}
	return s
}

// Sign returns the webhook-signature header value for the message id sent at
// ts (truncated to whole seconds) with body: "v1,<base64>", one
// space-separated entry per secret.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	return string(s.AppendSignature(make([]byte, 0, s.sigSize()), id, ts, body))
}

// AppendSignature appends the webhook-signature header value (see Sign) to
// dst and returns the extended buffer. It does not allocate when dst has room
// for the result: len(s.Sign(...)) bytes, that is 47 per secret plus the
// separating spaces.
func (s *Signer) AppendSignature(dst []byte, id string, ts time.Time, body []byte) []byte {
	unix := ts.Unix()
	for i, k := range s.keys {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = k.appendEntry(dst, id, unix, body)
	}
	return dst
}

// SetHeaders sets the webhook-id, webhook-timestamp and webhook-signature
// headers of h for the message id sent at ts with body.
func (s *Signer) SetHeaders(h http.Header, id string, ts time.Time, body []byte) {
	h[canonicalID] = []string{id}
	h[canonicalTimestamp] = []string{strconv.FormatInt(ts.Unix(), 10)}
	h[canonicalSignature] = []string{s.Sign(id, ts, body)}
}

func (s *Signer) sigSize() int { return len(s.keys)*(sigLen+1) - 1 }

// Sign returns the webhook-signature header value ("v1,<base64>") for one
// secret. A Signer is faster for repeated signing with the same secret.
func Sign(secret Secret, id string, ts time.Time, body []byte) string {
	if secret.IsZero() {
		panic("webhook: Sign with zero Secret")
	}
	m := hmac.New(sha256.New, []byte(secret.key))
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return sigVersion + "," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
