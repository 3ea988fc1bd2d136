package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1700000000, 0)

func mustSecret(t testing.TB) Secret {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVerifier(t testing.TB, secrets []Secret, opts ...VerifyOption) *Verifier {
	t.Helper()
	v, err := NewVerifier(secrets, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyRotation(t *testing.T) {
	old, cur, other := mustSecret(t), mustSecret(t), mustSecret(t)
	body := []byte(`{"type":"invoice.paid"}`)
	both := NewSigner(old, cur).Sign("msg_1", testNow, body)
	if n := len(strings.Fields(both)); n != 2 {
		t.Fatalf("rotation signature has %d entries, want 2: %q", n, both)
	}
	if want := Sign(old, "msg_1", testNow, body) + " " + Sign(cur, "msg_1", testNow, body); both != want {
		t.Fatalf("rotation signature = %q, want %q", both, want)
	}
	onlyCur := NewSigner(cur).Sign("msg_1", testNow, body)

	clock := WithClock(fixedClock(testNow.Unix()))
	cases := []struct {
		name    string
		secrets []Secret
		sig     string
		ok      bool
	}{
		{"receiver has old, sender signs with both", []Secret{old}, both, true},
		{"receiver has new, sender signs with both", []Secret{cur}, both, true},
		{"receiver has both, sender signs with both", []Secret{old, cur}, both, true},
		{"receiver has both, sender moved to new", []Secret{old, cur}, onlyCur, true},
		{"receiver has other and new", []Secret{other, cur}, onlyCur, true},
		{"receiver has only old, sender moved to new", []Secret{old}, onlyCur, false},
		{"receiver has another secret", []Secret{other}, both, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mustVerifier(t, tc.secrets, clock).Verify(headers("msg_1", testNow.Unix(), tc.sig), body)
			if tc.ok && err != nil {
				t.Errorf("Verify = %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, ErrNoMatchingSignature) {
				t.Errorf("Verify = %v, want ErrNoMatchingSignature", err)
			}
		})
	}
}

func TestVerifyToleranceBoundaries(t *testing.T) {
	sec := mustSecret(t)
	body := []byte("{}")
	ts := testNow.Unix()
	h := headers("msg_t", ts, Sign(sec, "msg_t", testNow, body))
	for _, tol := range []time.Duration{DefaultTolerance, 10 * time.Second, time.Nanosecond} {
		cases := []struct {
			now  time.Time
			want error
		}{
			{testNow, nil},
			{testNow.Add(tol), nil}, // exactly tol old: accepted
			{testNow.Add(tol + time.Nanosecond), ErrTimestampTooOld},
			{testNow.Add(tol + time.Hour), ErrTimestampTooOld},
			{testNow.Add(-tol), nil}, // exactly tol in the future: accepted
			{testNow.Add(-tol - time.Nanosecond), ErrTimestampTooNew},
			{testNow.Add(-tol - time.Hour), ErrTimestampTooNew},
		}
		for _, tc := range cases {
			opts := []VerifyOption{WithClock(func() time.Time { return tc.now })}
			if tol != DefaultTolerance {
				opts = append(opts, WithTolerance(tol))
			}
			err := mustVerifier(t, []Secret{sec}, opts...).Verify(h, body)
			if (tc.want == nil && err != nil) || !errors.Is(err, tc.want) {
				t.Errorf("tolerance %v, now = ts%+v: Verify = %v, want %v", tol, tc.now.Sub(testNow), err, tc.want)
			}
		}
	}
	for _, bad := range []time.Duration{0, -time.Second} {
		if _, err := NewVerifier([]Secret{sec}, WithTolerance(bad)); err == nil {
			t.Errorf("WithTolerance(%v) accepted", bad)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	sec := mustSecret(t)
	v := mustVerifier(t, []Secret{sec}, WithClock(fixedClock(testNow.Unix())))
	id, body := "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", []byte(`{"a":1}`)
	ts := testNow.Unix()
	sig := Sign(sec, id, testNow, body)
	b64 := strings.TrimPrefix(sig, "v1,")
	valid := func() http.Header { return headers(id, ts, sig) }

	cases := []struct {
		name string
		h    func() http.Header
		body []byte
		want error // nil: must verify
	}{
		{"valid", valid, body, nil},
		{"valid unpadded entry", func() http.Header { h := valid(); h.Set(HeaderSignature, "v1,"+strings.TrimRight(b64, "=")); return h }, body, nil},
		{"valid entry after unknown versions", func() http.Header {
			h := valid()
			h.Set(HeaderSignature, "v1a,"+b64+b64+" v2,"+b64+" "+sig)
			return h
		}, body, nil},
		{"extra spaces between entries", func() http.Header { h := valid(); h.Set(HeaderSignature, "v1,AAAA  "+sig+" "); return h }, body, nil},
		{"valid entry in a second header line", func() http.Header {
			h := valid()
			h.Set(HeaderSignature, "v1,AAAA")
			h.Add(HeaderSignature, sig)
			return h
		}, body, nil},

		{"missing id", func() http.Header { h := valid(); h.Del(HeaderID); return h }, body, ErrMissingHeaders},
		{"missing timestamp", func() http.Header { h := valid(); h.Del(HeaderTimestamp); return h }, body, ErrMissingHeaders},
		{"missing signature", func() http.Header { h := valid(); h.Del(HeaderSignature); return h }, body, ErrMissingHeaders},
		{"empty id", func() http.Header { h := valid(); h.Set(HeaderID, ""); return h }, body, ErrMissingHeaders},
		{"empty signature", func() http.Header { h := valid(); h.Set(HeaderSignature, ""); return h }, body, ErrMissingHeaders},
		{"blank signature", func() http.Header { h := valid(); h.Set(HeaderSignature, "   "); return h }, body, ErrMissingHeaders},
		{"no headers", func() http.Header { return http.Header{} }, body, ErrMissingHeaders},

		{"timestamp not a number", func() http.Header { h := valid(); h.Set(HeaderTimestamp, "hello"); return h }, body, ErrInvalidTimestamp},
		{"timestamp with fraction", func() http.Header { h := valid(); h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10)+".0"); return h }, body, ErrInvalidTimestamp},
		{"timestamp with sign", func() http.Header { h := valid(); h.Set(HeaderTimestamp, "+"+strconv.FormatInt(ts, 10)); return h }, body, ErrInvalidTimestamp},
		{"negative timestamp", func() http.Header { h := valid(); h.Set(HeaderTimestamp, "-5"); return h }, body, ErrInvalidTimestamp},
		{"timestamp with leading zero", func() http.Header { h := valid(); h.Set(HeaderTimestamp, "0"+strconv.FormatInt(ts, 10)); return h }, body, ErrInvalidTimestamp},
		{"timestamp in milliseconds", func() http.Header { h := valid(); h.Set(HeaderTimestamp, strconv.FormatInt(ts*1000, 10)); return h }, body, ErrTimestampTooNew},
		{"timestamp beyond year 9999", func() http.Header { h := valid(); h.Set(HeaderTimestamp, "999999999999999999"); return h }, body, ErrTimestampTooNew},
		{"timestamp overflowing int64", func() http.Header { h := valid(); h.Set(HeaderTimestamp, "99999999999999999999"); return h }, body, ErrInvalidTimestamp},

		{"tampered body", valid, []byte(`{"a":2}`), ErrNoMatchingSignature},
		{"body with trailing newline", valid, append(append([]byte{}, body...), '\n'), ErrNoMatchingSignature},
		{"empty body", valid, nil, ErrNoMatchingSignature},
		{"tampered id", func() http.Header { h := valid(); h.Set(HeaderID, id+"x"); return h }, body, ErrNoMatchingSignature},
		{"tampered timestamp", func() http.Header { h := valid(); h.Set(HeaderTimestamp, strconv.FormatInt(ts-1, 10)); return h }, body, ErrNoMatchingSignature},
		{"signature of another secret", func() http.Header {
			h := valid()
			h.Set(HeaderSignature, Sign(mustSecret(t), id, testNow, body))
			return h
		}, body, ErrNoMatchingSignature},
		{"entry without comma", func() http.Header { h := valid(); h.Set(HeaderSignature, "v1"+b64); return h }, body, ErrNoMatchingSignature},
		{"entry with empty signature", func() http.Header { h := valid(); h.Set(HeaderSignature, "v1,"); return h }, body, ErrNoMatchingSignature},
		{"bad base64", func() http.Header { h := valid(); h.Set(HeaderSignature, "v1,"+strings.Repeat("!", 44)); return h }, body, ErrNoMatchingSignature},
		{"truncated signature", func() http.Header { h := valid(); h.Set(HeaderSignature, sig[:8]); return h }, body, ErrNoMatchingSignature},
		{"signature with extra bytes", func() http.Header { h := valid(); h.Set(HeaderSignature, sig+"AAAA"); return h }, body, ErrNoMatchingSignature},
		{"right MAC, wrong version", func() http.Header { h := valid(); h.Set(HeaderSignature, "v2,"+b64); return h }, body, ErrNoMatchingSignature},
		{"right MAC, upper-case version", func() http.Header { h := valid(); h.Set(HeaderSignature, "V1,"+b64); return h }, body, ErrNoMatchingSignature},
		{"right MAC, comma separated", func() http.Header { h := valid(); h.Set(HeaderSignature, "v1,AAAA,"+sig); return h }, body, ErrNoMatchingSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(tc.h(), tc.body)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			for _, other := range []error{ErrMissingHeaders, ErrInvalidTimestamp, ErrTimestampTooOld, ErrTimestampTooNew, ErrNoMatchingSignature} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("Verify = %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestVerifyConvenience(t *testing.T) {
	sec := mustSecret(t)
	now := time.Now()
	h := headers("msg_c", now.Unix(), Sign(sec, "msg_c", now, []byte("x")))
	if err := Verify(sec, h, []byte("x")); err != nil {
		t.Errorf("Verify = %v", err)
	}
	if err := Verify(Secret{}, h, []byte("x")); err == nil {
		t.Error("Verify with the zero Secret succeeded")
	}
	old := headers("msg_c", now.Add(-DefaultTolerance-time.Minute).Unix(), Sign(sec, "msg_c", now.Add(-DefaultTolerance-time.Minute), []byte("x")))
	if err := Verify(sec, old, []byte("x")); !errors.Is(err, ErrTimestampTooOld) {
		t.Errorf("Verify(old) = %v, want ErrTimestampTooOld", err)
	}
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful with -race")
	}
	secs := []Secret{mustSecret(t), mustSecret(t)}
	v := mustVerifier(t, secs, WithClock(fixedClock(testNow.Unix())))
	body := make([]byte, 1024)
	h := headers("msg_a", testNow.Unix(), NewSigner(secs[1]).Sign("msg_a", testNow, body))
	if err := v.Verify(h, body); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = v.Verify(h, body) }); n != 0 {
		t.Errorf("Verify allocates %v times per call, want 0", n)
	}
}

func TestAppendSignatureDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful with -race")
	}
	s := NewSigner(mustSecret(t), mustSecret(t))
	body := make([]byte, 1024)
	buf := make([]byte, 0, 128)
	want := s.Sign("msg_a", testNow, body)
	if got := string(s.AppendSignature(buf, "msg_a", testNow, body)); got != want {
		t.Fatalf("AppendSignature = %q, want %q", got, want)
	}
	if len(want) != 2*47+1 {
		t.Errorf("len = %d, want %d", len(want), 2*47+1)
	}
	if n := testing.AllocsPerRun(100, func() { buf = s.AppendSignature(buf[:0], "msg_a", testNow, body) }); n != 0 {
		t.Errorf("AppendSignature allocates %v times per call, want 0", n)
	}
}

func TestSetHeaders(t *testing.T) {
	sec := mustSecret(t)
	h := http.Header{}
	NewSigner(sec).SetHeaders(h, "msg_h", testNow, []byte("b"))
	if h.Get("Webhook-Id") != "msg_h" || h.Get("Webhook-Timestamp") != "1700000000" || h.Get("Webhook-Signature") != Sign(sec, "msg_h", testNow, []byte("b")) {
		t.Errorf("SetHeaders set %v", h)
	}
	if err := mustVerifier(t, []Secret{sec}, WithClock(fixedClock(testNow.Unix()))).Verify(h, []byte("b")); err != nil {
		t.Error(err)
	}
}

func TestSignerConcurrent(t *testing.T) {
	sec := mustSecret(t)
	s := NewSigner(sec)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				id := "msg_" + strconv.Itoa(g) + "_" + strconv.Itoa(i) + strings.Repeat("x", i*7) // growing ids exercise the scratch buffer
				body := []byte(strconv.Itoa(i))
				if got, want := s.Sign(id, testNow, body), Sign(sec, id, testNow, body); got != want {
					t.Errorf("concurrent Sign = %q, want %q", got, want)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}
