// Package offsets tracks which records of a partition are settled so that a
// consumer with many records in flight commits only over a contiguous run of
// settled records.
//
// Kafka commits one offset per partition, a high-water mark, not a set: a
// commit of offset N says every record before N is done. With several
// deliveries in flight per partition, record 7 may finish before record 5;
// committing 8 then and crashing would lose 5. A Tracker advances its commit
// point only past records that are settled and have no unsettled record
// before them.
package offsets

import "sort"

// Tracker is the settled state of one partition. It is not safe for
// concurrent use; callers guard it with the partition's lock.
//
// Offsets must be added in increasing order (as a partition delivers them);
// gaps (compacted records, transaction markers) are allowed.
type Tracker struct {
	pending []entry // unsettled or settled-but-blocked records, in offset order
	head    int     // index of the first live entry in pending
	commit  int64   // next offset to commit; -1 = nothing to commit yet
	epoch   int32   // leader epoch of the record the commit point passed
}

type entry struct {
	offset  int64
	epoch   int32
	settled bool
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{commit: -1, epoch: -1} }

// Add records that the record at offset (with its leader epoch) is in flight.
func (t *Tracker) Add(offset int64, epoch int32) {
	t.pending = append(t.pending, entry{offset: offset, epoch: epoch})
}

// Settle marks the record at offset settled and advances the commit point
// over the contiguous settled prefix. It reports false if offset was never
// added or is already settled.
func (t *Tracker) Settle(offset int64) bool {
	live := t.pending[t.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if i == len(live) || live[i].offset != offset || live[i].settled {
		return false
	}
	live[i].settled = true
	for t.head < len(t.pending) && t.pending[t.head].settled {
		e := t.pending[t.head]
		t.commit, t.epoch = e.offset+1, e.epoch
		t.head++
	}
	// Reclaim the settled prefix once it dominates the slice.
	if t.head > 64 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		t.pending = t.pending[:n]
		t.head = 0
	}
	return true
}

// Committable returns the next offset to commit (one past the last record of
// the contiguous settled run) with its leader epoch, or ok=false if no record
// has been settled yet.
func (t *Tracker) Committable() (offset int64, epoch int32, ok bool) {
	return t.commit, t.epoch, t.commit >= 0
}

// Pending is the number of records added but not yet passed by the commit
// point (in flight, queued, or settled behind an unsettled one).
func (t *Tracker) Pending() int { return len(t.pending) - t.head }
