package deliverer

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFetch records the calls a pauser makes and the paused set they leave.
type fakeFetch struct {
	mu     sync.Mutex
	calls  int
	paused map[topicPartition]bool
}

func (f *fakeFetch) PauseFetchPartitions(tps map[string][]int32) map[string][]int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for t, ps := range tps {
		for _, p := range ps {
			f.paused[topicPartition{t, p}] = true
		}
	}
	return nil
}

func (f *fakeFetch) ResumeFetchPartitions(tps map[string][]int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for t, ps := range tps {
		for _, p := range ps {
			delete(f.paused, topicPartition{t, p})
		}
	}
}

func (f *fakeFetch) state() (int, []topicPartition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, slices.SortedFunc(maps.Keys(f.paused), func(a, b topicPartition) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
}

// Decisions piled up before a flush cost one call per direction, and the
// latest decision per partition is the one applied.
func TestPauserBatchesLatestDecision(t *testing.T) {
	f := &fakeFetch{paused: map[topicPartition]bool{}}
	p := newPauser()
	p.fetch = f
	for i := range int32(1000) {
		p.set(topicPartition{"a", i}, true)
	}
	p.set(topicPartition{"a", 7}, false) // changed its mind
	p.set(topicPartition{"b", 0}, false)
	p.flush()
	calls, paused := f.state()
	if calls != 2 {
		t.Errorf("%d calls for 1,002 decisions, want 2 (one pause, one resume)", calls)
	}
	if len(paused) != 999 || slices.Contains(paused, topicPartition{"a", 7}) {
		t.Errorf("%d partitions paused (a/7 among them: %v), want 999 without a/7", len(paused), slices.Contains(paused, topicPartition{"a", 7}))
	}
	p.flush() // nothing recorded since: no call
	if calls, _ := f.state(); calls != 2 {
		t.Errorf("an empty flush made calls: %d", calls)
	}
}

// A revoked partition's pending decision is dropped, not applied after the
// revocation resumed it.
func TestPauserResumeNowDropsPending(t *testing.T) {
	f := &fakeFetch{paused: map[topicPartition]bool{}}
	p := newPauser()
	p.fetch = f
	p.set(topicPartition{"a", 1}, true)
	p.set(topicPartition{"a", 2}, true)
	p.resumeNow(f, map[string][]int32{"a": {1}})
	p.flush()
	if _, paused := f.state(); !slices.Equal(paused, []topicPartition{{"a", 2}}) {
		t.Errorf("paused after revoking a/1: %v, want only a/2", paused)
	}
}

// run applies decisions as they come, until its context ends.
func TestPauserRun(t *testing.T) {
	f := &fakeFetch{paused: map[topicPartition]bool{}}
	p := newPauser()
	p.fetch = f
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	var wg sync.WaitGroup
	for g := range int32(8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p.set(topicPartition{"t", g}, i%2 == 0) // ends resumed (i = 199)
			}
			p.set(topicPartition{"t", g + 100}, true)
		}()
	}
	wg.Wait()
	want := []topicPartition{{"t", 100}, {"t", 101}, {"t", 102}, {"t", 103}, {"t", 104}, {"t", 105}, {"t", 106}, {"t", 107}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, paused := f.state(); slices.Equal(paused, want) {
			break
		}
		if time.Now().After(deadline) {
			_, paused := f.state()
			t.Fatalf("paused %v, want %v", paused, want)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
