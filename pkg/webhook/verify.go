package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultTolerance is how far webhook-timestamp may be from the receiver's
// clock, in either direction, as in the Standard Webhooks reference libraries.
const DefaultTolerance = 5 * time.Minute

// Verification errors. Verify wraps them with details; test with errors.Is.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is missing or empty.
	ErrMissingHeaders = errors.New("webhook: missing required header")
	// ErrInvalidTimestamp: webhook-timestamp is not a canonical decimal
	// integer count of seconds since the Unix epoch.
	ErrInvalidTimestamp = errors.New("webhook: invalid webhook-timestamp")
	// ErrTimestampTooOld: webhook-timestamp is older than the tolerance.
	ErrTimestampTooOld = errors.New("webhook: timestamp too old")
	// ErrTimestampTooNew: webhook-timestamp is further in the future than
	// the tolerance.
	ErrTimestampTooNew = errors.New("webhook: timestamp too new")
	// ErrNoMatchingSignature: no v1 entry of webhook-signature matches any
	// of the verifier's secrets (this includes an entry-less or malformed
	// header).
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// maxUnix is the last second of year 9999; later timestamps are "too new"
// for any sane tolerance and would overflow time arithmetic.
const maxUnix = 253402300799

// Verifier checks Standard Webhooks signatures against one or more secrets.
// It is safe for concurrent use.
type Verifier struct {
	keys      []*macKey
	tolerance time.Duration
	now       func() time.Time
}

// VerifyOption configures NewVerifier.
type VerifyOption interface{ applyVerify(*verifyConfig) }

type verifyConfig struct {
	tolerance time.Duration
	now       func() time.Time
}

type toleranceOption time.Duration

func (o toleranceOption) applyVerify(c *verifyConfig) { c.tolerance = time.Duration(o) }

// WithTolerance sets how far webhook-timestamp may be from the current time,
// in the past or in the future; the bounds themselves are accepted. It must
// be positive. Default DefaultTolerance.
func WithTolerance(d time.Duration) VerifyOption { return toleranceOption(d) }

// ClockOption sets the clock of a Verifier or a MemoryStore; see WithClock.
type ClockOption func() time.Time

func (o ClockOption) applyVerify(c *verifyConfig) { c.now = o }
func (o ClockOption) applyStore(c *storeConfig)   { c.now = o }

// WithClock sets the function that tells the current time, for tests. It is
// an option of both NewVerifier and NewMemoryStore. nil means time.Now.
func WithClock(now func() time.Time) ClockOption { return ClockOption(now) }

// NewVerifier returns a Verifier accepting a signature made with any of
// secrets (several during a rotation).
func NewVerifier(secrets []Secret, opts ...VerifyOption) (*Verifier, error) {
	cfg := verifyConfig{tolerance: DefaultTolerance}
	for _, o := range opts {
		o.applyVerify(&cfg)
	}
	if len(secrets) == 0 {
		return nil, errors.New("webhook: NewVerifier needs at least one secret")
	}
	if cfg.tolerance <= 0 {
		return nil, fmt.Errorf("webhook: tolerance must be positive, got %v", cfg.tolerance)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	v := &Verifier{keys: make([]*macKey, len(secrets)), tolerance: cfg.tolerance, now: cfg.now}
	for i, s := range secrets {
		if s.IsZero() {
			return nil, fmt.Errorf("webhook: secret %d is the zero Secret", i)
		}
		v.keys[i] = newMACKey(s)
	}
	return v, nil
}

// Verify checks that h carries a valid Standard Webhooks signature of body:
//
//   - webhook-id, webhook-timestamp and webhook-signature are present and
//     not empty (ErrMissingHeaders);
//   - webhook-timestamp is a decimal Unix time in seconds
//     (ErrInvalidTimestamp) within the tolerance of the verifier's clock, in
//     the past (ErrTimestampTooOld) and in the future (ErrTimestampTooNew);
//   - one of the space-separated entries of webhook-signature is
//     "v1,<base64 HMAC-SHA256>" of "id.timestamp.body" under one of the
//     secrets (ErrNoMatchingSignature). Entries of other versions (such as
//     "v1a" asymmetric signatures) and malformed entries are skipped. The
//     comparison is constant-time.
//
// h must have canonical keys, as http.Header.Set and net/http produce.
// Verify does not allocate when the signature is valid.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	_, _, err := v.verify(h, body)
	return err
}

// verify is Verify that also returns the verified id and timestamp.
func (v *Verifier) verify(h http.Header, body []byte) (id string, ts time.Time, err error) {
	id, unix, sigs, err := v.checkHeaders(h)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := v.checkSignature(id, unix, sigs, body); err != nil {
		return "", time.Time{}, err
	}
	return id, time.Unix(unix, 0), nil
}

// checkHeaders checks the presence of the headers and the timestamp, which
// needs no body.
func (v *Verifier) checkHeaders(h http.Header) (id string, unix int64, sigs []string, err error) {
	id = first(h, canonicalID)
	tsText := first(h, canonicalTimestamp)
	sigs = h[canonicalSignature]
	switch {
	case id == "":
		return "", 0, nil, fmt.Errorf("%w: %s", ErrMissingHeaders, HeaderID)
	case tsText == "":
		return "", 0, nil, fmt.Errorf("%w: %s", ErrMissingHeaders, HeaderTimestamp)
	case !anyNonBlank(sigs):
		return "", 0, nil, fmt.Errorf("%w: %s", ErrMissingHeaders, HeaderSignature)
	}
	unix, ok := parseUnix(tsText)
	if !ok {
		return "", 0, nil, fmt.Errorf("%w: want decimal seconds since the Unix epoch", ErrInvalidTimestamp)
	}
	now := v.now()
	if unix > maxUnix {
		return "", 0, nil, fmt.Errorf("%w: after year 9999", ErrTimestampTooNew)
	}
	t := time.Unix(unix, 0)
	if d := now.Sub(t); d > v.tolerance {
		return "", 0, nil, fmt.Errorf("%w: %v in the past, tolerance %v", ErrTimestampTooOld, d.Truncate(time.Second), v.tolerance)
	}
	if d := t.Sub(now); d > v.tolerance {
		return "", 0, nil, fmt.Errorf("%w: %v in the future, tolerance %v", ErrTimestampTooNew, d.Truncate(time.Second), v.tolerance)
	}
	return id, unix, sigs, nil
}

func (v *Verifier) checkSignature(id string, unix int64, sigs []string, body []byte) error {
	var want [sha256.Size]byte
	var got [sha256.Size + 1]byte
	anyV1 := false
	for _, k := range v.keys {
		k.mac(&want, id, unix, body)
		for _, value := range sigs {
			rest := value
			for rest != "" {
				var entry string
				entry, rest, _ = strings.Cut(rest, " ")
				version, b64, ok := strings.Cut(entry, ",")
				if !ok || version != sigVersion {
					continue
				}
				n, ok := decodeMAC(&got, b64)
				if !ok {
					continue
				}
				anyV1 = true
				if hmac.Equal(got[:n], want[:]) {
					return nil
				}
			}
		}
	}
	if !anyV1 {
		return fmt.Errorf("%w: no well-formed v1 entry in %s", ErrNoMatchingSignature, HeaderSignature)
	}
	return ErrNoMatchingSignature
}

// decodeMAC decodes the base64 of a 32-byte MAC, padded (44 characters, as
// the spec says) or unpadded (43), without allocating.
func decodeMAC(dst *[sha256.Size + 1]byte, b64 string) (int, bool) {
	var src [sigB64Len]byte
	enc := base64.StdEncoding
	switch len(b64) {
	case sigB64Len:
	case sigB64Len - 1:
		enc = base64.RawStdEncoding
	default:
		return 0, false
	}
	n := copy(src[:], b64)
	m, err := enc.Decode(dst[:], src[:n])
	if err != nil || m != sha256.Size {
		return 0, false
	}
	return m, true
}

// parseUnix parses a canonical non-negative decimal integer: digits only, no
// sign, no leading zero. Canonical form matters because the signed content
// is rebuilt from the parsed value.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func anyNonBlank(vs []string) bool {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

// Verify checks h and body against a single secret with the default
// tolerance; see Verifier.Verify. A Verifier is faster for repeated use.
func Verify(secret Secret, h http.Header, body []byte) error {
	v, err := NewVerifier([]Secret{secret})
	if err != nil {
		return err
	}
	return v.Verify(h, body)
}
