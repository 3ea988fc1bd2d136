package deliverer

import (
	"context"
	"sync"
)

// fetchPauser is the part of *kgo.Client that pauses and resumes fetching.
type fetchPauser interface {
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

// pauser applies the partitions' decisions to pause and resume fetching in
// batches. The client copies its whole set of paused partitions on every
// pause or resume call, so one call per decision costs O(partitions): with
// 5,000 endpoints under a backlog, where each partition pauses at its share
// of MaxQueued (a few records) and resumes at half of it, those calls took
// a sixth of the deliverer's CPU. Decisions are recorded, the latest per
// partition winning, and one goroutine applies all that have piled up in
// one call each for pausing and resuming.
type pauser struct {
	fetch fetchPauser // set before run starts
	mu    sync.Mutex  // guards want
	want  map[topicPartition]bool
	apply sync.Mutex // held while decisions are applied and by resumeNow
	wake  chan struct{}
}

func newPauser() *pauser {
	return &pauser{want: map[topicPartition]bool{}, wake: make(chan struct{}, 1)}
}

// set records that tp's fetching should be paused (or resumed).
func (p *pauser) set(tp topicPartition, pause bool) {
	p.mu.Lock()
	p.want[tp] = pause
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run applies recorded decisions until ctx ends.
func (p *pauser) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			p.flush()
		}
	}
}

// flush applies every decision recorded so far.
func (p *pauser) flush() {
	p.apply.Lock()
	defer p.apply.Unlock()
	p.mu.Lock()
	want := p.want
	if len(want) == 0 {
		p.mu.Unlock()
		return
	}
	p.want = make(map[topicPartition]bool, len(want))
	p.mu.Unlock()
	pause, resume := map[string][]int32{}, map[string][]int32{}
	for tp, paused := range want {
		if paused {
			pause[tp.topic] = append(pause[tp.topic], tp.partition)
		} else {
			resume[tp.topic] = append(resume[tp.topic], tp.partition)
		}
	}
	if len(pause) > 0 {
		p.fetch.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		p.fetch.ResumeFetchPartitions(resume)
	}
}

// resumeNow drops the decisions recorded for tps and resumes them on cl at
// once, so that no decision made for a revoked or lost partition is
// applied after it (a partition assigned again starts unpaused).
func (p *pauser) resumeNow(cl fetchPauser, tps map[string][]int32) {
	p.apply.Lock()
	defer p.apply.Unlock()
	p.mu.Lock()
	for topic, ps := range tps {
		for _, part := range ps {
			delete(p.want, topicPartition{topic, part})
		}
	}
	p.mu.Unlock()
	cl.ResumeFetchPartitions(tps)
}
