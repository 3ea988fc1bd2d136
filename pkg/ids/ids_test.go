package ids

import (
	"sort"
	"strings"
	"testing"
	"time"
)

func TestNewSortsByTime(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	var got []string
	for i := 0; i < 100; i++ {
		got = append(got, New("evt_", base.Add(time.Duration(i)*time.Millisecond)))
	}
	if !sort.StringsAreSorted(got) {
		t.Fatalf("ids are not sorted by time: %v", got[:5])
	}
	for _, id := range got {
		if len(id) != 30 || !strings.HasPrefix(id, "evt_") {
			t.Fatalf("bad id %q", id)
		}
		for _, c := range id[4:] {
			if !strings.ContainsRune(alphabet, c) {
				t.Fatalf("id %q has %q outside the alphabet", id, c)
			}
		}
	}
}

func TestNewIsUnique(t *testing.T) {
	now := time.Now()
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := New("ep_", now)
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestEncodeKnownValue(t *testing.T) {
	// The ULID spec's example timestamp 1469918176385 encodes as 01ARYZ6S41.
	id := New("", time.UnixMilli(1469918176385))
	if id[:10] != "01ARYZ6S41" {
		t.Fatalf("timestamp part = %q, want 01ARYZ6S41", id[:10])
	}
}
