package offsets

import (
	"math/rand/v2"
	"testing"
)

func TestCommitOnlyOverContiguousRun(t *testing.T) {
	tr := NewTracker()
	if _, _, ok := tr.Committable(); ok {
		t.Fatal("empty tracker has something to commit")
	}
	for o := int64(10); o < 15; o++ {
		tr.Add(o, 3)
	}
	tr.Settle(12)
	tr.Settle(14)
	if _, _, ok := tr.Committable(); ok {
		t.Fatal("commit point moved past unsettled offset 10")
	}
	tr.Settle(10)
	if off, ep, _ := tr.Committable(); off != 11 || ep != 3 {
		t.Fatalf("commit = %d (epoch %d), want 11 (epoch 3)", off, ep)
	}
	tr.Settle(11)
	if off, _, _ := tr.Committable(); off != 13 {
		t.Fatalf("commit = %d, want 13", off)
	}
	tr.Settle(13)
	if off, _, _ := tr.Committable(); off != 15 {
		t.Fatalf("commit = %d, want 15", off)
	}
	if tr.Pending() != 0 {
		t.Fatalf("pending = %d, want 0", tr.Pending())
	}
}

func TestGapsAndUnknownOffsets(t *testing.T) {
	tr := NewTracker()
	tr.Add(5, 0)
	tr.Add(9, 0) // 6..8 were transaction markers or compacted away
	if tr.Settle(7) {
		t.Fatal("settled an offset that was never added")
	}
	tr.Settle(9)
	if tr.Settle(9) {
		t.Fatal("settled the same offset twice")
	}
	tr.Settle(5)
	if off, _, _ := tr.Committable(); off != 10 {
		t.Fatalf("commit = %d, want 10", off)
	}
}

// TestRandomOrder settles offsets in random order and checks the commit point
// against a model after every step, across slice compaction.
func TestRandomOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tr := NewTracker()
	const n = 5000
	done := make([]bool, n)
	for o := 0; o < n; o++ {
		tr.Add(int64(o), 0)
	}
	order := r.Perm(n)
	// Bias towards nearly-in-order settlement, as real deliveries are.
	for i := range order {
		j := i + r.IntN(8)
		if j < n {
			order[i], order[j] = order[j], order[i]
		}
	}
	for _, o := range order {
		if !tr.Settle(int64(o)) {
			t.Fatalf("settle %d refused", o)
		}
		done[o] = true
		want := 0
		for want < n && done[want] {
			want++
		}
		got, _, ok := tr.Committable()
		if want == 0 && ok || want > 0 && got != int64(want) {
			t.Fatalf("after settling %d: commit = %d (ok %v), want %d", o, got, ok, want)
		}
		if tr.Pending() != n-want {
			t.Fatalf("pending = %d, want %d", tr.Pending(), n-want)
		}
	}
}

func BenchmarkAddSettle(b *testing.B) {
	tr := NewTracker()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.Add(int64(i), 0)
		if i >= 16 {
			tr.Settle(int64(i - 16))
		}
	}
}
