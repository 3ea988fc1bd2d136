package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderLen is the length of a Single Object Encoding header: the marker
// bytes C3 01, then the writer schema's CRC-64-AVRO fingerprint in
// little-endian order. The Avro binary body follows it.
const HeaderLen = 10

const soeMagic0, soeMagic1 = 0xc3, 0x01

var (
	// ErrNotSingleObject reports bytes that are too short to hold a Single
	// Object Encoding header or that do not start with its marker C3 01.
	ErrNotSingleObject = errors.New("codec: not Avro single object encoding")

	// ErrUnknownSchema reports a fingerprint the catalog does not hold (or
	// that belongs to a different record than the caller expects). Errors
	// that wrap it name the fingerprint in hex.
	ErrUnknownSchema = errors.New("codec: unknown schema fingerprint")
)

// SplitHeader splits Single Object Encoding bytes into the writer schema's
// fingerprint and the Avro binary body. body aliases b.
func SplitHeader(b []byte) (fp uint64, body []byte, err error) {
	if len(b) < HeaderLen {
		return 0, nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrNotSingleObject, len(b), HeaderLen)
	}
	if b[0] != soeMagic0 || b[1] != soeMagic1 {
		return 0, nil, fmt.Errorf("%w: marker %02x %02x, want c3 01", ErrNotSingleObject, b[0], b[1])
	}
	return binary.LittleEndian.Uint64(b[2:HeaderLen]), b[HeaderLen:], nil
}

// AppendHeader appends the Single Object Encoding header for the schema
// with fingerprint fp to dst.
func AppendHeader(dst []byte, fp uint64) []byte {
	dst = append(dst, soeMagic0, soeMagic1)
	return binary.LittleEndian.AppendUint64(dst, fp)
}

// unknownSchema returns ErrUnknownSchema wrapped with the fingerprint.
func unknownSchema(fp uint64) error {
	return fmt.Errorf("%w %016x", ErrUnknownSchema, fp)
}
