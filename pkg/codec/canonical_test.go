package codec

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/hookstream/hookstream/schemas"
)

// specCases are the Parsing Canonical Form examples of the Avro project,
// share/test/data/schema-tests.txt in apache/avro. The fingerprints there
// are Java longs (the same 64 bits, signed); the Java tests check them
// against a slow reference implementation of the Rabin fingerprint.
var specCases = []struct {
	input, canonical string
	fingerprint      int64 // 0: none given
}{
	{`"null"`, `"null"`, 7195948357588979594},
	{`{"type":"null"}`, `"null"`, 0},
	{`"boolean"`, `"boolean"`, -6970731678124411036},
	{`{"type":"boolean"}`, `"boolean"`, 0},
	{`"int"`, `"int"`, 8247732601305521295},
	{`{"type":"int"}`, `"int"`, 0},
	{`"long"`, `"long"`, -3434872931120570953},
	{`{"type":"long"}`, `"long"`, 0},
	{`"float"`, `"float"`, 5583340709985441680},
	{`{"type":"float"}`, `"float"`, 0},
	{`"double"`, `"double"`, -8181574048448539266},
	{`{"type":"double"}`, `"double"`, 0},
	{`"bytes"`, `"bytes"`, 5746618253357095269},
	{`{"type":"bytes"}`, `"bytes"`, 0},
	{`"string"`, `"string"`, -8142146995180207161},
	{`{"type":"string"}`, `"string"`, 0},
	{`[  ]`, `[]`, -1241056759729112623},
	{`[ "int"  ]`, `["int"]`, -5232228896498058493},
	{`[ "int" , {"type":"boolean"} ]`, `["int","boolean"]`, 5392556393470105090},
	{`{"fields":[], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`, `{"name":"x.y.foo","type":"record","fields":[]}`, 5916914534497305771},
	{`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`, `{"name":"a.b.foo","type":"record","fields":[]}`, -4616218487480524110},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, 7843277075252814651},
	{`{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
	            {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
	  "type":"record", "name":"foo"
	}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`, -4860222112080293046},
	{`{"type":"enum", "name":"foo", "symbols":["A1"]}`, `{"name":"foo","type":"enum","symbols":["A1"]}`, -6342190197741309591},
	{`{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}`, `{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}`, -4448647247586288245},
	{`{"name":"foo","type":"fixed","size":15}`, `{"name":"foo","type":"fixed","size":15}`, 1756455273707447556},
	{`{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}`, `{"name":"x.y.z.foo","type":"fixed","size":32}`, -3064184465700546786},
	{`{ "items":{"type":"null"}, "type":"array"}`, `{"type":"array","items":"null"}`, -589620603366471059},
	{`{ "values":"string", "type":"map"}`, `{"type":"map","values":"string"}`, -8732877298790414990},
	{`{"name":"PigValue","type":"record",
	   "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`,
		`{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`, -1759257747318642341},
}

func TestCanonicalFormSpecExamples(t *testing.T) {
	for _, tc := range specCases {
		got, err := CanonicalForm([]byte(tc.input))
		if err != nil {
			t.Errorf("CanonicalForm(%s): %v", tc.input, err)
			continue
		}
		if string(got) != tc.canonical {
			t.Errorf("CanonicalForm(%s)\n got %s\nwant %s", tc.input, got, tc.canonical)
		}
		if tc.fingerprint != 0 {
			if fp := Fingerprint64(got); fp != uint64(tc.fingerprint) {
				t.Errorf("Fingerprint64(%s) = %d, want %d", got, int64(fp), tc.fingerprint)
			}
		}
	}
}

// fingerprintsFile is testdata/fingerprints.json, written by
// testdata/gen_fingerprints.py with fastavro (see that script). Regenerate it
// whenever a schema under schemas/ is added or changed.
type fingerprintsFile struct {
	Generator string `json:"generator"`
	Schemas   []struct {
		Name        string `json:"name"`
		File        string `json:"file"` // relative to schemas/, empty for hand-written schemas
		Schema      string `json:"schema"`
		Canonical   string `json:"canonical"`
		Fingerprint string `json:"fingerprint"` // little-endian bytes in hex, as in the SOE header
	} `json:"schemas"`
}

func TestCanonicalFormMatchesFastavro(t *testing.T) {
	raw, err := os.ReadFile("testdata/fingerprints.json")
	if err != nil {
		t.Fatal(err)
	}
	var ff fingerprintsFile
	if err := json.Unmarshal(raw, &ff); err != nil {
		t.Fatal(err)
	}
	c := defaultCatalog(t)
	covered := map[string]bool{}
	tricky := 0
	for _, e := range ff.Schemas {
		t.Run(e.Name, func(t *testing.T) {
			if e.File != "" {
				covered[e.File] = true
				cur, err := fs.ReadFile(schemas.FS, e.File)
				if err != nil {
					t.Fatalf("%v (regenerate: python3 pkg/codec/testdata/gen_fingerprints.py)", err)
				}
				if string(cur) != e.Schema {
					t.Fatalf("schemas/%s changed since fingerprints.json was generated: run python3 pkg/codec/testdata/gen_fingerprints.py. "+
						"(Changing a schema changes its fingerprint: if data written with the old text exists, keep the old text as "+
						"<name>.v<N>.avsc at the top level, or add events/<type>/v<N+1>.avsc instead of editing vN.)", e.File)
				}
			} else {
				tricky++
			}
			pcf, err := CanonicalForm([]byte(e.Schema))
			if err != nil {
				t.Fatal(err)
			}
			if string(pcf) != e.Canonical {
				t.Errorf("canonical form\n got %s\nwant %s (%s)", pcf, e.Canonical, ff.Generator)
			}
			want, err := hex.DecodeString(e.Fingerprint)
			if err != nil {
				t.Fatal(err)
			}
			fp, err := SchemaFingerprint([]byte(e.Schema))
			if err != nil {
				t.Fatal(err)
			}
			if got := AppendHeader(nil, fp)[2:]; string(got) != string(want) {
				t.Errorf("fingerprint bytes %x, want %x (%s)", got, want, ff.Generator)
			}
			if binary.LittleEndian.Uint64(want) != Fingerprint64([]byte(e.Canonical)) {
				t.Errorf("Fingerprint64 of fastavro's canonical form differs from fastavro's fingerprint")
			}
			// The catalog uses the same fingerprints.
			if e.File != "" && strings.HasPrefix(e.File, "events/") {
				es, ok := c.ByFingerprint(fp)
				if !ok || e.File != "events/"+es.Type+"/v"+strconv.Itoa(es.Version)+".avsc" {
					t.Errorf("catalog has no schema for %s under fingerprint %016x", e.File, fp)
				}
			}
		})
	}
	if tricky < 12 {
		t.Errorf("only %d hand-written schemas in fingerprints.json, want at least 12", tricky)
	}
	err = fs.WalkDir(schemas.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".avsc") && !covered[p] {
			t.Errorf("schemas/%s is not in testdata/fingerprints.json: run python3 pkg/codec/testdata/gen_fingerprints.py", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFingerprintAgreesWithHambaWithoutLogicalTypes pins down why
// CanonicalForm is hand-written: hamba's fingerprint agrees with the
// specification only for schemas without logical types.
func TestFingerprintAgreesWithHambaWithoutLogicalTypes(t *testing.T) {
	for _, s := range []string{
		`{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":["null","string"],"default":null},{"name":"b","type":{"type":"array","items":{"type":"enum","name":"E","symbols":["X"]}}}]}`,
		`{"type":"fixed","name":"F","size":3}`,
	} {
		hs, err := avro.ParseBytesWithCache([]byte(s), "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := hs.FingerprintUsing(avro.CRC64AvroLE)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := SchemaFingerprint([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if string(AppendHeader(nil, ours)[2:]) != string(theirs) {
			t.Errorf("%s: fingerprint %x, hamba %x", s, AppendHeader(nil, ours)[2:], theirs)
		}
	}
	// With a logical type the specification's canonical form drops it.
	ts := `{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
	plain := `{"type":"record","name":"R","fields":[{"name":"t","type":"long"}]}`
	a, _ := SchemaFingerprint([]byte(ts))
	b, _ := SchemaFingerprint([]byte(plain))
	if a != b {
		t.Errorf("timestamp-millis long and long fingerprints differ: %016x %016x", a, b)
	}
}

func TestCanonicalFormErrors(t *testing.T) {
	for _, s := range []string{
		``,
		`{`,
		`"int" "long"`,
		`42`,
		`"Unknown"`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"Missing"}]}`,
		// A short name refers to the enclosing namespace only.
		`{"type":"record","name":"T","namespace":"ns","fields":[{"name":"a","type":{"type":"record","name":"N","namespace":"","fields":[]}},{"name":"b","type":"N"}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"R","size":1}}]}`,
		`{"type":"record","name":"1R","fields":[]}`,
		`{"type":"record","name":"int","fields":[]}`,
		`{"type":"record","name":"R"}`,
		`{"type":"record","name":"R","fields":[{"type":"int"}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a"}]}`,
		`{"type":"enum","name":"E","symbols":["ok","not ok"]}`,
		`{"type":"enum","name":"E"}`,
		`{"type":"fixed","name":"F","size":-1}`,
		`{"type":"fixed","name":"F","size":1.5}`,
		`{"type":"fixed","name":"F"}`,
		`{"type":"array"}`,
		`{"type":"map"}`,
		`{"type":{"type":"int"}}`,
		`{"name":"x"}`,
		`["int",["long"]]`,
	} {
		if pcf, err := CanonicalForm([]byte(s)); err == nil {
			t.Errorf("CanonicalForm(%s) = %s, want error", s, pcf)
		}
	}
}

func TestRabinTable(t *testing.T) {
	// Spot values of the CRC-64-AVRO table (first entries as in the Java
	// and Python implementations' generator loop, checked by hand).
	if rabinTable[0] != 0 {
		t.Errorf("table[0] = %x", rabinTable[0])
	}
	if rabinTable[128] != rabinEmpty {
		t.Errorf("table[128] = %x, want the polynomial %x", rabinTable[128], rabinEmpty)
	}
	if got := Fingerprint64(nil); got != rabinEmpty {
		t.Errorf("fingerprint of nothing = %x, want %x", got, rabinEmpty)
	}
}
