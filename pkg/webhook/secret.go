package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// SecretPrefix is the prefix of a serialized symmetric signing secret.
const SecretPrefix = "whsec_"

// Secret key sizes accepted by ParseSecret, in bytes (Standard Webhooks: at
// least 24 bytes, at most 512 bits).
const (
	MinSecretSize = 24
	MaxSecretSize = 64
)

// newSecretSize is the key size NewSecret generates.
const newSecretSize = 32

// ErrInvalidSecret is returned (wrapped) by ParseSecret for a malformed secret.
var ErrInvalidSecret = errors.New("webhook: invalid secret")

// Secret is a symmetric Standard Webhooks signing key (HMAC-SHA256).
//
// A Secret is an immutable value: it is safe to copy, to compare with ==,
// and to share between goroutines. The zero Secret holds no key and is
// rejected by NewSigner and NewVerifier.
type Secret struct {
	key string // decoded key bytes
}

// NewSecret returns a new random 32-byte secret read from crypto/rand.
//
// The error is always nil: since Go 1.24 crypto/rand does not fail (the
// program crashes if the operating system's generator is unavailable). It is
// kept so that callers are ready for a generator that can fail.
func NewSecret() (Secret, error) {
	b := make([]byte, newSecretSize)
	if _, err := rand.Read(b); err != nil {
		return Secret{}, fmt.Errorf("webhook: generating secret: %w", err)
	}
	return Secret{key: string(b)}, nil
}

// ParseSecret parses a serialized secret: "whsec_" followed by the standard
// base64 encoding (RFC 4648 §4) of 24 to 64 key bytes. Like the reference
// libraries it also accepts the base64 text without the "whsec_" prefix.
//
// Both padded and unpadded base64 are accepted, because the reference
// libraries disagree on padding; String always emits padded base64. URL-safe
// base64, embedded line breaks and surrounding spaces are rejected.
func ParseSecret(s string) (Secret, error) {
	b64 := strings.TrimPrefix(s, SecretPrefix)
	if b64 == "" {
		return Secret{}, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	// encoding/base64 silently skips '\r' and '\n'; a secret never has them.
	if strings.ContainsAny(b64, "\r\n") {
		return Secret{}, fmt.Errorf("%w: contains a line break", ErrInvalidSecret)
	}
	enc := base64.StdEncoding
	if len(b64)%4 != 0 {
		// Only unpadded text can have a length that is not a multiple of
		// four; RawStdEncoding rejects any '=' in it.
		enc = base64.RawStdEncoding
	}
	if enc.DecodedLen(len(b64)) > 2*MaxSecretSize {
		return Secret{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidSecret, MaxSecretSize)
	}
	key, err := enc.DecodeString(b64)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: not standard base64: %v", ErrInvalidSecret, err)
	}
	if len(key) < MinSecretSize || len(key) > MaxSecretSize {
		return Secret{}, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrInvalidSecret, len(key), MinSecretSize, MaxSecretSize)
	}
	return Secret{key: string(key)}, nil
}

// String returns the serialized secret, "whsec_" + padded standard base64.
// It is the secret itself: store it like a password and do not log it.
func (s Secret) String() string {
	return SecretPrefix + base64.StdEncoding.EncodeToString([]byte(s.key))
}

// LogValue implements slog.LogValuer so that a Secret logged with log/slog is
// redacted.
func (s Secret) LogValue() slog.Value {
	return slog.StringValue(SecretPrefix + "REDACTED")
}

// IsZero reports whether s is the zero Secret, which holds no key.
func (s Secret) IsZero() bool { return s.key == "" }
