package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// -print renders the table of an earlier run's results file.
func TestPrintFile(t *testing.T) {
	dir := t.TempDir()
	res := Results{Date: "2026-12-01 18:19 UTC", Machine: "2 cores", Runs: []*BrokerResult{{
		Broker:        "kfake",
		WarmupSeconds: 12.4,
		Throughput:    &ThroughputResult{PerSecond: 13970},
		HalfRate: &HalfRateResult{PerSecond: 6986, P50ms: 41.5, P95ms: 95.4, P99ms: 125.9,
			Stages: map[string]StageLatency{"to_router": {MeanMs: 10}, "router_txn": {MeanMs: 17}, "to_deliverer": {MeanMs: 23}, "http": {MeanMs: 11}}},
		Trickle: &HalfRateResult{PerSecond: 100, P50ms: 20.4, P95ms: 31.5, P99ms: 36.9},
		AtLeastOnce: &LatencyRuns{
			HalfRate: &HalfRateResult{P50ms: 12.5, P95ms: 30.1, P99ms: 48.2,
				Stages: map[string]StageLatency{"to_router": {MeanMs: 8, P99ms: 20}, "router_txn": {MeanMs: 2, P99ms: 9}, "to_deliverer": {MeanMs: 3, P99ms: 12}, "http": {MeanMs: 1, P99ms: 7}}},
			Trickle: &HalfRateResult{P50ms: 9.5, P95ms: 12.25, P99ms: 17},
		},
		Baseline:     &BaselineResult{},
		BaselineFast: &BaselineResult{},
		Scale: []*ScaleResult{{Endpoints: 10, PipelinePerSecond: 14000, PipelineOfMainRun: 1.002},
			{Endpoints: 5000, PipelinePerSecond: 11000, PipelineOfMainRun: 0.787, ReferencePerSecond: []float64{12500, 13500}, PipelineOfReference: 0.846,
				PipelineRouterCPU1000: 0.04, PipelineDelivererCPU1000: 0.07, PipelineBrokerCPU1000: 0.08, PipelineBenchCPU1000: 0.01,
				ReferenceCPU1000: &ProcessCPU{Router: 0.01, Deliverer: 0.05, Broker: 0.03, Receivers: 0.01}}},
		Isolation: &IsolationResult{IsolationRound: IsolationRound{Baseline: 15000, WithBlackHole: 14250, Ratio: 0.95},
			Rounds: []IsolationRound{{Ratio: 0.72}, {Ratio: 0.95}, {Ratio: 1.04}}},
	}}}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "r.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printFile(&out, path); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2026-12-01 18:19 UTC", "13970", "41.5 / 95.4 / 125.9", "10 / 17 / 23 / 11", "100, 20.4 / 31.5 / 36.9",
		"12.5 / 30.1 / 48.2", "9.5 / 12.2 / 17.0", "8 / 2 / 3 / 1", "20 / 9 / 12 / 7", "(Go), 12 s",
		"15000 / 14250 (95 %)", "72 %, 95 %, 104 %", "5000 endpoints: delivered/s, pipeline (of 100-ep)", "11000 (79 %)",
		"5000 endpoints: 100-ep pipelines before / after /s (pipeline of their mean)", "12500 / 13500 (85 %)",
		"5000 endpoints: 100-ep pipelines CPU s/1,000 rt / dl / broker / recv", "0.010 / 0.050 / 0.030 / 0.010"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "10 endpoints: 100-ep pipelines") { // neither reference row
		t.Errorf("table has a reference row for a run without references:\n%s", out.String())
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"runs":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := printFile(&out, empty); err == nil || !strings.Contains(err.Error(), "no runs") {
		t.Errorf("printFile of a file without runs = %v", err)
	}
	if err := printFile(&out, filepath.Join(dir, "missing.json")); err == nil {
		t.Error("printFile of a missing file succeeded")
	}
}

// steadyRateFrom measures a later batch alone: the first batch's samples,
// however fast, do not count.
func TestSteadyRateFrom(t *testing.T) {
	var m marks
	t0 := time.Unix(0, 0)
	for i := 0; i <= 10; i++ { // first batch: 100 deliveries in 1 s
		m.add(t0.Add(time.Duration(i)*100*time.Millisecond), int64(10*i))
	}
	for i := 1; i <= 100; i++ { // second batch: 100 more in 10 s
		m.add(t0.Add(time.Second+time.Duration(i)*100*time.Millisecond), int64(100+i))
	}
	if got := m.steadyRateFrom(100, 200); got < 9.99 || got > 10.01 {
		t.Errorf("steadyRateFrom(100, 200) = %v, want 10", got)
	}
	if got := m.steadyRate(100); got < 99.9 || got > 100.1 {
		t.Errorf("steadyRate(100) = %v, want 100", got)
	}
	if got := m.steadyRateFrom(200, 300); got != 0 {
		t.Errorf("steadyRateFrom past the samples = %v, want 0", got)
	}
}

// The median round is the middle one by ratio, whatever order the rounds
// ran in; with an even count, the lower middle one.
func TestMedianRound(t *testing.T) {
	r := func(alone, hole float64) IsolationRound {
		return IsolationRound{Baseline: alone, WithBlackHole: hole, Ratio: hole / alone}
	}
	for _, tc := range []struct {
		rounds []IsolationRound
		want   IsolationRound
	}{
		{nil, IsolationRound{}},
		{[]IsolationRound{r(100, 72)}, r(100, 72)},
		{[]IsolationRound{r(16028, 11609), r(15000, 15300), r(9000, 8700)}, r(9000, 8700)},
		{[]IsolationRound{r(100, 110), r(100, 50), r(100, 90), r(100, 95)}, r(100, 90)},
	} {
		if got := medianRound(tc.rounds); got != tc.want {
			t.Errorf("medianRound(%v) = %v, want %v", tc.rounds, got, tc.want)
		}
	}
}
