package codec

import (
	"strings"
	"testing"
)

// Benchmarks of the per-record paths:
//
//	go test ./pkg/codec -run '^$' -bench . -benchmem

func BenchmarkDecodeEnvelope(b *testing.B) {
	c := defaultCatalog(b)
	env, err := c.EncodeEnvelope(sampleEnvelope(b, c))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(env)))
	for b.Loop() {
		if _, err := c.DecodeEnvelope(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEnvelope(b *testing.B) {
	c := defaultCatalog(b)
	e := sampleEnvelope(b, c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.EncodeEnvelope(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckData(b *testing.B) {
	c := defaultCatalog(b)
	data := encodeExample(b, c, "payment.succeeded")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.CheckData("payment.succeeded", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDataToJSON renders order.created (nested records, an array, a
// map, a decimal, unions) as a deliverer would.
func BenchmarkDataToJSON(b *testing.B) {
	c := defaultCatalog(b)
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"order.created", encodeExample(b, c, "order.created")},
		{"payment.succeeded", encodeExample(b, c, "payment.succeeded")},
		{"payment.succeeded-v1", v1PaymentSucceeded(b, c)},
	} {
		b.Run(bc.name+"/DataToJSON", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, _, err := c.DataToJSON(bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/AppendDataJSON", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = c.AppendDataJSON(buf[:0], bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeJSON(b *testing.B) {
	c := defaultCatalog(b)
	for _, typ := range []string{"order.created", "payment.succeeded"} {
		js := example(b, typ)
		b.Run(typ, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(js)))
			for b.Loop() {
				if _, err := c.EncodeJSON(typ, js); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendJSONString escapes the strings of a typical attribute map
// entry (a 13-byte key, a 27-byte value) and a 1 KiB text.
func BenchmarkAppendJSONString(b *testing.B) {
	for _, in := range []struct{ name, s string }{
		{"key13", "attribute_042"},
		{"value27", "value-0123456789-abcdefghij"},
		{"text1KiB", strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 18)},
	} {
		s := []byte(in.s)
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			var buf []byte
			for b.Loop() {
				buf = appendJSONString(buf[:0], s)
			}
		})
	}
}
