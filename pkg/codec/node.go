package codec

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/hamba/avro/v2"
)

// node is the package's own, flattened view of a parsed hamba schema: what
// the JSON encoder, the JSON renderer and the skipper need, looked up once
// instead of through interface calls and type switches per value.
type node struct {
	kind    kind
	logical logical
	// name is the union branch name: the full name of a named type, the
	// type name ("long", "array", ...) otherwise.
	name    string
	aliases []string // named types: full-name aliases

	precision, scale int // decimal
	size             int // fixed

	fields     []*fieldNode
	fieldIndex map[string]int

	symbols     []string
	symbolIndex map[string]int
	enumDefault int // index into symbols, -1 without default

	items *node // array items, map values

	branches  []*node
	nullIndex int // union: index of the "null" branch, -1 if none
	// optional is, for a union of exactly null and one other type (either
	// order), the index of the other type; -1 otherwise. Such unions map to
	// JSON as null or the bare value.
	optional int

	minSize int // lower bound of the encoded size in bytes
}

type kind uint8

const (
	kindNull kind = iota
	kindBoolean
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindBytes
	kindString
	kindRecord
	kindEnum
	kindArray
	kindMap
	kindUnion
	kindFixed
)

var kindNames = [...]string{
	kindNull: "null", kindBoolean: "boolean", kindInt: "int", kindLong: "long",
	kindFloat: "float", kindDouble: "double", kindBytes: "bytes", kindString: "string",
	kindRecord: "record", kindEnum: "enum", kindArray: "array", kindMap: "map",
	kindUnion: "union", kindFixed: "fixed",
}

func (k kind) String() string { return kindNames[k] }

type logical uint8

const (
	logicalNone logical = iota
	logicalTimestampMillis
	logicalTimestampMicros
	logicalDate
	logicalUUID
	logicalDecimal
)

type fieldNode struct {
	name       string
	aliases    []string
	typ        *node
	hasDefault bool
	defaultBin []byte // Avro binary encoding of the default
}

// describe names the node in error messages: "long", "timestamp-millis",
// "enum hookstream.events.payment.PaymentMethod".
func (n *node) describe() string {
	switch n.logical {
	case logicalTimestampMillis:
		return "timestamp-millis"
	case logicalTimestampMicros:
		return "timestamp-micros"
	case logicalDate:
		return "date"
	case logicalUUID:
		return "uuid"
	case logicalDecimal:
		return fmt.Sprintf("decimal(%d,%d)", n.precision, n.scale)
	}
	switch n.kind {
	case kindRecord, kindEnum, kindFixed:
		return n.kind.String() + " " + n.name
	}
	return n.kind.String()
}

// buildNode converts a parsed hamba schema. Named types are shared through
// named, so recursive schemas become cyclic graphs.
func buildNode(s avro.Schema, named map[string]*node) (*node, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if ns, ok := s.(avro.NamedSchema); ok {
		if n, ok := named[ns.FullName()]; ok {
			return n, nil
		}
	}
	n := &node{enumDefault: -1, nullIndex: -1, optional: -1}
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		switch l := ls.Logical(); l.Type() {
		case avro.TimestampMillis:
			n.logical = logicalTimestampMillis
		case avro.TimestampMicros:
			n.logical = logicalTimestampMicros
		case avro.Date:
			n.logical = logicalDate
		case avro.UUID:
			n.logical = logicalUUID
		case avro.Decimal:
			if d, ok := l.(*avro.DecimalLogicalSchema); ok {
				n.logical = logicalDecimal
				n.precision, n.scale = d.Precision(), d.Scale()
			}
		}
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		n.kind, n.name = kindNull, "null"
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Boolean:
			n.kind, n.minSize = kindBoolean, 1
		case avro.Int:
			n.kind, n.minSize = kindInt, 1
		case avro.Long:
			n.kind, n.minSize = kindLong, 1
		case avro.Float:
			n.kind, n.minSize = kindFloat, 4
		case avro.Double:
			n.kind, n.minSize = kindDouble, 8
		case avro.Bytes:
			n.kind, n.minSize = kindBytes, 1
		case avro.String:
			n.kind, n.minSize = kindString, 1
		default:
			return nil, fmt.Errorf("unsupported primitive %q", s.Type())
		}
		n.name = n.kind.String()
	case *avro.RecordSchema:
		n.kind, n.name, n.aliases = kindRecord, s.FullName(), s.Aliases()
		named[n.name] = n
		n.fieldIndex = make(map[string]int, len(s.Fields()))
		for i, f := range s.Fields() {
			ft, err := buildNode(f.Type(), named)
			if err != nil {
				return nil, err
			}
			fn := &fieldNode{name: f.Name(), aliases: f.Aliases(), typ: ft, hasDefault: f.HasDefault()}
			if fn.hasDefault {
				fn.defaultBin, err = encodeDefault(nil, ft, f.Default())
				if err != nil {
					return nil, fmt.Errorf("%s.%s: default: %w", n.name, f.Name(), err)
				}
			}
			n.fields = append(n.fields, fn)
			n.fieldIndex[f.Name()] = i
			n.minSize += ft.minSize
		}
	case *avro.EnumSchema:
		n.kind, n.name, n.aliases, n.minSize = kindEnum, s.FullName(), s.Aliases(), 1
		named[n.name] = n
		n.symbols = s.Symbols()
		n.symbolIndex = make(map[string]int, len(n.symbols))
		for i, sym := range n.symbols {
			n.symbolIndex[sym] = i
		}
		if s.HasDefault() {
			n.enumDefault = n.symbolIndex[s.Default()]
		}
	case *avro.FixedSchema:
		n.kind, n.name, n.aliases = kindFixed, s.FullName(), s.Aliases()
		n.size, n.minSize = s.Size(), s.Size()
		named[n.name] = n
	case *avro.ArraySchema:
		n.kind, n.name, n.minSize = kindArray, "array", 1
		it, err := buildNode(s.Items(), named)
		if err != nil {
			return nil, err
		}
		n.items = it
	case *avro.MapSchema:
		n.kind, n.name, n.minSize = kindMap, "map", 1
		it, err := buildNode(s.Values(), named)
		if err != nil {
			return nil, err
		}
		n.items = it
	case *avro.UnionSchema:
		n.kind, n.name, n.minSize = kindUnion, "union", 1
		for i, b := range s.Types() {
			bn, err := buildNode(b, named)
			if err != nil {
				return nil, err
			}
			if bn.kind == kindNull {
				n.nullIndex = i
			}
			n.branches = append(n.branches, bn)
		}
		if len(n.branches) == 2 && n.nullIndex >= 0 {
			n.optional = 1 - n.nullIndex
		}
	default:
		return nil, fmt.Errorf("unsupported schema %T", s)
	}
	return n, nil
}

// branchByName finds a union branch by its JSON name: a primitive or
// complex type name, or the full or short name of a named type.
func (n *node) branchByName(name string) int {
	for i, b := range n.branches {
		if b.name == name {
			return i
		}
	}
	found := -1
	for i, b := range n.branches {
		switch b.kind {
		case kindRecord, kindEnum, kindFixed:
			if shortName(b.name) == name {
				if found >= 0 {
					return -1 // ambiguous
				}
				found = i
			}
		}
	}
	return found
}

func shortName(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '.' {
			return full[i+1:]
		}
	}
	return full
}

// encodeDefault appends the Avro binary encoding of a field default as hamba
// hands it over (already checked against the field type by hamba's parser):
// nil, bool, int, int64, float32, float64, string, []byte, [N]byte, []any
// and map[string]any. A union default belongs to the first branch.
func encodeDefault(dst []byte, n *node, v any) ([]byte, error) {
	bad := func() ([]byte, error) {
		return nil, fmt.Errorf("default %v (%T) does not fit %s", v, v, n.describe())
	}
	switch n.kind {
	case kindNull:
		if v != nil {
			return bad()
		}
		return dst, nil
	case kindBoolean:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case kindInt, kindLong:
		switch x := v.(type) {
		case int:
			return appendLong(dst, int64(x)), nil
		case int64:
			return appendLong(dst, x), nil
		case int32:
			return appendLong(dst, int64(x)), nil
		}
		return bad()
	case kindFloat:
		switch x := v.(type) {
		case float32:
			return appendFloat32(dst, x), nil
		case float64:
			return appendFloat32(dst, float32(x)), nil
		}
		return bad()
	case kindDouble:
		x, ok := v.(float64)
		if !ok {
			return bad()
		}
		return appendFloat64(dst, x), nil
	case kindString:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		dst = appendLong(dst, int64(len(s)))
		return append(dst, s...), nil
	case kindBytes:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		dst = appendLong(dst, int64(len(b)))
		return append(dst, b...), nil
	case kindFixed:
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Array || rv.Len() != n.size || rv.Type().Elem().Kind() != reflect.Uint8 {
			return bad()
		}
		for i := range n.size {
			dst = append(dst, byte(rv.Index(i).Uint()))
		}
		return dst, nil
	case kindEnum:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		i, ok := n.symbolIndex[s]
		if !ok {
			return bad()
		}
		return appendLong(dst, int64(i)), nil
	case kindArray:
		items, ok := v.([]any)
		if !ok {
			return bad()
		}
		if len(items) > 0 {
			dst = appendLong(dst, int64(len(items)))
			for _, it := range items {
				var err error
				if dst, err = encodeDefault(dst, n.items, it); err != nil {
					return nil, err
				}
			}
		}
		return append(dst, 0), nil
	case kindMap:
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		if len(m) > 0 {
			dst = appendLong(dst, int64(len(m)))
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				dst = appendLong(dst, int64(len(k)))
				dst = append(dst, k...)
				var err error
				if dst, err = encodeDefault(dst, n.items, m[k]); err != nil {
					return nil, err
				}
			}
		}
		return append(dst, 0), nil
	case kindRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		for _, f := range n.fields {
			fv, ok := m[f.name]
			if !ok {
				if !f.hasDefault {
					return nil, fmt.Errorf("default for %s lacks field %q", n.name, f.name)
				}
				dst = append(dst, f.defaultBin...)
				continue
			}
			var err error
			if dst, err = encodeDefault(dst, f.typ, fv); err != nil {
				return nil, err
			}
		}
		return dst, nil
	case kindUnion:
		dst = append(dst, 0) // branch 0, zig-zag encoded
		return encodeDefault(dst, n.branches[0], v)
	}
	return bad()
}
