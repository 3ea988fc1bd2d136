package codec

import (
	"bytes"
	"errors"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, fp := range []uint64{0, 1, 0x0102030405060708, ^uint64(0)} {
		b := AppendHeader([]byte("prefix"), fp)
		b = append(b, "body"...)
		got, body, err := SplitHeader(b[len("prefix"):])
		if err != nil {
			t.Fatal(err)
		}
		if got != fp || string(body) != "body" {
			t.Errorf("SplitHeader = %x, %q; want %x, body", got, body, fp)
		}
	}
	// Little-endian, after the C3 01 marker.
	want := []byte{0xc3, 0x01, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}
	if got := AppendHeader(nil, 0x0102030405060708); !bytes.Equal(got, want) {
		t.Errorf("AppendHeader = %x, want %x", got, want)
	}
}

func TestSplitHeaderErrors(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{0xc3},
		{0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7},
		{0xc3, 0x02, 1, 2, 3, 4, 5, 6, 7, 8},
		{0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8},
		{0x4f, 0x62, 0x6a, 0x01, 0, 0, 0, 0, 0, 0}, // an OCF file
	} {
		if _, _, err := SplitHeader(b); !errors.Is(err, ErrNotSingleObject) {
			t.Errorf("SplitHeader(%x) error = %v, want ErrNotSingleObject", b, err)
		}
	}
	// A header with an empty body is valid framing.
	if _, body, err := SplitHeader(AppendHeader(nil, 7)); err != nil || len(body) != 0 {
		t.Errorf("header only: body %x, err %v", body, err)
	}
}

func TestUnknownSchemaNamesFingerprint(t *testing.T) {
	err := unknownSchema(0xdeadbeef)
	if !errors.Is(err, ErrUnknownSchema) {
		t.Fatal("not ErrUnknownSchema")
	}
	if want := "00000000deadbeef"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("%q does not name the fingerprint %s", err, want)
	}
}
