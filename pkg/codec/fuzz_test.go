package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Fuzz targets. Run one with, for example:
//
//	go test ./pkg/codec -run '^$' -fuzz FuzzDataToJSON -fuzztime 20s

func fuzzSeeds(f *testing.F, c *Catalog) (events [][]byte, envelopes [][]byte) {
	for _, typ := range c.Types() {
		b := encodeExample(f, c, typ)
		events = append(events, b)
		env, err := c.EncodeEnvelope(&Envelope{ID: "evt_1", Type: typ, TenantID: "ten_1", Data: b, PreviousData: b})
		if err != nil {
			f.Fatal(err)
		}
		envelopes = append(envelopes, env)
	}
	bins, _ := filepath.Glob("testdata/interop/*.bin")
	for _, p := range bins {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		events = append(events, b)
		envelopes = append(envelopes, b)
	}
	return events, envelopes
}

func FuzzDecodeEnvelope(f *testing.F) {
	c := defaultCatalog(f)
	_, envs := fuzzSeeds(f, c)
	for _, e := range envs {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := c.DecodeEnvelope(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes (when its data is valid) to an
		// envelope that decodes the same.
		again, err := c.EncodeEnvelope(e)
		if err != nil {
			return
		}
		e2, err := c.DecodeEnvelope(again)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("envelope changed: %+v -> %+v", e, e2)
		}
	})
}

func FuzzDataToJSON(f *testing.F) {
	c := defaultCatalog(f)
	events, _ := fuzzSeeds(f, c)
	for _, e := range events {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, js, err := c.DataToJSON(b)
		if err != nil {
			return
		}
		if !json.Valid(js) {
			t.Fatalf("invalid JSON: %s", js)
		}
		out, err := c.AppendDataJSON([]byte("x"), b)
		if err != nil || !bytes.Equal(out[1:], js) {
			t.Fatalf("AppendDataJSON differs: %s, %v", out, err)
		}
		// Output that EncodeJSON takes back (timestamps beyond year 9999
		// are not) renders to the same JSON value.
		soe, err := c.EncodeJSON(typ, js)
		if err != nil {
			return
		}
		_, js2, err := c.DataToJSON(soe)
		if err != nil {
			t.Fatalf("re-encoded data does not decode: %v", err)
		}
		var v1, v2 any
		_ = json.Unmarshal(js, &v1)
		_ = json.Unmarshal(js2, &v2)
		if !reflect.DeepEqual(v1, v2) {
			t.Fatalf("JSON changed through EncodeJSON:\n%s\n%s", js, js2)
		}
	})
}

func FuzzEncodeJSON(f *testing.F) {
	c := defaultCatalog(f)
	types := c.Types()
	for i, typ := range types {
		f.Add(uint8(i), example(f, typ))
	}
	f.Add(uint8(0), []byte(`{"a":[1,{"b":null}],"c":"\u2028"}`))
	f.Add(uint8(3), []byte(`[[[[[[[[[[]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := types[int(which)%len(types)]
		soe, err := c.EncodeJSON(typ, data)
		if err != nil {
			return
		}
		if err := c.CheckData(typ, soe); err != nil {
			t.Fatal(err)
		}
		got, js, err := c.DataToJSON(soe)
		if err != nil || got != typ {
			t.Fatalf("accepted data does not decode: %v", err)
		}
		if !json.Valid(js) {
			t.Fatalf("invalid JSON: %s", js)
		}
		again, err := c.EncodeJSON(typ, js)
		if err != nil {
			t.Fatalf("output %s not accepted: %v", js, err)
		}
		if !bytes.Equal(again, soe) {
			t.Fatalf("encoding is not stable:\n%x\n%x", soe, again)
		}
	})
}

// Event data strings come from domain services: whatever the bytes, the
// eight-byte fast path of appendJSONString yields valid JSON whose value is
// the input with each invalid UTF-8 byte replaced by U+FFFD.
func FuzzAppendJSONString(f *testing.F) {
	for _, seed := range []string{"", "plain ascii text, long enough", "q\"b\\s/ and more", "\n\r\t\b\f\x00\x1f", "é☃😀 mixed in ascii",
		"\u2028\u2029", "bad\xffutf8\xc3", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", "12345678\"", "1234567\\8", "abcdefg\x1fh"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		got := appendJSONString([]byte("x"), s)
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: %v", s, got[1:], err)
		}
		var want strings.Builder
		for _, r := range string(s) { // an invalid byte ranges as one U+FFFD
			want.WriteRune(r)
		}
		if back != want.String() {
			t.Fatalf("appendJSONString(%q) = %s, which reads back as %q", s, got[1:], back)
		}
		if bytes.Contains(got, []byte("\u2028")) || bytes.Contains(got, []byte("\u2029")) {
			t.Fatalf("appendJSONString(%q) = %s holds a raw line or paragraph separator", s, got[1:])
		}
		if exp := AppendJSONString([]byte("x"), string(s)); !bytes.Equal(exp, got) {
			t.Fatalf("AppendJSONString(%q) = %s, appendJSONString %s", s, exp[1:], got[1:])
		}
		for i := 0; i+8 <= len(s); i++ {
			w := s[i : i+8]
			plain := true
			for _, c := range w {
				plain = plain && c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
			}
			if got := plainASCII8(binary.LittleEndian.Uint64(w)); got != plain {
				t.Fatalf("plainASCII8(%q) = %v, want %v", w, got, plain)
			}
		}
	})
}
