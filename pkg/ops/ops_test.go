package ops

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/registry"
)

func TestParseFrom(t *testing.T) {
	now := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		want    From
		wantErr string
	}{
		{in: "earliest", want: From{Earliest: true}},
		{in: " EARLIEST ", want: From{Earliest: true}},
		{in: "-2h", want: From{Time: now.Add(-2 * time.Hour)}},
		{in: "-90m", want: From{Time: now.Add(-90 * time.Minute)}},
		{in: "2026-11-23T17:00:00Z", want: From{Time: time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)}},
		{in: "2026-11-23T18:30:00+02:00", want: From{Time: time.Date(2026, 11, 23, 16, 30, 0, 0, time.UTC)}},
		{in: "2026-11-23T17:00:00.250Z", want: From{Time: time.Date(2026, 11, 23, 17, 0, 0, 250e6, time.UTC)}},
		{in: "", wantErr: "empty"},
		{in: "2h", wantErr: "must be negative, e.g. -2h"},
		{in: "-2x", wantErr: "unknown unit"},
		{in: "yesterday", wantErr: "want an RFC 3339 time"},
		{in: "2026-11-23", wantErr: "want an RFC 3339 time"},
		{in: "2026-11-24T00:00:00Z", wantErr: "in the future"},
	} {
		got, err := ParseFrom(tc.in, now)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseFrom(%q) = %v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.Earliest != tc.want.Earliest || !got.Time.Equal(tc.want.Time) {
			t.Errorf("ParseFrom(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestEndpointChange(t *testing.T) {
	if !(EndpointChange{}).IsZero() {
		t.Error("the zero change is not zero")
	}
	base := registry.Endpoint{
		ID: "ep_1", TenantID: "acme", URL: "http://a", EventTypes: []string{"*"}, Secrets: []string{"s"}, Partitions: 1,
		Ordered: true, RateLimit: 5, MaxInFlight: 3, RetryScheduleMS: []int64{1000}, Description: "d",
	}
	url, ordered, desc := "http://b", false, ""
	sched := []time.Duration{5 * time.Second, time.Minute}
	e := base.Clone()
	c := EndpointChange{URL: &url, Ordered: &ordered, RetrySchedule: &sched, Description: &desc}
	if c.IsZero() {
		t.Fatal("change is zero")
	}
	if err := c.Apply(e); err != nil {
		t.Fatal(err)
	}
	if e.URL != "http://b" || e.Ordered || !slices.Equal(e.RetryScheduleMS, []int64{5000, 60000}) || e.Description != "" {
		t.Errorf("changed fields not applied: %+v", e)
	}
	if e.RateLimit != 5 || e.MaxInFlight != 3 || e.Partitions != 1 || !slices.Equal(e.EventTypes, []string{"*"}) || !slices.Equal(e.Secrets, []string{"s"}) {
		t.Errorf("fields not in the change changed: %+v", e)
	}
	empty := []time.Duration{}
	if err := (EndpointChange{RetrySchedule: &empty}).Apply(e); err != nil || len(e.RetryScheduleMS) != 0 {
		t.Errorf("empty schedule: %v, %v", e.RetryScheduleMS, err)
	}
	bad := []time.Duration{time.Second, 1500 * time.Microsecond}
	var verr *registry.ValidationError
	if err := (EndpointChange{RetrySchedule: &bad}).Apply(e); !errors.As(err, &verr) || verr.Field != "retry_schedule_ms" {
		t.Errorf("sub-millisecond delay: %v", err)
	}
}

func TestRetryScheduleMS(t *testing.T) {
	got, err := RetryScheduleMS([]time.Duration{time.Millisecond, 5 * time.Second, 24 * time.Hour})
	if err != nil || !slices.Equal(got, []int64{1, 5000, 86400000}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range [][]time.Duration{{0}, {-time.Second}, {time.Microsecond}} {
		if _, err := RetryScheduleMS(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if got, err := RetryScheduleMS(nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("nil schedule: %v, %v; want empty, non-nil", got, err)
	}
}

func TestDeadLetterFilter(t *testing.T) {
	dl := &deliverer.DeadLetter{EndpointID: "ep_1", Reason: deliverer.ReasonExhausted, EventID: "evt_1"}
	for _, tc := range []struct {
		f    DeadLetterFilter
		want bool
	}{
		{DeadLetterFilter{}, true},
		{DeadLetterFilter{EndpointID: "ep_1"}, true},
		{DeadLetterFilter{EndpointID: "ep_2"}, false},
		{DeadLetterFilter{Reason: deliverer.ReasonExhausted, EventID: "evt_1"}, true},
		{DeadLetterFilter{Reason: deliverer.ReasonRejected}, false},
		{DeadLetterFilter{EndpointID: "ep_1", EventID: "evt_2"}, false},
	} {
		if got := tc.f.Match(dl); got != tc.want {
			t.Errorf("%+v.Match = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]struct {
		p  int32
		o  int64
		ok bool
	}{
		"0/0": {0, 0, true}, "2/12345": {2, 12345, true}, "x/1": {0, 0, false}, "1": {0, 0, false}, "1/": {0, 0, false},
	} {
		p, o, ok := parseRef(in)
		if ok != want.ok || ok && (p != want.p || o != want.o) {
			t.Errorf("parseRef(%q) = %d, %d, %v", in, p, o, ok)
		}
	}
	if got := letterRef(3, 42); got != "3/42" {
		t.Errorf("letterRef = %q", got)
	}
}

func TestSkipSummary(t *testing.T) {
	r := &RedriveReport{Skipped: []Skipped{
		{EndpointID: "ep_b", Reason: SkipUnknownEndpoint}, {EndpointID: "ep_a", Reason: SkipUnknownEndpoint},
		{EndpointID: "ep_b", Reason: SkipUnknownEndpoint}, {EndpointID: "ep_c", Reason: SkipDeletedEndpoint},
	}}
	want := []string{"endpoint deleted: 1 (ep_c ×1)", "unknown endpoint: 3 (ep_a ×1, ep_b ×2)"}
	if got := r.SkipSummary(); !slices.Equal(got, want) {
		t.Errorf("SkipSummary = %q, want %q", got, want)
	}
}
