package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CanonicalForm returns the Parsing Canonical Form of an Avro schema, as
// defined by the Avro specification: primitives in their simple form,
// names replaced by full names, only the attributes type, name, fields,
// symbols, items, values and size kept (so doc, aliases, defaults, order and
// logicalType are dropped: a timestamp-millis long is just "long"), those
// attributes in that order, integers without leading zeros and no
// whitespace.
//
// It works on the schema JSON itself, not on a parsed hamba schema, because
// hamba's canonical form keeps logicalType and so yields fingerprints other
// Avro implementations do not produce.
func CanonicalForm(schemaJSON []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(schemaJSON))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("codec: canonical form: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("codec: canonical form: trailing data after schema")
	}
	c := canonicalizer{defined: map[string]bool{}}
	if err := c.write(v, ""); err != nil {
		return nil, fmt.Errorf("codec: canonical form: %w", err)
	}
	return c.buf, nil
}

// Fingerprint64 returns the CRC-64-AVRO (64-bit Rabin) fingerprint of a
// schema's canonical form, the fingerprint used by Single Object Encoding.
func Fingerprint64(canonical []byte) uint64 {
	fp := rabinEmpty
	for _, b := range canonical {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^b]
	}
	return fp
}

// SchemaFingerprint returns the CRC-64-AVRO fingerprint of the Parsing
// Canonical Form of schemaJSON.
func SchemaFingerprint(schemaJSON []byte) (uint64, error) {
	pcf, err := CanonicalForm(schemaJSON)
	if err != nil {
		return 0, err
	}
	return Fingerprint64(pcf), nil
}

const rabinEmpty uint64 = 0xc15d213aa4d7a795

// rabinTable is computed once, when the package is initialised.
var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

var primitiveNames = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

type canonicalizer struct {
	buf     []byte
	defined map[string]bool // full names of named types seen so far
}

// write appends the canonical form of schema v, read in namespace ns.
func (c *canonicalizer) write(v any, ns string) error {
	switch s := v.(type) {
	case string:
		return c.writeRef(s, ns)
	case []any:
		c.buf = append(c.buf, '[')
		for i, b := range s {
			if i > 0 {
				c.buf = append(c.buf, ',')
			}
			if _, ok := b.([]any); ok {
				return errors.New("union directly inside a union")
			}
			if err := c.write(b, ns); err != nil {
				return err
			}
		}
		c.buf = append(c.buf, ']')
		return nil
	case map[string]any:
		return c.writeObject(s, ns)
	default:
		return fmt.Errorf("schema must be a string, array or object, got %s", jsonKind(v))
	}
}

// writeRef handles a type given as a string: a primitive or a reference to
// a named type defined earlier.
func (c *canonicalizer) writeRef(s, ns string) error {
	if primitiveNames[s] {
		c.buf = appendQuotedName(c.buf, s)
		return nil
	}
	full, err := c.lookup(s, ns)
	if err != nil {
		return err
	}
	c.buf = appendQuotedName(c.buf, full)
	return nil
}

// lookup resolves a reference to a named type as the specification says
// (and as hamba and fastavro do): a dotted name is a full name, any other
// name is in the enclosing namespace.
func (c *canonicalizer) lookup(s, ns string) (string, error) {
	full := s
	if ns != "" && !strings.Contains(s, ".") {
		full = ns + "." + s
	}
	if !c.defined[full] {
		return "", fmt.Errorf("unknown type %q", full)
	}
	return full, nil
}

func (c *canonicalizer) writeObject(m map[string]any, ns string) error {
	t, ok := m["type"]
	if !ok {
		return errors.New(`object without "type"`)
	}
	if u, ok := t.([]any); ok { // tolerated by hamba: {"type": [...]}
		return c.write(u, ns)
	}
	typ, ok := t.(string)
	if !ok {
		return fmt.Errorf(`"type" must be a string, got %s`, jsonKind(t))
	}
	switch typ {
	case "record", "error", "enum", "fixed":
		return c.writeNamed(typ, m, ns)
	case "array":
		items, ok := m["items"]
		if !ok {
			return errors.New(`array without "items"`)
		}
		c.buf = append(c.buf, `{"type":"array","items":`...)
		if err := c.write(items, ns); err != nil {
			return err
		}
		c.buf = append(c.buf, '}')
		return nil
	case "map":
		values, ok := m["values"]
		if !ok {
			return errors.New(`map without "values"`)
		}
		c.buf = append(c.buf, `{"type":"map","values":`...)
		if err := c.write(values, ns); err != nil {
			return err
		}
		c.buf = append(c.buf, '}')
		return nil
	default:
		// A primitive (logicalType and any other attribute dropped) or a
		// named type referenced in object form.
		return c.writeRef(typ, ns)
	}
}

func (c *canonicalizer) writeNamed(typ string, m map[string]any, ns string) error {
	name, ok := m["name"].(string)
	if !ok {
		return fmt.Errorf(`%s without a string "name"`, typ)
	}
	if v, ok := m["namespace"]; ok {
		s, ok := v.(string)
		if !ok && v != nil {
			return fmt.Errorf(`%s %q: "namespace" must be a string`, typ, name)
		}
		ns = s
	}
	full := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ns = name[:i]
	} else if ns != "" {
		full = ns + "." + name
	}
	if err := validFullName(full); err != nil {
		return err
	}
	if c.defined[full] {
		return fmt.Errorf("type %q defined twice", full)
	}
	c.defined[full] = true

	c.buf = append(c.buf, `{"name":`...)
	c.buf = appendQuotedName(c.buf, full)
	switch typ {
	case "enum":
		syms, ok := m["symbols"].([]any)
		if !ok {
			return fmt.Errorf(`enum %q without "symbols" array`, full)
		}
		c.buf = append(c.buf, `,"type":"enum","symbols":[`...)
		for i, s := range syms {
			sym, ok := s.(string)
			if !ok || !validName(sym) {
				return fmt.Errorf("enum %q: invalid symbol %v", full, s)
			}
			if i > 0 {
				c.buf = append(c.buf, ',')
			}
			c.buf = appendQuotedName(c.buf, sym)
		}
		c.buf = append(c.buf, "]}"...)
	case "fixed":
		n, ok := m["size"].(json.Number)
		if !ok {
			return fmt.Errorf(`fixed %q without numeric "size"`, full)
		}
		size, err := strconv.ParseUint(n.String(), 10, 31)
		if err != nil {
			return fmt.Errorf("fixed %q: invalid size %s", full, n)
		}
		c.buf = append(c.buf, `,"type":"fixed","size":`...)
		c.buf = strconv.AppendUint(c.buf, size, 10)
		c.buf = append(c.buf, '}')
	default: // record, error
		fields, ok := m["fields"].([]any)
		if !ok {
			return fmt.Errorf(`record %q without "fields" array`, full)
		}
		c.buf = append(c.buf, `,"type":"record","fields":[`...)
		for i, f := range fields {
			fm, ok := f.(map[string]any)
			if !ok {
				return fmt.Errorf("record %q: field %d is not an object", full, i)
			}
			fname, ok := fm["name"].(string)
			if !ok || !validName(fname) {
				return fmt.Errorf("record %q: field %d has an invalid name", full, i)
			}
			ft, ok := fm["type"]
			if !ok {
				return fmt.Errorf("record %q: field %q without type", full, fname)
			}
			if i > 0 {
				c.buf = append(c.buf, ',')
			}
			c.buf = append(c.buf, `{"name":`...)
			c.buf = appendQuotedName(c.buf, fname)
			c.buf = append(c.buf, `,"type":`...)
			if err := c.write(ft, ns); err != nil {
				return fmt.Errorf("record %q field %q: %w", full, fname, err)
			}
			c.buf = append(c.buf, '}')
		}
		c.buf = append(c.buf, "]}"...)
	}
	return nil
}

// appendQuotedName quotes an already validated name, symbol or primitive:
// they contain only [A-Za-z0-9_.], so no escaping is needed.
func appendQuotedName(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// validName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '_', 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z':
		case '0' <= ch && ch <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func validFullName(full string) error {
	for part := range strings.SplitSeq(full, ".") {
		if !validName(part) {
			return fmt.Errorf("invalid name %q", full)
		}
	}
	if primitiveNames[full] {
		return fmt.Errorf("name %q is a primitive type", full)
	}
	return nil
}

// jsonKind names the JSON kind of a value decoded with UseNumber.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
