package deliverer

import (
	"sync"
	"testing"
	"time"
)

func TestWorkersRunEveryJobAndReuseIdleOnes(t *testing.T) {
	w := newWorkers(time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	for i := range 100 {
		wg.Add(1)
		w.do(func() {
			defer wg.Done()
			mu.Lock()
			seen[i] = true
			mu.Unlock()
		})
		if i%10 == 9 {
			wg.Wait() // every worker idle again: the next jobs reuse them
		}
	}
	wg.Wait()
	if len(seen) != 100 {
		t.Fatalf("%d of 100 jobs ran", len(seen))
	}
	// The workers are idle now: a handover is taken by one of them (a
	// blocking send succeeds only if a worker receives it), no new
	// goroutine needed.
	done := make(chan struct{})
	select {
	case w.ch <- func() { close(done) }:
	case <-time.After(5 * time.Second):
		t.Fatal("no idle worker took a job after the earlier jobs finished")
	}
	<-done
}

func TestWorkersExitWhenIdle(t *testing.T) {
	w := newWorkers(time.Millisecond)
	ran := make(chan struct{})
	w.do(func() { close(ran) })
	<-ran
	// After the idle timeout the worker is gone: nobody takes a handover.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case w.ch <- func() {}:
			time.Sleep(5 * time.Millisecond) // a worker was still idle; it ran the no-op
			continue
		default:
			return
		}
	}
	t.Fatal("a worker still takes jobs long after its idle timeout")
}
