// Package ids makes the sortable unique identifiers Hookstream uses for
// events (evt_…) and endpoints (ep_…).
//
// An id is a prefix followed by 26 characters of Crockford base32: 48 bits of
// Unix milliseconds then 80 random bits (the ULID layout), so ids sort by
// creation time as strings and are unique without coordination.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// New returns prefix + a new ULID-layout id for time t.
func New(prefix string, t time.Time) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(t.UnixMilli())<<16)
	_, _ = rand.Read(raw[6:]) // crypto/rand.Read never fails (Go 1.24+)
	buf := make([]byte, len(prefix)+26)
	copy(buf, prefix)
	encode(buf[len(prefix):], raw)
	return string(buf)
}

// Event returns a new event id, "evt_" + 26 characters.
func Event() string { return New("evt_", time.Now()) }

// Endpoint returns a new endpoint id, "ep_" + 26 characters.
func Endpoint() string { return New("ep_", time.Now()) }

// encode writes the 128-bit value as 26 base32 digits, most significant first.
func encode(dst []byte, raw [16]byte) {
	hi := binary.BigEndian.Uint64(raw[:8])
	lo := binary.BigEndian.Uint64(raw[8:])
	// 26 digits * 5 bits = 130 bits: the top digit carries 3 bits.
	for i := 25; i >= 0; i-- {
		dst[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
}
