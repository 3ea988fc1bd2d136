package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	a := f.After(2 * time.Second)
	b := f.After(time.Second)
	if f.Waiters() != 2 {
		t.Fatalf("waiters = %d", f.Waiters())
	}
	f.Advance(time.Second)
	select {
	case <-b:
	default:
		t.Fatal("1s waiter did not fire at 1s")
	}
	select {
	case <-a:
		t.Fatal("2s waiter fired at 1s")
	default:
	}
	f.Advance(time.Second)
	if got := <-a; !got.Equal(time.Unix(2, 0)) {
		t.Fatalf("fired with %v", got)
	}
	if f.Waiters() != 0 {
		t.Fatalf("waiters left: %d", f.Waiters())
	}
}

func TestFakeZeroDelayFiresAtOnce(t *testing.T) {
	f := NewFake(time.Unix(5, 0))
	select {
	case <-f.After(0):
	default:
		t.Fatal("After(0) did not fire")
	}
}
