package deliverer

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Schedule
		err  string
	}{
		{"5s,5m,30m", Schedule{5 * time.Second, 5 * time.Minute, 30 * time.Minute}, ""},
		{" 5s , 1m ", Schedule{5 * time.Second, time.Minute}, ""},
		{"5s,,1m,", Schedule{5 * time.Second, time.Minute}, ""},
		{"1h30m", Schedule{90 * time.Minute}, ""},
		{"250ms,250ms", Schedule{250 * time.Millisecond, 250 * time.Millisecond}, ""},
		{"", nil, ""}, // empty: the caller's default
		{" , ", nil, ""},
		{"5", nil, "retry schedule"},
		{"5x", nil, "retry schedule"},
		{"5s;5m", nil, "retry schedule"},
		{"0s", nil, "must be positive"},
		{"5s,-1m", nil, "must be positive"},
	} {
		got, err := ParseSchedule(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSchedule(%q) = %v, %v; want an error about %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestScheduleStringRoundTrip(t *testing.T) {
	if got := DefaultSchedule.String(); got != "5s,5m0s,30m0s,2h0m0s,5h0m0s,10h0m0s,14h0m0s,20h0m0s,24h0m0s" {
		t.Errorf("DefaultSchedule.String() = %q", got)
	}
	for _, s := range []Schedule{DefaultSchedule, {1500 * time.Millisecond}, {time.Second, time.Second}} {
		back, err := ParseSchedule(s.String())
		if err != nil || !slices.Equal(back, s) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v", s.String(), back, err, s)
		}
	}
	if got := (Schedule{}).String(); got != "" {
		t.Errorf("empty Schedule String() = %q", got)
	}
	if len(DefaultSchedule) != 9 {
		t.Errorf("DefaultSchedule has %d delays; the documented schedule has 9 (ten attempts)", len(DefaultSchedule))
	}
}

func TestTiers(t *testing.T) {
	s := Schedule{5 * time.Minute, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 5 * time.Second}
	orig := slices.Clone(s)
	got := s.tiers()
	if want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}; !slices.Equal(got, want) {
		t.Errorf("tiers() = %v, want %v", got, want)
	}
	if !slices.Equal(s, orig) {
		t.Errorf("tiers() modified the schedule: %v", s)
	}
	if got := DefaultSchedule.tiers(); !slices.Equal(got, []time.Duration(DefaultSchedule)) {
		t.Errorf("DefaultSchedule (ascending, distinct) tiers = %v", got)
	}
}

func TestTierFor(t *testing.T) {
	tiers := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}
	for _, tc := range []struct {
		d, want time.Duration
	}{
		{0, 5 * time.Second},           // shorter than all: the shortest
		{time.Second, 5 * time.Second}, // idem; the due time carries the rest
		{-time.Second, 5 * time.Second},
		{5 * time.Second, 5 * time.Second},
		{6 * time.Second, 5 * time.Second}, // the largest tier not longer than d
		{5*time.Minute - 1, 5 * time.Second},
		{5 * time.Minute, 5 * time.Minute},
		{29 * time.Minute, 5 * time.Minute},
		{30 * time.Minute, 30 * time.Minute},
		{10 * time.Hour, 30 * time.Minute},
	} {
		if got := tierFor(tiers, tc.d); got != tc.want {
			t.Errorf("tierFor(%v) = %v, want %v", tc.d, got, tc.want)
		}
	}
	if got := tierFor([]time.Duration{time.Minute}, time.Hour); got != time.Minute {
		t.Errorf("one tier: tierFor = %v", got)
	}
}

func TestJitterBounds(t *testing.T) {
	d := 10 * time.Second
	for _, frac := range []float64{0, -1} {
		if got := jitter(d, frac); got != d {
			t.Errorf("jitter(%v, %v) = %v, want it unchanged", d, frac, got)
		}
	}
	for _, frac := range []float64{0.2, 0.5, 0.999} {
		lo, hi := time.Duration(float64(d)*(1-frac)), time.Duration(float64(d)*(1+frac))
		minSeen, maxSeen := d, d
		for range 2000 {
			got := jitter(d, frac)
			if got < lo || got > hi {
				t.Fatalf("jitter(%v, %v) = %v, outside [%v, %v]", d, frac, got, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, got), max(maxSeen, got)
		}
		// It spreads both ways (2000 draws leave a gap this wide with
		// probability about 2·0.75^2000).
		if minSeen > d-time.Duration(float64(d)*frac/2) || maxSeen < d+time.Duration(float64(d)*frac/2) {
			t.Errorf("jitter(%v, %v) stayed within [%v, %v]", d, frac, minSeen, maxSeen)
		}
	}
	if got := jitter(0, 0.2); got != 0 {
		t.Errorf("jitter(0) = %v", got)
	}
}

func TestNewDefaultsAndScheduleCheck(t *testing.T) {
	d := newTestDeliverer(t, nil)
	c := d.cfg
	if c.Group != DefaultGroup || c.MaxInFlightPerPartition != 16 || c.MaxInFlightPerEndpoint != 64 || c.MaxQueuedPerPartition != 64 ||
		c.AttemptTimeout != 15*time.Second || !slices.Equal(c.Schedule, DefaultSchedule) || c.Jitter != 0.2 ||
		c.MaxAttempts != 3*(len(DefaultSchedule)+1) || c.RetryPartitions != 6 || c.BreakerFailures != 5 ||
		c.BreakerOpenTimeout != 30*time.Second || c.AutoDisableAfter != 5*24*time.Hour || c.Sender == nil || c.Clock == nil {
		t.Errorf("defaults: %+v", c)
	}
	// One retry topic per distinct delay, named by kafka.FormatDelay.
	if len(d.tierTopics) != len(DefaultSchedule) || d.tierTopics["webhooks.retry.5m"] != 5*time.Minute || d.tierTopics["webhooks.retry.24h"] != 24*time.Hour {
		t.Errorf("tier topics = %v", d.tierTopics)
	}
	d = newTestDeliverer(t, func(c *Config) { c.Schedule = Schedule{time.Second, time.Second, time.Minute}; c.Jitter = -1 })
	if len(d.tierTopics) != 2 || d.cfg.Jitter != -1 || d.cfg.MaxAttempts != 12 {
		t.Errorf("custom schedule: tiers %v, jitter %v, max attempts %d", d.tierTopics, d.cfg.Jitter, d.cfg.MaxAttempts)
	}

	cat := testCatalog(t)
	for _, s := range []Schedule{{0}, {time.Second, -time.Second}} {
		if _, err := New(Config{Kafka: d.cfg.Kafka, Schedule: s}, nil, cat); err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("New with schedule %v = %v, want an error", s, err)
		}
	}
	if _, err := New(Config{}, nil, cat); err == nil {
		t.Error("New without brokers succeeded")
	}
}
