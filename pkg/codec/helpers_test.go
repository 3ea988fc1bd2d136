package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hookstream/hookstream/schemas"
)

func defaultCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// example returns events/<type>/example.json from the embedded schemas.
func example(t testing.TB, typ string) []byte {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS, "events/"+typ+"/example.json")
	if err != nil {
		t.Fatalf("every event type needs an example.json: %v", err)
	}
	return b
}

// encodeExample returns the example of typ as Single Object Encoding.
func encodeExample(t testing.TB, c *Catalog, typ string) []byte {
	t.Helper()
	b, err := c.EncodeJSON(typ, example(t, typ))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// schemaTree copies the embedded schema tree into a MapFS that a test can
// change before calling Load.
func schemaTree(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(schemas.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schemas.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// semantic decodes JSON for comparison (numbers as float64).
func semantic(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return v
}

func jsonEqual(t testing.TB, got, want []byte) {
	t.Helper()
	if g, w := semantic(t, got), semantic(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("JSON differs\n got: %s\nwant: %s", got, want)
	}
}

// randomValue generates a random value of schema n in the package's JSON
// mapping, as decodeJSON would hand it over, in all the input forms the
// mapping accepts.
type valueGen struct {
	rnd *rand.Rand
}

func (g *valueGen) value(n *node, depth int) any {
	r := g.rnd
	switch n.kind {
	case kindNull:
		return nil
	case kindBoolean:
		return r.IntN(2) == 1
	case kindInt:
		if n.logical == logicalDate {
			days := r.IntN(200*365) - 70*365
			if r.IntN(2) == 0 {
				return time.Unix(int64(days)*86400, 0).UTC().Format(time.DateOnly)
			}
			return json.Number(strconv.Itoa(days))
		}
		return json.Number(strconv.FormatInt(g.integer(32), 10))
	case kindLong:
		switch n.logical {
		case logicalTimestampMillis, logicalTimestampMicros:
			ms := r.Int64N(300*365*86400*1000) - 70*365*86400*1000
			if r.IntN(2) == 0 {
				return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
			}
			if n.logical == logicalTimestampMicros {
				ms *= 1000
			}
			return json.Number(strconv.FormatInt(ms, 10))
		}
		return json.Number(strconv.FormatInt(g.integer(64), 10))
	case kindFloat, kindDouble:
		bits := 64
		if n.kind == kindFloat {
			bits = 32
		}
		switch r.IntN(12) {
		case 0:
			return "NaN"
		case 1:
			return "Infinity"
		case 2:
			return "-Infinity"
		case 3:
			return json.Number("0")
		}
		f := r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		if bits == 32 {
			f = float64(float32(f))
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, bits))
	case kindString:
		if n.logical == logicalUUID {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		}
		return g.text()
	case kindBytes, kindFixed:
		if n.logical == logicalDecimal {
			digits := r.IntN(n.precision) + 1
			var ds []byte
			for range digits {
				ds = append(ds, byte('0'+r.IntN(10)))
			}
			u, _ := new(big.Int).SetString(string(ds), 10)
			if r.IntN(2) == 0 {
				u.Neg(u)
			}
			s := new(big.Rat).SetFrac(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.scale)), nil)).FloatString(n.scale)
			if n.kind == kindFixed && twosComplement(u, n.size) == nil {
				return "0"
			}
			return s
		}
		size := n.size
		if n.kind == kindBytes {
			size = r.IntN(20)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return base64.StdEncoding.EncodeToString(b)
	case kindEnum:
		return n.symbols[r.IntN(len(n.symbols))]
	case kindArray:
		k := r.IntN(4)
		if depth > 6 {
			k = 0
		}
		out := []any{}
		for range k {
			out = append(out, g.value(n.items, depth+1))
		}
		return out
	case kindMap:
		k := r.IntN(4)
		if depth > 6 {
			k = 0
		}
		out := map[string]any{}
		for range k {
			out[g.text()] = g.value(n.items, depth+1)
		}
		return out
	case kindRecord:
		out := map[string]any{}
		for _, f := range n.fields {
			if f.hasDefault && r.IntN(4) == 0 {
				continue // left to the default
			}
			out[f.name] = g.value(f.typ, depth+1)
		}
		return out
	case kindUnion:
		i := r.IntN(len(n.branches))
		b := n.branches[i]
		if depth > 6 && n.nullIndex >= 0 {
			b = n.branches[n.nullIndex]
		}
		if b.kind == kindNull {
			return nil
		}
		v := g.value(b, depth+1)
		if n.optional >= 0 {
			return v
		}
		return map[string]any{b.name: v}
	}
	panic("unknown kind")
}

func (g *valueGen) integer(bits int) int64 {
	r := g.rnd
	switch r.IntN(4) {
	case 0:
		return int64(r.IntN(200)) - 100
	case 1:
		if bits == 32 {
			return []int64{math.MinInt32, math.MaxInt32}[r.IntN(2)]
		}
		return []int64{math.MinInt64, math.MaxInt64}[r.IntN(2)]
	}
	if bits == 32 {
		return int64(int32(r.Uint32()))
	}
	return int64(r.Uint64())
}

var textPieces = []string{"a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\x00", "\x1f", "é", "☃", "😀", "\u2028", "\u2029", "<", "&", "\u007f"}

func (g *valueGen) text() string {
	var b strings.Builder
	for range g.rnd.IntN(8) {
		b.WriteString(textPieces[g.rnd.IntN(len(textPieces))])
	}
	return b.String()
}

// compareHamba checks that mine, JSON written by this package (decoded with
// UseNumber), and theirs, a value hamba decoded into an interface{}, hold
// the same data of schema n.
func compareHamba(n *node, mine, theirs any) error {
	fail := func() error {
		return fmt.Errorf("%s: mine %#v, hamba %#v", n.describe(), mine, theirs)
	}
	switch n.kind {
	case kindNull:
		if mine != nil || theirs != nil {
			return fail()
		}
	case kindBoolean:
		if mine != theirs {
			return fail()
		}
	case kindInt, kindLong:
		switch n.logical {
		case logicalTimestampMillis, logicalTimestampMicros:
			s, _ := mine.(string)
			tm, err := time.Parse(time.RFC3339Nano, s)
			th, ok := theirs.(time.Time)
			if err != nil || !ok || !tm.Equal(th) {
				return fail()
			}
			return nil
		case logicalDate:
			th, ok := theirs.(time.Time)
			if !ok || mine != th.Format(`2006-01-02`) {
				return fail()
			}
			return nil
		}
		num, _ := mine.(json.Number)
		i, err := num.Int64()
		var want int64
		switch th := theirs.(type) {
		case int:
			want = int64(th)
		case int32:
			want = int64(th)
		case int64:
			want = th
		default:
			return fail()
		}
		if err != nil || i != want {
			return fail()
		}
	case kindFloat, kindDouble:
		var f float64
		switch m := mine.(type) {
		case json.Number:
			var err error
			if f, err = m.Float64(); err != nil {
				return fail()
			}
		case string:
			f = map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}[m]
		}
		var want float64
		switch th := theirs.(type) {
		case float32:
			want = float64(th)
			f = float64(float32(f))
		case float64:
			want = th
		default:
			return fail()
		}
		if f != want && !(math.IsNaN(f) && math.IsNaN(want)) {
			return fail()
		}
	case kindString:
		if mine != theirs {
			return fail()
		}
	case kindBytes, kindFixed:
		s, _ := mine.(string)
		if n.logical == logicalDecimal {
			rm, ok := new(big.Rat).SetString(s)
			rt, ok2 := theirs.(*big.Rat)
			if !ok || !ok2 || rm.Cmp(rt) != 0 {
				return fail()
			}
			return nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		var want []byte
		if n.kind == kindFixed {
			rv := reflect.ValueOf(theirs)
			if rv.Kind() != reflect.Array {
				return fail()
			}
			for i := range rv.Len() {
				want = append(want, byte(rv.Index(i).Uint()))
			}
		} else {
			want, _ = theirs.([]byte)
		}
		if err != nil || !bytes.Equal(b, want) {
			return fail()
		}
	case kindEnum:
		if mine != theirs {
			return fail()
		}
	case kindArray:
		a, ok := mine.([]any)
		b, ok2 := theirs.([]any)
		if !ok || !ok2 || len(a) != len(b) {
			return fail()
		}
		for i := range a {
			if err := compareHamba(n.items, a[i], b[i]); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case kindMap, kindRecord:
		a, ok := mine.(map[string]any)
		b, ok2 := theirs.(map[string]any)
		if !ok || !ok2 || len(a) != len(b) {
			return fail()
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok {
				return fail()
			}
			sub := n.items
			if n.kind == kindRecord {
				sub = n.fields[n.fieldIndex[k]].typ
			}
			if err := compareHamba(sub, av, bv); err != nil {
				return fmt.Errorf(".%s: %w", k, err)
			}
		}
	case kindUnion:
		if mine == nil {
			if theirs != nil {
				return fail()
			}
			return nil
		}
		bi := n.optional
		if bi < 0 {
			m, ok := mine.(map[string]any)
			if !ok || len(m) != 1 {
				return fail()
			}
			for k, v := range m {
				bi, mine = n.branchByName(k), v
			}
		}
		b := n.branches[bi]
		// hamba wraps named types as {"full.Name": value}.
		if m, ok := theirs.(map[string]any); ok && len(m) == 1 && slices.Contains([]kind{kindRecord, kindEnum, kindFixed}, b.kind) {
			if v, ok := m[b.name]; ok {
				theirs = v
			}
		}
		return compareHamba(b, mine, theirs)
	}
	return nil
}

// decodeUseNumber decodes JSON keeping numbers exact.
func decodeUseNumber(t testing.TB, b []byte) any {
	t.Helper()
	v, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

func fsFile(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func hexString(b []byte) string { return fmt.Sprintf("%x", b) }

func mustBig(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return n
}
