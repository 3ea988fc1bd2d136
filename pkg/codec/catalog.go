package codec

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/hookstream/hookstream/schemas"
)

var (
	// ErrUnknownEventType reports an event type the catalog has no schema for.
	ErrUnknownEventType = errors.New("codec: unknown event type")

	// ErrTypeMismatch reports event data whose schema belongs to another
	// event type than the one it is filed under.
	ErrTypeMismatch = errors.New("codec: data schema belongs to another event type")
)

// EventSchema is one version of one event type's schema.
type EventSchema struct {
	Type        string      // event type, e.g. "payment.succeeded"
	Version     int         // N of events/<type>/vN.avsc
	Schema      avro.Schema // parsed by hamba
	Fingerprint uint64      // CRC-64-AVRO of the Parsing Canonical Form
	JSON        []byte      // the .avsc text

	node     *node
	toLatest *prog       // renders data written with this version as JSON of the latest
	resolved avro.Schema // hamba's resolution of this version (writer) to the latest (reader)
}

// recordVersion is one version of an internal record such as
// hookstream.Envelope.
type recordVersion struct {
	file        string
	schema      avro.Schema
	fingerprint uint64
	node        *node
	resolved    avro.Schema // this version (writer) resolved to the current one
}

type recordType struct {
	fullName string
	current  *recordVersion
	versions map[uint64]*recordVersion // by fingerprint, current included
}

// Catalog holds every schema Hookstream reads or writes: the event types
// with all their versions, the envelope and the other internal records. It
// is immutable once loaded, so all its methods are safe for concurrent use.
type Catalog struct {
	types    []string
	events   map[string][]*EventSchema // event type -> versions, index = version-1
	byFP     map[uint64]*EventSchema
	records  map[string]*recordType // by full name
	envelope *recordType
	// envelopeFast is set when the current envelope has exactly the fields
	// the hand-written envelope codec knows.
	envelopeFast bool
	// api is the catalog's own hamba configuration. It only ever decodes
	// with schemas resolved to the current version of a record: hamba keys
	// its decoder cache by a schema identity that ignores field actions, so
	// Resolve(old, new) and Resolve(new, new) must never share a config.
	api avro.API
}

// Full names of internal records, for Marshal and Unmarshal.
const (
	EnvelopeName = "hookstream.Envelope" // defined by envelope.avsc
	EndpointName = "hookstream.Endpoint" // defined by endpoint.avsc
)

const envelopeFile = "envelope.avsc"

// Default returns the catalog of the schemas embedded in package schemas,
// loaded on first use.
func Default() (*Catalog, error) { return loadDefault() }

var loadDefault = sync.OnceValues(func() (*Catalog, error) { return Load(schemas.FS) })

// Load reads and checks a schema tree laid out as package schemas describes:
//
//	envelope.avsc              hookstream.Envelope (required)
//	<name>.avsc                any other internal record, such as endpoint.avsc
//	<name>.v<N>.avsc           an older version of the record in <name>.avsc,
//	                           kept to decode data written with it
//	events/<type>/v<N>.avsc    event type <type>, versions 1..N without gaps
//
// Other files (events/<type>/example.json) are ignored. An event type is
// lower-case dot-separated words, <category>.<action>, and its schema must be
// the record hookstream.events.<category>.<CategoryAction>, e.g.
// payment.succeeded is hookstream.events.payment.PaymentSucceeded. Every
// older version must be resolvable to the latest one, and no two schemas
// may share a fingerprint. Each schema is parsed once.
func Load(fsys fs.FS) (*Catalog, error) {
	c := &Catalog{
		events:  map[string][]*EventSchema{},
		byFP:    map[uint64]*EventSchema{},
		records: map[string]*recordType{},
		api: avro.Config{
			MaxByteSliceSize:  64 << 20,
			MaxSliceAllocSize: 1 << 20,
		}.Freeze(),
	}
	compat := avro.NewSchemaCompatibility()
	fps := map[uint64]string{} // fingerprint -> file, to reject duplicates

	if err := c.loadRecords(fsys, compat, fps); err != nil {
		return nil, err
	}
	if err := c.loadEvents(fsys, compat, fps); err != nil {
		return nil, err
	}
	return c, nil
}

// parsed is one .avsc file, parsed by hamba in a cache of its own (so that
// no name leaks from one file into another) and fingerprinted per the spec.
type parsed struct {
	file   string
	json   []byte
	schema avro.Schema
	fp     uint64
	node   *node
}

func parseFile(fsys fs.FS, file string, fps map[uint64]string) (*parsed, error) {
	js, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	s, err := avro.ParseBytesWithCache(js, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("codec: %s: %w", file, err)
	}
	fp, err := SchemaFingerprint(js)
	if err != nil {
		return nil, fmt.Errorf("codec: %s: %w", file, err)
	}
	if other, dup := fps[fp]; dup {
		return nil, fmt.Errorf("codec: %s and %s have the same canonical form (fingerprint %016x); a new version must change how data is encoded", other, file, fp)
	}
	fps[fp] = file
	n, err := buildNode(s, map[string]*node{})
	if err != nil {
		return nil, fmt.Errorf("codec: %s: %w", file, err)
	}
	if n.kind != kindRecord {
		return nil, fmt.Errorf("codec: %s: schema must be a record, not %s", file, n.kind)
	}
	return &parsed{file: file, json: js, schema: s, fp: fp, node: n}, nil
}

func (c *Catalog) loadRecords(fsys fs.FS, compat *avro.SchemaCompatibility, fps map[uint64]string) error {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return fmt.Errorf("codec: %w", err)
	}
	older := map[string][]string{} // base name -> files of older versions
	bases := map[string]*recordType{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".avsc") {
			continue
		}
		stem := strings.TrimSuffix(name, ".avsc")
		if base, ver, ok := strings.Cut(stem, "."); ok {
			if _, err := parseVersion(ver); err != nil {
				return fmt.Errorf("codec: %s: want <name>.avsc or <name>.v<N>.avsc", name)
			}
			older[base] = append(older[base], name)
			continue
		}
		p, err := parseFile(fsys, name, fps)
		if err != nil {
			return err
		}
		full := p.node.name
		if _, dup := c.records[full]; dup {
			return fmt.Errorf("codec: %s: record %s is defined by two files", name, full)
		}
		v := &recordVersion{file: name, schema: p.schema, fingerprint: p.fp, node: p.node, resolved: p.schema}
		rt := &recordType{fullName: full, current: v, versions: map[uint64]*recordVersion{p.fp: v}}
		c.records[full] = rt
		bases[stem] = rt
	}
	for base, files := range older {
		rt, ok := bases[base]
		if !ok {
			return fmt.Errorf("codec: %s: older version of a record without %s.avsc", files[0], base)
		}
		for _, file := range files {
			p, err := parseFile(fsys, file, fps)
			if err != nil {
				return err
			}
			if p.node.name != rt.fullName {
				return fmt.Errorf("codec: %s: record %s, want %s as in %s", file, p.node.name, rt.fullName, rt.current.file)
			}
			res, err := compat.Resolve(rt.current.schema, p.schema)
			if err != nil {
				return fmt.Errorf("codec: %s cannot be read as %s: %w", file, rt.current.file, err)
			}
			rt.versions[p.fp] = &recordVersion{file: file, schema: p.schema, fingerprint: p.fp, node: p.node, resolved: res}
		}
	}
	env, ok := c.records[EnvelopeName]
	if !ok || env.current.file != envelopeFile {
		return fmt.Errorf("codec: %s must define %s", envelopeFile, EnvelopeName)
	}
	c.envelope = env
	c.envelopeFast = isFastEnvelope(env.current.node)
	return nil
}

func (c *Catalog) loadEvents(fsys fs.FS, compat *avro.SchemaCompatibility, fps map[uint64]string) error {
	dirs, err := fs.ReadDir(fsys, "events")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("codec: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			if strings.HasSuffix(d.Name(), ".avsc") {
				return fmt.Errorf("codec: events/%s: schemas go in events/<type>/v<N>.avsc", d.Name())
			}
			continue
		}
		typ := d.Name()
		if !validEventType(typ) {
			return fmt.Errorf("codec: events/%s: event type must be lower-case words joined by dots, such as payment.succeeded", typ)
		}
		versions, err := c.loadEventType(fsys, typ, fps)
		if err != nil {
			return err
		}
		if len(versions) == 0 {
			continue
		}
		latest := versions[len(versions)-1]
		for _, es := range versions {
			if es.resolved, err = compat.Resolve(latest.Schema, es.Schema); err != nil {
				return fmt.Errorf("codec: %s v%d cannot be read as v%d: %w", typ, es.Version, latest.Version, err)
			}
			if es.toLatest, err = compileProg(es.node, latest.node); err != nil {
				return fmt.Errorf("codec: %s v%d cannot be read as v%d: %w", typ, es.Version, latest.Version, err)
			}
			c.byFP[es.Fingerprint] = es
		}
		c.events[typ] = versions
		c.types = append(c.types, typ)
	}
	slices.Sort(c.types)
	return nil
}

func (c *Catalog) loadEventType(fsys fs.FS, typ string, fps map[uint64]string) ([]*EventSchema, error) {
	dir := path.Join("events", typ)
	files, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	byVersion := map[int]*EventSchema{}
	highest := 0
	for _, f := range files {
		name := f.Name()
		if f.IsDir() || !strings.HasSuffix(name, ".avsc") {
			continue
		}
		v, err := parseVersion(strings.TrimSuffix(name, ".avsc"))
		if err != nil {
			return nil, fmt.Errorf("codec: %s/%s: want v<N>.avsc", dir, name)
		}
		p, err := parseFile(fsys, path.Join(dir, name), fps)
		if err != nil {
			return nil, err
		}
		if want := eventRecordName(typ); p.node.name != want {
			return nil, fmt.Errorf("codec: %s/%s: record %s, want %s", dir, name, p.node.name, want)
		}
		byVersion[v] = &EventSchema{Type: typ, Version: v, Schema: p.schema, Fingerprint: p.fp, JSON: p.json, node: p.node}
		highest = max(highest, v)
	}
	versions := make([]*EventSchema, 0, highest)
	for v := 1; v <= highest; v++ {
		es, ok := byVersion[v]
		if !ok {
			return nil, fmt.Errorf("codec: %s: v%d.avsc missing (versions must run from v1 without gaps)", dir, v)
		}
		versions = append(versions, es)
	}
	return versions, nil
}

// parseVersion parses "v<N>", N a positive integer without leading zeros.
func parseVersion(s string) (int, error) {
	if len(s) < 2 || s[0] != 'v' || s[1] == '0' {
		return 0, errors.New("bad version")
	}
	v, err := strconv.Atoi(s[1:])
	if err != nil || v < 1 || strconv.Itoa(v) != s[1:] {
		return 0, errors.New("bad version")
	}
	return v, nil
}

func validEventType(typ string) bool {
	parts := strings.Split(typ, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || p[0] < 'a' || p[0] > 'z' {
			return false
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

// eventRecordName is the full record name an event type's schema must have:
// payment.succeeded -> hookstream.events.payment.PaymentSucceeded,
// organization.member_added -> hookstream.events.organization.OrganizationMemberAdded.
func eventRecordName(typ string) string {
	parts := strings.Split(typ, ".")
	var name strings.Builder
	for _, p := range parts {
		for w := range strings.SplitSeq(p, "_") {
			if w != "" {
				name.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
		}
	}
	return "hookstream.events." + strings.Join(parts[:len(parts)-1], ".") + "." + name.String()
}

// Types returns the event types, sorted.
func (c *Catalog) Types() []string { return slices.Clone(c.types) }

// Latest returns the newest version of an event type's schema.
func (c *Catalog) Latest(eventType string) (*EventSchema, bool) {
	vs := c.events[eventType]
	if len(vs) == 0 {
		return nil, false
	}
	return vs[len(vs)-1], true
}

// Version returns version v of an event type's schema.
func (c *Catalog) Version(eventType string, v int) (*EventSchema, bool) {
	vs := c.events[eventType]
	if v < 1 || v > len(vs) {
		return nil, false
	}
	return vs[v-1], true
}

// ByFingerprint returns the event schema (any type, any version) with the
// given CRC-64-AVRO fingerprint.
func (c *Catalog) ByFingerprint(fp uint64) (*EventSchema, bool) {
	es, ok := c.byFP[fp]
	return es, ok
}

// latest is Latest with the error callers return.
func (c *Catalog) latest(eventType string) (*EventSchema, error) {
	es, ok := c.Latest(eventType)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownEventType, eventType)
	}
	return es, nil
}

// EncodeNative encodes v, a Go struct with avro tags or a map[string]any,
// with the latest schema of eventType, as Single Object Encoding. uuid
// strings are checked (hamba does not).
func (c *Catalog) EncodeNative(eventType string, v any) ([]byte, error) {
	es, err := c.latest(eventType)
	if err != nil {
		return nil, err
	}
	body, err := c.api.Marshal(es.Schema, v)
	if err != nil {
		return nil, fmt.Errorf("codec: encode %s: %w", eventType, err)
	}
	r := reader{b: body}
	if err := r.skip(es.node, true); err != nil {
		return nil, fmt.Errorf("codec: encode %s: %w", eventType, err)
	}
	out := make([]byte, 0, HeaderLen+len(body))
	out = AppendHeader(out, es.Fingerprint)
	return append(out, body...), nil
}

// CheckData checks, without decoding the body, that soe is Single Object
// Encoding with the fingerprint of a version of eventType. It is meant to
// run for every record and does not allocate when the data is valid.
func (c *Catalog) CheckData(eventType string, soe []byte) error {
	fp, _, err := SplitHeader(soe)
	if err != nil {
		return err
	}
	es, ok := c.byFP[fp]
	if !ok {
		return unknownSchema(fp)
	}
	if es.Type != eventType {
		return fmt.Errorf("%w: data is %s v%d, event type is %q", ErrTypeMismatch, es.Type, es.Version, eventType)
	}
	return nil
}

// EncodeJSON validates a JSON object against the latest schema of
// eventType and returns it as Single Object Encoding. Fields missing from
// the JSON take their schema default; missing fields without a default,
// unknown fields and values of the wrong type are errors that wrap a
// *ValidationError naming the field path. The JSON mapping is described in
// the package documentation.
func (c *Catalog) EncodeJSON(eventType string, data []byte) ([]byte, error) {
	es, err := c.latest(eventType)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(data)
	if err != nil {
		return nil, fmt.Errorf("codec: encode %s: %w", eventType, err)
	}
	out := make([]byte, 0, HeaderLen+len(data)/2)
	out = AppendHeader(out, es.Fingerprint)
	out, err = encodeJSONValue(out, es.node, v, 0)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.finish("data")
		}
		return nil, fmt.Errorf("codec: encode %s: %w", eventType, err)
	}
	return out, nil
}

// DataToJSON renders event data (Single Object Encoding) as JSON in the
// shape of the latest version of its event type, whatever version wrote it.
// It returns the event type too. Errors wrap ErrNotSingleObject,
// ErrUnknownSchema, or describe malformed Avro data.
func (c *Catalog) DataToJSON(soe []byte) (eventType string, js []byte, err error) {
	es, js, err := c.appendDataJSON(nil, soe)
	if err != nil {
		return "", nil, err
	}
	return es.Type, js, nil
}

// AppendDataJSON is DataToJSON appending the JSON to dst; with a reused dst
// it does not allocate. On error dst is returned unchanged.
func (c *Catalog) AppendDataJSON(dst []byte, soe []byte) ([]byte, error) {
	_, out, err := c.appendDataJSON(dst, soe)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (c *Catalog) appendDataJSON(dst []byte, soe []byte) (*EventSchema, []byte, error) {
	fp, body, err := SplitHeader(soe)
	if err != nil {
		return nil, dst, err
	}
	es, ok := c.byFP[fp]
	if !ok {
		return nil, dst, unknownSchema(fp)
	}
	if dst == nil {
		dst = make([]byte, 0, 128+3*len(body))
	}
	r := reader{b: body}
	out, err := es.toLatest.run(&r, dst)
	if err == nil && r.pos != len(body) {
		err = fmt.Errorf("%d trailing bytes", len(body)-r.pos)
	}
	if err != nil {
		return nil, dst, fmt.Errorf("codec: decode %s v%d: %w", es.Type, es.Version, err)
	}
	return es, out, nil
}

// Marshal encodes v (a Go struct with avro tags, or a map[string]any) with
// the current schema of the internal record fullName, such as
// "hookstream.Endpoint", as Single Object Encoding.
func (c *Catalog) Marshal(fullName string, v any) ([]byte, error) {
	rt, ok := c.records[fullName]
	if !ok {
		return nil, fmt.Errorf("codec: unknown record %q", fullName)
	}
	body, err := c.api.Marshal(rt.current.schema, v)
	if err != nil {
		return nil, fmt.Errorf("codec: marshal %s: %w", fullName, err)
	}
	out := make([]byte, 0, HeaderLen+len(body))
	out = AppendHeader(out, rt.current.fingerprint)
	return append(out, body...), nil
}

// Unmarshal decodes Single Object Encoding of the internal record fullName
// into v (a pointer to a struct with avro tags, or to a map[string]any).
// Data written with an older version of the record is resolved to the
// current one.
func (c *Catalog) Unmarshal(b []byte, fullName string, v any) error {
	rt, ok := c.records[fullName]
	if !ok {
		return fmt.Errorf("codec: unknown record %q", fullName)
	}
	fp, body, err := SplitHeader(b)
	if err != nil {
		return err
	}
	rv, ok := rt.versions[fp]
	if !ok {
		return fmt.Errorf("codec: unmarshal %s: %w", fullName, unknownSchema(fp))
	}
	if err := checkBody(rv.node, body); err != nil {
		return fmt.Errorf("codec: unmarshal %s (%s): %w", fullName, rv.file, err)
	}
	if err := c.api.Unmarshal(rv.resolved, body, v); err != nil {
		return fmt.Errorf("codec: unmarshal %s (%s): %w", fullName, rv.file, err)
	}
	return nil
}

// DecodeNative decodes event data (Single Object Encoding) into v, a pointer
// to a Go struct with avro tags or to a map[string]any, in the shape of the
// latest version of its event type. It returns the event type.
func (c *Catalog) DecodeNative(soe []byte, v any) (eventType string, err error) {
	fp, body, err := SplitHeader(soe)
	if err != nil {
		return "", err
	}
	es, ok := c.byFP[fp]
	if !ok {
		return "", unknownSchema(fp)
	}
	if err := checkBody(es.node, body); err != nil {
		return "", fmt.Errorf("codec: decode %s v%d: %w", es.Type, es.Version, err)
	}
	if err := c.api.Unmarshal(es.resolved, body, v); err != nil {
		return "", fmt.Errorf("codec: decode %s v%d: %w", es.Type, es.Version, err)
	}
	return es.Type, nil
}

// checkBody walks body as one value of writer schema n: it must be well
// formed and use every byte. hamba then never sees a length or count the
// input cannot back.
func checkBody(n *node, body []byte) error {
	r := reader{b: body}
	if err := r.skip(n, false); err != nil {
		return err
	}
	if r.pos != len(body) {
		return fmt.Errorf("%d trailing bytes", len(body)-r.pos)
	}
	return nil
}
