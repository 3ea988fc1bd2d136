// Package webhook signs and verifies webhooks the Standard Webhooks way
// (https://www.standardwebhooks.com, spec/standard-webhooks.md in
// github.com/standard-webhooks/standard-webhooks): the deliverer signs with
// a Signer, and receivers verify with a Verifier or the Middleware.
//
// # Mapping to the specification
//
// Headers. Every request carries
//
//	webhook-id:        the message id, identical on every retry (the idempotency key)
//	webhook-timestamp: the attempt time, integer seconds since the Unix epoch
//	webhook-signature: space-separated signatures, e.g. "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
//
// Hookstream also sends webhook-attempt (1, 2, ...) and webhook-event (the
// event type). Those two are informational: they are not signed.
//
// Signed content. A v1 signature is HMAC-SHA256, keyed with the secret, of
// the bytes
//
//	{webhook-id}.{webhook-timestamp}.{body}
//
// (the id, a full stop, the decimal timestamp, a full stop, the raw body
// exactly as sent), encoded in standard base64 with padding (RFC 4648 §4) and
// prefixed with "v1,". Message ids must not contain a full stop, or the
// content would be ambiguous; Hookstream's ids never do.
//
// Secrets. A symmetric secret is serialized as "whsec_" followed by the
// standard base64 of 24 to 64 random bytes. ParseSecret accepts padded and
// unpadded base64 (the reference libraries disagree) and the bare base64
// without the prefix; Secret.String always emits "whsec_" and padding.
// NewSecret generates 32 bytes.
//
// Rotation. A Signer with several secrets puts one v1 entry per secret in
// webhook-signature; a Verifier with several secrets accepts a match with any
// of them. Entries of other versions, such as "v1a" (ed25519 asymmetric
// signatures, which this package does not implement), are ignored.
//
// Verification. Verify requires the three headers, a timestamp within the
// tolerance (DefaultTolerance, 5 minutes, in the past and in the future, as in
// the reference libraries), and one matching v1 entry, compared in constant
// time with hmac.Equal. Each failure has its own error (ErrMissingHeaders,
// ErrInvalidTimestamp, ErrTimestampTooOld, ErrTimestampTooNew,
// ErrNoMatchingSignature) for errors.Is.
//
// Idempotency. The spec asks receivers to use webhook-id as an idempotency
// key. Middleware does so with a TwoPhaseStore (MemoryStore by default):
// an id is committed only after the handler succeeds, so failed deliveries
// stay retryable; see Middleware.
//
// # Compatibility
//
// The tests check the sign vector published with the reference libraries and
// cross-check against the Python reference library (package standardwebhooks)
// in both directions; see testdata/.
package webhook
