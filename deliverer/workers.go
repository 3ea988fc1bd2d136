package deliverer

import "time"

// workers runs jobs on goroutines that outlive them: a job handed over
// while a worker is idle runs on it, otherwise on a new worker. A delivery
// goes deep (HTTP client, TLS, signing), so a fresh goroutine per job grows
// its stack several times, copying it each time; a reused worker keeps the
// stack it grew. Workers idle for idleTimeout exit, so a burst leaves no
// lasting goroutines behind.
type workers struct {
	ch          chan func()
	idleTimeout time.Duration
}

func newWorkers(idleTimeout time.Duration) *workers {
	return &workers{ch: make(chan func()), idleTimeout: idleTimeout}
}

// do runs f on an idle worker or a new one; it never blocks.
func (w *workers) do(f func()) {
	select {
	case w.ch <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	t := time.NewTimer(w.idleTimeout)
	defer t.Stop()
	for {
		f()
		f = nil
		t.Reset(w.idleTimeout)
		select {
		case f = <-w.ch:
		case <-t.C:
			return
		}
	}
}
