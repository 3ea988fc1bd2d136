package webhook

import (
	"net/http"
	"testing"
)

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	one := mustSecret(b)
	two := []Secret{one, mustSecret(b)}
	const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

	b.Run("AppendSignature", func(b *testing.B) {
		s := NewSigner(one)
		buf := make([]byte, 0, 128)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			buf = s.AppendSignature(buf[:0], id, testNow, body)
		}
	})
	b.Run("AppendSignature/2secrets", func(b *testing.B) {
		s := NewSigner(two...)
		buf := make([]byte, 0, 128)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			buf = s.AppendSignature(buf[:0], id, testNow, body)
		}
	})
	b.Run("Signer.Sign", func(b *testing.B) {
		s := NewSigner(one)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Sign(id, testNow, body)
		}
	})
	b.Run("Sign", func(b *testing.B) { // key setup on every call
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_ = Sign(one, id, testNow, body)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 1024)
	old, cur := mustSecret(b), mustSecret(b)
	const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	bench := func(name string, v *Verifier, h http.Header) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				_ = v.Verify(h, body)
			}
		})
	}
	clock := WithClock(fixedClock(testNow.Unix()))
	valid := headers(id, testNow.Unix(), NewSigner(cur).Sign(id, testNow, body))
	bench("valid", mustVerifier(b, []Secret{cur}, clock), valid)
	bench("rotation/second-secret", mustVerifier(b, []Secret{old, cur}, clock), valid)
	bench("invalid", mustVerifier(b, []Secret{old}, clock), valid)
}
