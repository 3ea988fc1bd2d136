package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Avro binary primitives, written and read without reflection.

var (
	errTruncated = errors.New("truncated data")
	errVarint    = errors.New("malformed varint")
	errTooDeep   = errors.New("data nested too deeply")
)

// maxDepth bounds the nesting of records, arrays, maps and unions the
// decoders follow, so that recursive schemas and hostile input cannot
// exhaust the stack.
const maxDepth = 256

// maxEmptyItems bounds the number of array items or map entries whose
// encoding can take zero bytes (null, empty records), so that a short input
// cannot claim billions of them.
const maxEmptyItems = 1 << 16

func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func appendFloat32(dst []byte, f float32) []byte {
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
}

func appendFloat64(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendBytes(dst, b []byte) []byte {
	dst = appendLong(dst, int64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = appendLong(dst, int64(len(s)))
	return append(dst, s...)
}

// reader reads Avro binary from a byte slice.
type reader struct {
	b     []byte
	pos   int
	depth int
}

func (r *reader) long() (int64, error) {
	var u uint64
	for shift := uint(0); shift < 70; shift += 7 {
		if r.pos >= len(r.b) {
			return 0, errTruncated
		}
		c := r.b[r.pos]
		r.pos++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, errVarint
}

func (r *reader) int() (int32, error) {
	v, err := r.long()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("int %d out of range", v)
	}
	return int32(v), nil
}

func (r *reader) boolean() (bool, error) {
	if r.pos >= len(r.b) {
		return false, errTruncated
	}
	c := r.b[r.pos]
	r.pos++
	switch c {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("invalid boolean byte %#x", c)
}

func (r *reader) float32() (float32, error) {
	if len(r.b)-r.pos < 4 {
		return 0, errTruncated
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(r.b[r.pos:]))
	r.pos += 4
	return v, nil
}

func (r *reader) float64() (float64, error) {
	if len(r.b)-r.pos < 8 {
		return 0, errTruncated
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.pos:]))
	r.pos += 8
	return v, nil
}

// bytes returns the next length-prefixed bytes, aliasing the input.
func (r *reader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("negative length %d", n)
	}
	if n > int64(len(r.b)-r.pos) {
		return nil, errTruncated
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *reader) fixed(size int) ([]byte, error) {
	if len(r.b)-r.pos < size {
		return nil, errTruncated
	}
	b := r.b[r.pos : r.pos+size]
	r.pos += size
	return b, nil
}

// blockCount reads the item count of the next array or map block. A
// negative count is followed by the block's size in bytes, which is read
// and ignored. The count is checked against what the remaining input can
// hold given the minimum encoded size of one item, and against total, the
// running number of items of this array or map.
func (r *reader) blockCount(itemMin int, total *int) (int, error) {
	n, err := r.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, errors.New("invalid block count")
		}
		n = -n
		if _, err := r.long(); err != nil {
			return 0, err
		}
	}
	if itemMin > 0 {
		if n > int64((len(r.b)-r.pos)/itemMin) {
			return 0, errTruncated
		}
	} else if n > int64(maxEmptyItems-*total) {
		return 0, fmt.Errorf("more than %d empty items", maxEmptyItems)
	}
	*total += int(n)
	return int(n), nil
}

func (r *reader) enter() error {
	r.depth++
	if r.depth > maxDepth {
		return errTooDeep
	}
	return nil
}

func (r *reader) leave() { r.depth-- }

// skip advances past one value of writer schema n. When checkUUID is set,
// uuid strings are also checked for the canonical textual form.
func (r *reader) skip(n *node, checkUUID bool) error {
	switch n.kind {
	case kindNull:
		return nil
	case kindBoolean:
		_, err := r.boolean()
		return err
	case kindInt:
		_, err := r.int()
		return err
	case kindLong:
		_, err := r.long()
		return err
	case kindFloat:
		_, err := r.fixed(4)
		return err
	case kindDouble:
		_, err := r.fixed(8)
		return err
	case kindBytes, kindString:
		b, err := r.bytes()
		if err == nil && checkUUID && n.logical == logicalUUID && !validUUID(b) {
			err = fmt.Errorf("invalid uuid %q", b)
		}
		return err
	case kindFixed:
		_, err := r.fixed(n.size)
		return err
	case kindEnum:
		i, err := r.long()
		if err == nil && (i < 0 || i >= int64(len(n.symbols))) {
			err = fmt.Errorf("enum index %d out of range", i)
		}
		return err
	}
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	switch n.kind {
	case kindRecord:
		for _, f := range n.fields {
			if err := r.skip(f.typ, checkUUID); err != nil {
				return err
			}
		}
		return nil
	case kindUnion:
		i, err := r.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return fmt.Errorf("union index %d out of range", i)
		}
		return r.skip(n.branches[i], checkUUID)
	case kindArray, kindMap:
		total := 0
		itemMin := n.items.minSize
		if n.kind == kindMap {
			itemMin++ // the key's length
		}
		for {
			cnt, err := r.blockCount(itemMin, &total)
			if err != nil {
				return err
			}
			if cnt == 0 {
				return nil
			}
			for range cnt {
				if n.kind == kindMap {
					if _, err := r.bytes(); err != nil {
						return err
					}
				}
				if err := r.skip(n.items, checkUUID); err != nil {
					return err
				}
			}
		}
	}
	return fmt.Errorf("cannot skip %s", n.kind)
}

// validUUID reports whether b is a UUID in its 8-4-4-4-12 hex form.
func validUUID[T string | []byte](b T) bool {
	if len(b) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := b[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
