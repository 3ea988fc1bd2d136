package webhook

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || a.IsZero() {
		t.Fatal("NewSecret returned equal or zero secrets")
	}
	if len(a.key) != 32 {
		t.Errorf("key is %d bytes, want 32", len(a.key))
	}
	s := a.String()
	if !strings.HasPrefix(s, "whsec_") || len(s) != len("whsec_")+44 || !strings.HasSuffix(s, "=") {
		t.Errorf("String() = %q, want whsec_ + 44 padded base64 characters", s)
	}
	back, err := ParseSecret(s)
	if err != nil || back != a {
		t.Errorf("ParseSecret(String()) = %v, %v", back, err)
	}
}

func TestParseSecret(t *testing.T) {
	key := []byte("0123456789abcdefghijklmnopqrstuvwxyz") // 36 bytes: no padding needed
	key25 := key[:25]                                     // 25 bytes: "==" padding
	key26 := key[:26]                                     // 26 bytes: "=" padding
	std := base64.StdEncoding.EncodeToString
	raw := base64.RawStdEncoding.EncodeToString

	valid := []struct {
		in   string
		key  []byte
		want string // String()
	}{
		{"whsec_" + std(key), key, "whsec_" + std(key)},
		{std(key), key, "whsec_" + std(key)},
		{"whsec_" + std(key25), key25, "whsec_" + std(key25)},
		{"whsec_" + raw(key25), key25, "whsec_" + std(key25)},
		{raw(key25), key25, "whsec_" + std(key25)},
		{"whsec_" + std(key26), key26, "whsec_" + std(key26)},
		{"whsec_" + raw(key26), key26, "whsec_" + std(key26)},
		{"whsec_" + std(make([]byte, 64)), make([]byte, 64), "whsec_" + std(make([]byte, 64))},
	}
	for _, tc := range valid {
		s, err := ParseSecret(tc.in)
		if err != nil {
			t.Errorf("ParseSecret(%q): %v", tc.in, err)
			continue
		}
		if s.key != string(tc.key) {
			t.Errorf("ParseSecret(%q) key = %x, want %x", tc.in, s.key, tc.key)
		}
		if got := s.String(); got != tc.want {
			t.Errorf("ParseSecret(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}

	invalid := []string{
		"",
		"whsec_",
		"whsec_" + std(make([]byte, 23)),      // too short
		"whsec_" + std(make([]byte, 65)),      // too long
		"whsec_" + strings.Repeat("A", 10000), // far too long
		"whsec_" + std(key)[:len(std(key))-1] + "!",                                      // not base64
		"whsec_" + base64.URLEncoding.EncodeToString([]byte("\xff\xff\xfe"+string(key))), // URL alphabet
		"whsec_" + std(key25) + "=",                                                      // extra padding
		"whsec_" + std(key25)[:len(std(key25))-1],                                        // half the padding
		"whsec_" + std(key)[:20] + "\n" + std(key)[20:],                                  // line break
		" whsec_" + std(key),                                                             // leading space
		"whsec_" + std(key) + " ",                                                        // trailing space
		"whsec_" + std(key)[:5],                                                          // length 1 mod 4
	}
	for _, in := range invalid {
		if s, err := ParseSecret(in); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ParseSecret(%q) = %v, %v; want ErrInvalidSecret", in, s, err)
		}
	}
}

func TestSecretLogValueRedacts(t *testing.T) {
	s, _ := NewSecret()
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", s)
	if strings.Contains(buf.String(), s.String()[6:]) || !strings.Contains(buf.String(), "REDACTED") {
		t.Errorf("slog output leaks the secret: %s", buf.String())
	}
}

func TestZeroSecretRejected(t *testing.T) {
	if _, err := NewVerifier([]Secret{{}}); err == nil {
		t.Error("NewVerifier accepted the zero Secret")
	}
	if _, err := NewVerifier(nil); err == nil {
		t.Error("NewVerifier accepted no secrets")
	}
	for name, f := range map[string]func(){
		"NewSigner()":       func() { NewSigner() },
		"NewSigner(zero)":   func() { NewSigner(Secret{}) },
		"Sign(zero Secret)": func() { Sign(Secret{}, "id", testNow, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}
