package codec

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/hamba/avro/v2"
)

// checkEvolution is the rule of package schemas: a new version must be
// backward compatible (it reads data written with the old one) and forward
// compatible (the old one reads data written with it).
func checkEvolution(old, new avro.Schema) error {
	compat := avro.NewSchemaCompatibility()
	if err := compat.Compatible(new, old); err != nil {
		return fmt.Errorf("not backward compatible (new cannot read old): %w", err)
	}
	if err := compat.Compatible(old, new); err != nil {
		return fmt.Errorf("not forward compatible (old cannot read new): %w", err)
	}
	return nil
}

func TestEventSchemaEvolution(t *testing.T) {
	c := defaultCatalog(t)
	pairs := 0
	for _, typ := range c.Types() {
		latest, _ := c.Latest(typ)
		for v := 1; v < latest.Version; v++ {
			old, _ := c.Version(typ, v)
			new, _ := c.Version(typ, v+1)
			t.Run(fmt.Sprintf("%s/v%d-v%d", typ, v, v+1), func(t *testing.T) {
				if err := checkEvolution(old.Schema, new.Schema); err != nil {
					t.Fatal(err)
				}
				rnd := rand.New(rand.NewPCG(uint64(v), 42))
				for range 30 {
					roundTrip(t, rnd, old, new)
					roundTrip(t, rnd, new, old)
				}
			})
			pairs++
		}
	}
	if pairs == 0 {
		t.Fatal("no event type has two versions")
	}
}

// roundTrip writes random data with writer, reads it with reader through
// hamba's Resolve, and checks field by field: fields both versions have keep
// their value (an enum symbol the reader lacks becomes the reader's
// default), fields only the reader has get their default. It also checks
// that this package's own resolution renders the same data.
func roundTrip(t *testing.T, rnd *rand.Rand, writer, reader *EventSchema) {
	t.Helper()
	g := valueGen{rnd: rnd}
	body, err := encodeJSONValue(nil, writer.node, g.value(writer.node, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(reader.Schema, writer.Schema)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh hamba config per resolution: hamba keys its decoder cache by
	// a schema identity that ignores field actions, so Resolve(v1, v2) and
	// Resolve(v2, v2) collide in one config (see catalog.go).
	api := avro.Config{}.Freeze()
	var written, read map[string]any
	if err := api.Unmarshal(writer.Schema, body, &written); err != nil {
		t.Fatal(err)
	}
	if err := api.Unmarshal(resolved, body, &read); err != nil {
		t.Fatalf("v%d data read as v%d: %v", writer.Version, reader.Version, err)
	}
	for _, rf := range reader.node.fields {
		got := read[rf.name]
		var want any
		if i, ok := writer.node.fieldIndex[rf.name]; ok {
			want = written[rf.name]
			if e := rf.typ; e.kind == kindEnum && writer.node.fields[i].typ.kind == kindEnum {
				if _, known := e.symbolIndex[want.(string)]; !known {
					want = e.symbols[e.enumDefault]
				}
			}
		} else {
			if err := avro.Unmarshal(reader.Schema.(*avro.RecordSchema).Fields()[reader.node.fieldIndex[rf.name]].Type(), rf.defaultBin, &want); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got, want) && !bothNaN(got, want) {
			t.Errorf("v%d -> v%d field %s: got %#v, want %#v", writer.Version, reader.Version, rf.name, got, want)
		}
	}

	p, err := compileProg(writer.node, reader.node)
	if err != nil {
		t.Fatal(err)
	}
	js, err := p.render(body)
	if err != nil {
		t.Fatal(err)
	}
	var readAny any
	if err := api.Unmarshal(resolved, body, &readAny); err != nil {
		t.Fatal(err)
	}
	if err := compareHamba(reader.node, decodeUseNumber(t, js), readAny); err != nil {
		t.Errorf("v%d -> v%d: codec and hamba disagree: %v\n%s", writer.Version, reader.Version, err, js)
	}
}

func bothNaN(a, b any) bool {
	fa, ok := a.(float64)
	fb, ok2 := b.(float64)
	return ok && ok2 && fa != fa && fb != fb
}

// TestIncompatibleEvolutionDetected makes sure the evolution check can fail,
// and that this package's resolver refuses the same pairs hamba refuses.
func TestIncompatibleEvolutionDetected(t *testing.T) {
	const base = `{"type":"record","name":"R","namespace":"x","fields":[
		{"name":"id","type":"string"},
		{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}}%s]}`
	v1 := fmt.Sprintf(base, "")
	cases := []struct {
		name     string
		v2       string
		backward bool // whether v2 can still read v1 data
	}{
		{"new field without default", fmt.Sprintf(base, `,{"name":"extra","type":"long"}`), false},
		{"type change", `{"type":"record","name":"R","namespace":"x","fields":[{"name":"id","type":"int"},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}}]}`, false},
		{"removed field without default", `{"type":"record","name":"R","namespace":"x","fields":[{"name":"id","type":"string"}]}`, true},
		{"enum symbol added, no enum default", `{"type":"record","name":"R","namespace":"x","fields":[{"name":"id","type":"string"},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}}]}`, true},
		{"renamed record", `{"type":"record","name":"S","namespace":"x","fields":[{"name":"id","type":"string"},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}}]}`, false},
	}
	s1 := mustNode(t, v1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s2 := mustNode(t, tc.v2)
			if err := checkEvolution(s1.schema, s2.schema); err == nil {
				t.Fatal("incompatible evolution passed the check")
			}
			_, errBack := compileProg(s1.node, s2.node)
			_, errFwd := compileProg(s2.node, s1.node)
			hambaBack := avro.NewSchemaCompatibility().Compatible(s2.schema, s1.schema)
			hambaFwd := avro.NewSchemaCompatibility().Compatible(s1.schema, s2.schema)
			if (errBack == nil) != (hambaBack == nil) || (errBack == nil) != tc.backward {
				t.Errorf("v2 reads v1: codec %v, hamba %v, want ok=%v", errBack, hambaBack, tc.backward)
			}
			// An enum symbol the old reader lacks is only a problem when it
			// occurs in data: compiling succeeds, decoding it fails.
			if tc.name != "enum symbol added, no enum default" && (errFwd == nil) != (hambaFwd == nil) {
				t.Errorf("v1 reads v2: codec %v, hamba %v", errFwd, hambaFwd)
			}
		})
	}

	// And the catalog refuses to load such a version.
	m := schemaTree(t)
	m["events/payment.succeeded/v3.avsc"] = m["events/payment.succeeded/v2.avsc"]
	m["events/payment.succeeded/v3.avsc"] = fsFile(`{"type":"record","name":"PaymentSucceeded","namespace":"hookstream.events.payment","fields":[{"name":"payment_id","type":"string"},{"name":"settlement_id","type":"string"}]}`)
	if _, err := Load(m); err == nil {
		t.Error("Load accepted a version that cannot read its predecessors")
	}
}

// TestEnumSymbolUnknownToReader: data with a symbol the reader lacks decodes
// to the reader's enum default, or fails when it has none.
func TestEnumSymbolUnknownToReader(t *testing.T) {
	c := defaultCatalog(t)
	v1, _ := c.Version("payment.failed", 1)
	v2, _ := c.Version("payment.failed", 2)
	body, err := c.EncodeJSON("payment.failed", example(t, "payment.failed")) // failure_code authentication_required
	if err != nil {
		t.Fatal(err)
	}
	p, err := compileProg(v2.node, v1.node)
	if err != nil {
		t.Fatal(err)
	}
	js, err := p.render(body[HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if got := semantic(t, js).(map[string]any)["failure_code"]; got != "unknown" {
		t.Errorf("v1 reader sees failure_code %v, want unknown", got)
	}

	noDefault := mustNode(t, `{"type":"enum","name":"E","symbols":["A"]}`)
	more := mustNode(t, `{"type":"enum","name":"E","symbols":["A","B"]}`)
	p, err = compileProg(more.node, noDefault.node)
	if err != nil {
		t.Fatal(err)
	}
	if js, err := p.render([]byte{0}); err != nil || string(js) != `"A"` {
		t.Errorf("known symbol: %s, %v", js, err)
	}
	if _, err := p.render([]byte{2}); err == nil {
		t.Error("unknown symbol without reader default decoded")
	}
}

type parsedSchema struct {
	schema avro.Schema
	node   *node
}

func mustNode(t testing.TB, js string) parsedSchema {
	t.Helper()
	s, err := avro.ParseBytesWithCache([]byte(js), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := buildNode(s, map[string]*node{})
	if err != nil {
		t.Fatal(err)
	}
	return parsedSchema{s, n}
}

// TestResolutionMatchesHamba decodes random data of every version of every
// event type as the latest version, with this package and with hamba's
// resolved schema, and compares.
func TestResolutionMatchesHamba(t *testing.T) {
	c := defaultCatalog(t)
	rnd := rand.New(rand.NewPCG(7, 7))
	g := valueGen{rnd: rnd}
	for _, typ := range c.Types() {
		latest, _ := c.Latest(typ)
		for v := 1; v <= latest.Version; v++ {
			es, _ := c.Version(typ, v)
			for range 40 {
				in := g.value(es.node, 0)
				body, err := encodeJSONValue(nil, es.node, in, 0)
				if err != nil {
					t.Fatalf("%s v%d: %v", typ, v, err)
				}
				soe := append(AppendHeader(nil, es.Fingerprint), body...)
				gotType, js, err := c.DataToJSON(soe)
				if err != nil || gotType != typ {
					t.Fatalf("%s v%d: %v %v", typ, v, gotType, err)
				}
				var theirs any
				if err := c.api.Unmarshal(es.resolved, body, &theirs); err != nil {
					t.Fatal(err)
				}
				if err := compareHamba(latest.node, decodeUseNumber(t, js), theirs); err != nil {
					t.Fatalf("%s v%d: %v\n%s", typ, v, err, js)
				}
			}
		}
	}
}

// TestRecordFieldReordering covers a reader whose fields come in another
// order than the writer's (resolved by offsets rather than in one pass),
// with aliases, promotions and a nested record.
func TestRecordFieldReordering(t *testing.T) {
	w := mustNode(t, `{"type":"record","name":"R","fields":[
		{"name":"a","type":"int"},
		{"name":"b","type":"string"},
		{"name":"gone","type":{"type":"array","items":"long"}},
		{"name":"c","type":{"type":"record","name":"In","fields":[{"name":"x","type":"float"}]}},
		{"name":"old_name","type":"bytes"}]}`)
	r := mustNode(t, `{"type":"record","name":"R","fields":[
		{"name":"c","type":{"type":"record","name":"In","fields":[{"name":"x","type":"double"},{"name":"y","type":"int","default":5}]}},
		{"name":"new_name","aliases":["old_name"],"type":"string"},
		{"name":"b","type":["null","string"]},
		{"name":"added","type":{"type":"map","values":"int"},"default":{"z":1,"a":2}},
		{"name":"a","type":"double"}]}`)
	p, err := compileProg(w.node, r.node)
	if err != nil {
		t.Fatal(err)
	}
	if p.streaming {
		t.Fatal("expected the offset-based path")
	}
	body, err := encodeJSONValue(nil, w.node, decodeUseNumber(t, []byte(
		`{"a":7,"b":"bee","gone":[1,2,3],"c":{"x":1.5},"old_name":"aGk="}`)), 0)
	if err != nil {
		t.Fatal(err)
	}
	js, err := p.render(body)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"c":{"x":1.5,"y":5},"new_name":"hi","b":"bee","added":{"a":2,"z":1},"a":7}`
	if string(js) != want {
		t.Errorf("got  %s\nwant %s", js, want)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(r.schema, w.schema)
	if err != nil {
		t.Fatal(err)
	}
	var theirs any
	if err := avro.Unmarshal(resolved, body, &theirs); err != nil {
		t.Fatal(err)
	}
	if err := compareHamba(r.node, decodeUseNumber(t, js), theirs); err != nil {
		t.Error(err)
	}
	if !slices.ContainsFunc(p.steps, func(s recStep) bool { return s.kind == stepDefault }) {
		t.Error("no default step")
	}
}
