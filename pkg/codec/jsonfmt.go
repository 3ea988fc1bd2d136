package codec

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Appenders for JSON scalars. They write straight into a byte slice and
// always produce valid JSON, whatever the input bytes.

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal, as the JSON of event
// data writes strings: invalid UTF-8 becomes U+FFFD, control characters and
// U+2028/U+2029 are escaped, HTML characters are left alone.
func AppendJSONString(dst []byte, s string) []byte {
	// appendJSONString only reads s.
	return appendJSONString(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, control characters and U+2028/U+2029 are escaped; HTML characters
// are left alone (the output is an HTTP body, not a script).
func appendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look (printable ASCII
		// other than quote and backslash): most of a payload's text.
		if i+8 <= len(s) && plainASCII8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// SWAR masks: a byte's high bit, and each byte set to 0x01.
const (
	highBits = 0x8080808080808080
	lowBits  = 0x0101010101010101
)

// plainASCII8 reports whether none of the eight bytes of x is 0x80 or above,
// below 0x20, '"' or '\\'. (v - lowBits) &^ v & highBits is non-zero exactly
// when some byte of v is zero; with 0x20*lowBits, when some byte is below
// 0x20 (of bytes under 0x80, which the first test leaves).
func plainASCII8(x uint64) bool {
	const quote, backslash = '"' * lowBits, '\\' * lowBits
	q, b := x^quote, x^backslash
	special := x&highBits |
		(x-0x20*lowBits)&^x&highBits |
		(q-lowBits)&^q&highBits |
		(b-lowBits)&^b&highBits
	return special == 0
}

// appendJSONFloat formats like encoding/json (shortest representation that
// round-trips, exponent only for very small or large magnitudes). NaN and
// infinities, which JSON numbers cannot express, become the strings "NaN",
// "Infinity" and "-Infinity".
func appendJSONFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendTimestamp writes epoch milliseconds (or microseconds) as an RFC 3339
// string in UTC with exactly 3 (or 6) fractional digits.
func appendTimestamp(dst []byte, v int64, micros bool) []byte {
	unit, width := int64(1000), 3
	if micros {
		unit, width = 1_000_000, 6
	}
	sec := floorDiv(v, unit)
	frac := int(v - sec*unit)
	days := floorDiv(sec, 86400)
	y, m, d := civilDate(days)
	if y < 0 || y > 9999 {
		// Not expressible in RFC 3339; written the way package time does.
		if micros {
			return time.UnixMicro(v).UTC().AppendFormat(dst, `"2006-01-02T15:04:05.000000Z07:00"`)
		}
		return time.UnixMilli(v).UTC().AppendFormat(dst, `"2006-01-02T15:04:05.000Z07:00"`)
	}
	rem := int(sec - days*86400)
	dst = append(dst, '"')
	dst = appendDigits(dst, int(y), 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, m, 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, rem/3600, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, rem/60%60, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, rem%60, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, frac, width)
	return append(dst, 'Z', '"')
}

// appendDate writes days since the Unix epoch as "YYYY-MM-DD".
func appendDate(dst []byte, days int64) []byte {
	y, m, d := civilDate(days)
	if y < 0 || y > 9999 {
		return time.Unix(days*86400, 0).UTC().AppendFormat(dst, `"2006-01-02"`)
	}
	dst = append(dst, '"')
	dst = appendDigits(dst, int(y), 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, m, 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, d, 2)
	return append(dst, '"')
}

// appendDigits writes 0 <= v < 10^width with exactly width digits.
func appendDigits(dst []byte, v, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:width]...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// civilDate converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civilDate(days int64) (y int64, m, d int) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100) // [0, 365]
	mp := (5*doy + 2) / 153                  // [0, 11]
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendDecimal writes a decimal's big-endian two's-complement unscaled
// value as a JSON string such as "-12.50".
func appendDecimal(dst, b []byte, scale int) []byte {
	dst = append(dst, '"')
	var digits []byte
	var scratch [24]byte
	if len(b) <= 8 {
		var v int64
		for _, c := range b {
			v = v<<8 | int64(c)
		}
		if len(b) > 0 && len(b) < 8 && b[0]&0x80 != 0 {
			v -= 1 << (8 * len(b)) // sign extension
		}
		if v < 0 {
			dst = append(dst, '-')
		}
		u := uint64(v)
		if v < 0 {
			u = -u
		}
		digits = strconv.AppendUint(scratch[:0], u, 10)
	} else {
		n := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
			dst = append(dst, '-')
			n.Neg(n)
		}
		digits = n.Append(scratch[:0], 10)
	}
	if scale > 0 {
		if len(digits) <= scale {
			dst = append(dst, '0', '.')
			for range scale - len(digits) {
				dst = append(dst, '0')
			}
			dst = append(dst, digits...)
		} else {
			dst = append(dst, digits[:len(digits)-scale]...)
			dst = append(dst, '.')
			dst = append(dst, digits[len(digits)-scale:]...)
		}
	} else {
		dst = append(dst, digits...)
	}
	return append(dst, '"')
}
