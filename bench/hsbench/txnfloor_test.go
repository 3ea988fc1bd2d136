package main

import (
	"context"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/kafkatest"
)

// The floor reads back every committed record and reports sane quantiles.
func TestTxnFloor(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := txnFloor(ctx, &broker{kind: c.Kind, addrs: c.Addrs}, 3, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Transactions == 0 || res.PerSecond <= 0 {
		t.Fatalf("no transactions: %+v", res)
	}
	if want := int64(res.Transactions * 3); res.VisibleRecorded != want {
		t.Errorf("consumer saw %d records, want %d (3 per transaction)", res.VisibleRecorded, want)
	}
	if res.VisibleP50ms <= 0 || res.VisibleP99ms < res.VisibleP50ms || res.ProduceP50ms <= 0 || res.CommitP50ms <= 0 {
		t.Errorf("quantiles: %+v", res)
	}
}
