package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify checks that arbitrary headers and bodies never panic, that a
// random header never verifies unless it carries the right signature, and that
// a correct signature always verifies, alone or after garbage entries.
func FuzzVerify(f *testing.F) {
	f.Add(officialMsgID, "1614265330", officialSignature, []byte(officialPayload), int64(0), "")
	f.Add("msg_1", "1700000000", "v1,AAAA v1a,BBBB", []byte("{}"), int64(299), "v1 v2,x")
	f.Add("", "", "", []byte(nil), int64(-300), " ")
	f.Add("id.with.dots", "01700000000", "v1,"+strings.Repeat("=", 44), []byte("\x00\xff"), int64(1<<40), "v1,,,")

	sec, err := ParseSecret(officialSecret)
	if err != nil {
		f.Fatal(err)
	}
	v := mustVerifier(f, []Secret{sec}, WithClock(fixedClock(testNow.Unix())))
	signer := NewSigner(sec)

	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, offset int64, garbage string) {
		// 1. Arbitrary input.
		h := http.Header{canonicalID: {id}, canonicalTimestamp: {ts}, canonicalSignature: {sig}}
		if err := v.Verify(h, body); err == nil {
			unix, _ := strconv.ParseInt(ts, 10, 64)
			want := Sign(sec, id, time.Unix(unix, 0), body)
			if !strings.Contains(sig, want) && !strings.Contains(sig, strings.TrimRight(want, "=")) {
				t.Fatalf("forged header verified: id %q ts %q sig %q", id, ts, sig)
			}
		}

		// 2. A correct signature within the tolerance always verifies.
		tol := int64(DefaultTolerance / time.Second)
		at := testNow.Add(time.Duration(offset%(tol+1)) * time.Second)
		good := signer.Sign(id, at, body)
		h = http.Header{canonicalID: {id}, canonicalTimestamp: {strconv.FormatInt(at.Unix(), 10)}, canonicalSignature: {good}}
		err := v.Verify(h, body)
		if id == "" {
			if !errors.Is(err, ErrMissingHeaders) {
				t.Fatalf("empty id: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid signature rejected: id %q at %v: %v", id, at, err)
		}
		h[canonicalSignature] = []string{garbage + " " + good}
		if err := v.Verify(h, body); err != nil {
			t.Fatalf("valid signature after %q rejected: %v", garbage, err)
		}
		// Any change of the body breaks it.
		tampered := append(bytes.Clone(body), 'x')
		if err := v.Verify(h, tampered); err == nil && !strings.Contains(garbage, Sign(sec, id, at, tampered)) {
			t.Fatal("tampered body verified")
		}
	})
}

// FuzzParseSecret checks that parsing never panics and that every accepted
// secret has a valid size and round-trips through its padded String form.
func FuzzParseSecret(f *testing.F) {
	f.Add(officialSecret)
	f.Add("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add("whsec_" + strings.Repeat("A", 43))
	f.Add("whsec_" + strings.Repeat("/", 86) + "==")
	f.Add("whsec_abc=\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSecret(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("error %v is not ErrInvalidSecret", err)
			}
			return
		}
		if n := len(s.key); n < MinSecretSize || n > MaxSecretSize {
			t.Fatalf("accepted a %d-byte key from %q", n, in)
		}
		out := s.String()
		if !strings.HasPrefix(out, SecretPrefix) || (len(out)-len(SecretPrefix))%4 != 0 {
			t.Fatalf("String() = %q is not whsec_ + padded base64", out)
		}
		back, err := ParseSecret(out)
		if err != nil || back != s {
			t.Fatalf("round trip of %q: %v, %v", out, back, err)
		}
	})
}
