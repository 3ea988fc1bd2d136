package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ValidationError reports event data that does not fit the event type's
// schema. EncodeJSON returns it (wrapped) so that an API can answer 400 with
// the message.
type ValidationError struct {
	// Path locates the offending value: "data", "data.amount",
	// "data.items[2].sku", `data.metadata["k"]`.
	Path string
	// Problem says what is wrong: `want long, got string "x"`.
	Problem string

	segs []string // path segments, innermost first, while unwinding
}

func (e *ValidationError) Error() string { return e.Path + ": " + e.Problem }

func invalid(format string, args ...any) *ValidationError {
	return &ValidationError{Problem: fmt.Sprintf(format, args...)}
}

// at prefixes the path of a ValidationError with seg as it unwinds.
func at(err error, seg string) error {
	if ve, ok := err.(*ValidationError); ok {
		ve.segs = append(ve.segs, seg)
	}
	return err
}

func (e *ValidationError) finish(root string) *ValidationError {
	var b strings.Builder
	b.WriteString(root)
	for i := len(e.segs) - 1; i >= 0; i-- {
		b.WriteString(e.segs[i])
	}
	e.Path, e.segs = b.String(), nil
	return e
}

// decodeJSON parses one JSON value, numbers kept as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return v, nil
}

// got describes a JSON value for an error message.
func got(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 40 {
			return "string " + strconv.Quote(v[:37]+"...")
		}
		return "string " + strconv.Quote(v)
	case json.Number:
		return "number " + v.String()
	case bool:
		return "boolean " + strconv.FormatBool(v)
	}
	return jsonKind(v)
}

// encodeJSONValue appends the Avro binary encoding of JSON value v (as
// decoded by decodeJSON) under schema n.
func encodeJSONValue(dst []byte, n *node, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, invalid("nested too deeply")
	}
	switch n.kind {
	case kindNull:
		if v != nil {
			return nil, invalid("want null, got %s", got(v))
		}
		return dst, nil
	case kindBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, invalid("want boolean, got %s", got(v))
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case kindInt, kindLong:
		i, err := jsonInteger(n, v)
		if err != nil {
			return nil, err
		}
		return appendLong(dst, i), nil
	case kindFloat, kindDouble:
		bits := 64
		if n.kind == kindFloat {
			bits = 32
		}
		f, err := jsonFloat(n, v, bits)
		if err != nil {
			return nil, err
		}
		if bits == 32 {
			return appendFloat32(dst, float32(f)), nil
		}
		return appendFloat64(dst, f), nil
	case kindString:
		s, ok := v.(string)
		if !ok {
			return nil, invalid("want %s, got %s", n.describe(), got(v))
		}
		if n.logical == logicalUUID && !validUUID(s) {
			return nil, invalid("want uuid (8-4-4-4-12 hex digits), got %s", got(v))
		}
		return appendString(dst, s), nil
	case kindBytes, kindFixed:
		return encodeJSONBytes(dst, n, v)
	case kindEnum:
		s, ok := v.(string)
		if !ok {
			return nil, invalid("want %s symbol, got %s", n.name, got(v))
		}
		i, ok := n.symbolIndex[s]
		if !ok {
			return nil, invalid("want one of %s, got %s", strings.Join(n.symbols, ", "), got(v))
		}
		return appendLong(dst, int64(i)), nil
	case kindArray:
		items, ok := v.([]any)
		if !ok {
			return nil, invalid("want array, got %s", got(v))
		}
		if len(items) > 0 {
			dst = appendLong(dst, int64(len(items)))
			for i, it := range items {
				var err error
				if dst, err = encodeJSONValue(dst, n.items, it, depth+1); err != nil {
					return nil, at(err, "["+strconv.Itoa(i)+"]")
				}
			}
		}
		return append(dst, 0), nil
	case kindMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("want object (map), got %s", got(v))
		}
		if len(m) > 0 {
			dst = appendLong(dst, int64(len(m)))
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				dst = appendString(dst, k)
				var err error
				if dst, err = encodeJSONValue(dst, n.items, m[k], depth+1); err != nil {
					return nil, at(err, "["+strconv.Quote(k)+"]")
				}
			}
		}
		return append(dst, 0), nil
	case kindRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("want object (%s), got %s", n.name, got(v))
		}
		if k, ok := unknownKey(n, m); ok {
			return nil, at(invalid("unknown field (%s has no such field)", n.name), "."+k)
		}
		for _, f := range n.fields {
			fv, ok := m[f.name]
			if !ok {
				if !f.hasDefault {
					return nil, at(invalid("missing required field"), "."+f.name)
				}
				dst = append(dst, f.defaultBin...)
				continue
			}
			var err error
			if dst, err = encodeJSONValue(dst, f.typ, fv, depth+1); err != nil {
				return nil, at(err, "."+f.name)
			}
		}
		return dst, nil
	case kindUnion:
		return encodeJSONUnion(dst, n, v, depth)
	}
	return nil, invalid("unsupported schema %s", n.describe())
}

// unknownKey returns the smallest key of m that is not a field of record n
// (the smallest, so that the error does not depend on map order).
func unknownKey(n *node, m map[string]any) (key string, found bool) {
	for k := range m {
		if _, ok := n.fieldIndex[k]; !ok && (!found || k < key) {
			key, found = k, true
		}
	}
	return key, found
}

func encodeJSONUnion(dst []byte, n *node, v any, depth int) ([]byte, error) {
	if v == nil {
		if n.nullIndex < 0 {
			return nil, invalid("want one of %s, got null", unionNames(n))
		}
		return appendLong(dst, int64(n.nullIndex)), nil
	}
	if n.optional >= 0 {
		dst = appendLong(dst, int64(n.optional))
		return encodeJSONValue(dst, n.branches[n.optional], v, depth+1)
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, invalid(`want null or {"<type>": value} with <type> one of %s, got %s`, unionNames(n), got(v))
	}
	var name string
	var bv any
	for name, bv = range m { // the one entry
	}
	i := n.branchByName(name)
	if i < 0 || n.branches[i].kind == kindNull {
		return nil, invalid("union has no branch %q (branches: %s)", name, unionNames(n))
	}
	dst = appendLong(dst, int64(i))
	return encodeJSONValue(dst, n.branches[i], bv, depth+1)
}

// jsonInteger reads an int or long: a JSON integer in range, or for the
// timestamp logical types an RFC 3339 string, for date "YYYY-MM-DD".
func jsonInteger(n *node, v any) (int64, error) {
	if s, ok := v.(string); ok {
		switch n.logical {
		case logicalTimestampMillis, logicalTimestampMicros:
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return 0, invalid("want %s as RFC 3339 string or integer, got %s", n.describe(), got(v))
			}
			if t.Before(minTime) || t.After(maxTime) {
				return 0, invalid("timestamp %s out of range (years 0000 to 9999 in UTC)", s)
			}
			if n.logical == logicalTimestampMicros {
				return t.UnixMicro(), nil
			}
			return t.UnixMilli(), nil
		case logicalDate:
			t, err := time.Parse(time.DateOnly, s)
			if err != nil {
				return 0, invalid(`want date as "YYYY-MM-DD" or integer days, got %s`, got(v))
			}
			return t.Unix() / 86400, nil
		}
	}
	num, ok := v.(json.Number)
	if !ok {
		return 0, invalid("want %s, got %s", n.describe(), got(v))
	}
	bits := 64
	if n.kind == kindInt {
		bits = 32
	}
	i, err := strconv.ParseInt(num.String(), 10, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, invalid("number %s out of range for %s", num, n.kind)
		}
		return 0, invalid("want %s (an integer), got %s", n.describe(), got(v))
	}
	// Integers for dates and timestamps must be writable as RFC 3339 again.
	var lo, hi int64
	switch n.logical {
	case logicalTimestampMillis:
		lo, hi = minTime.UnixMilli(), maxTime.UnixMilli()
	case logicalTimestampMicros:
		lo, hi = minTime.UnixMicro(), maxTime.UnixMicro()
	case logicalDate:
		lo, hi = minTime.Unix()/86400, maxTime.Unix()/86400
	default:
		return i, nil
	}
	if i < lo || i > hi {
		return 0, invalid("%s %d out of range (years 0000 to 9999)", n.describe(), i)
	}
	return i, nil
}

// The range of timestamps and dates EncodeJSON accepts: what RFC 3339 can
// express.
var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
)

// jsonFloat reads a float or double: a JSON number, or one of the strings
// "NaN", "Infinity", "-Infinity".
func jsonFloat(n *node, v any, bits int) (float64, error) {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(v.String(), bits)
		if err != nil {
			return 0, invalid("number %s out of range for %s", v, n.kind)
		}
		return f, nil
	case string:
		switch v {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, invalid("want %s, got %s", n.kind, got(v))
}

// encodeJSONBytes reads bytes or fixed: base64 (standard alphabet, padded),
// or a decimal string for the decimal logical type.
func encodeJSONBytes(dst []byte, n *node, v any) ([]byte, error) {
	var raw []byte
	if n.logical == logicalDecimal {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		default:
			return nil, invalid("want %s as a decimal string, got %s", n.describe(), got(v))
		}
		unscaled, err := parseDecimal(s, n.precision, n.scale)
		if err != nil {
			return nil, invalid("want %s: %v, got %s", n.describe(), err, got(v))
		}
		raw = twosComplement(unscaled, n.size)
		if n.kind == kindFixed && raw == nil {
			return nil, invalid("decimal %s does not fit in %d bytes", s, n.size)
		}
	} else {
		s, ok := v.(string)
		if !ok {
			return nil, invalid("want %s as base64 string, got %s", n.describe(), got(v))
		}
		var err error
		raw, err = base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, invalid("want %s as base64 string, got %s (%v)", n.describe(), got(v), err)
		}
	}
	if n.kind == kindFixed {
		if len(raw) != n.size {
			return nil, invalid("want %d bytes for %s, got %d", n.size, n.describe(), len(raw))
		}
		return append(dst, raw...), nil
	}
	return appendBytes(dst, raw), nil
}

// parseDecimal returns the unscaled value of s, a decimal number such as
// "-12.5" or "1.25e3", at the given scale. It rejects values that need
// rounding or more than precision digits, and never builds a number larger
// than precision digits (so "1e999999999" is cheap to refuse).
func parseDecimal(s string, precision, scale int) (*big.Int, error) {
	notDecimal := errors.New("not a decimal number")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	mant, exp, hasExp := strings.Cut(s, "e")
	if !hasExp {
		mant, exp, hasExp = strings.Cut(s, "E")
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return nil, notDecimal
	}
	shift := scale - len(frac) // power of ten to multiply digits by
	if hasExp {
		e, err := strconv.Atoi(exp)
		if err != nil || e < -10000 || e > 10000 {
			return nil, notDecimal
		}
		shift += e
	}
	digits = strings.TrimLeft(digits, "0")
	if shift < 0 {
		cut := min(-shift, len(digits))
		if strings.Trim(digits[len(digits)-cut:], "0") != "" {
			return nil, fmt.Errorf("more than %d decimal places", scale)
		}
		digits, shift = digits[:len(digits)-cut], 0
	}
	if digits == "" {
		return new(big.Int), nil
	}
	if len(digits)+shift > precision {
		return nil, fmt.Errorf("more than %d digits", precision)
	}
	u, _ := new(big.Int).SetString(digits+strings.Repeat("0", shift), 10)
	if neg {
		u.Neg(u)
	}
	return u, nil
}

// twosComplement returns the big-endian two's-complement encoding of n:
// minimal length when size is 0, exactly size bytes otherwise (nil if it
// does not fit).
func twosComplement(n *big.Int, size int) []byte {
	var b []byte
	if n.Sign() >= 0 {
		b = n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
	} else {
		// 2^(8k) + n for the smallest k whose top bit is then set.
		k := new(big.Int).Not(n).BitLen()/8 + 1
		m := new(big.Int).Lsh(big.NewInt(1), uint(8*k))
		b = m.Add(m, n).Bytes()
	}
	if size == 0 || len(b) == size {
		return b
	}
	if len(b) > size {
		return nil
	}
	pad := byte(0)
	if b[0]&0x80 != 0 {
		pad = 0xff
	}
	out := make([]byte, size)
	for i := range size - len(b) {
		out[i] = pad
	}
	copy(out[size-len(b):], b)
	return out
}
