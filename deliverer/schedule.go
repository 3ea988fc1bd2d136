package deliverer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// DefaultSchedule is the delay before each retry, the schedule the Standard
// Webhooks spec recommends: after the first attempt (immediately), retries
// after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h — ten
// attempts over about three days.
var DefaultSchedule = Schedule{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Schedule is the delay before each retry; len(Schedule)+1 attempts in all.
type Schedule []time.Duration

// ParseSchedule reads a comma-separated list of Go durations ("5s,5m,30m").
func ParseSchedule(s string) (Schedule, error) {
	var out Schedule
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, fmt.Errorf("retry schedule: %w", err)
		}
		if d <= 0 || d%time.Millisecond != 0 {
			return nil, fmt.Errorf("retry schedule: delay %v must be positive, in whole milliseconds", d)
		}
		out = append(out, d)
	}
	return out, nil
}

func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// tiers returns the distinct delays of s, ascending: one retry topic each.
func (s Schedule) tiers() []time.Duration {
	t := slices.Clone(s)
	slices.Sort(t)
	return slices.Compact(t)
}

// tierFor returns the retry tier that carries a wait of d: the largest tier
// not longer than d (the record's due time covers the rest), or the shortest
// tier if d is shorter than all.
func tierFor(tiers []time.Duration, d time.Duration) time.Duration {
	best := tiers[0]
	for _, t := range tiers {
		if t <= d {
			best = t
		}
	}
	return best
}

// jitter spreads d by ±frac.
func jitter(d time.Duration, frac float64) time.Duration {
	if frac <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 - frac + 2*frac*rand.Float64()))
}
