package quorumkit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func newTable(t *testing.T) *LeaseTable {
	t.Helper()
	tab, err := NewLeaseTable(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Close() })
	return tab
}

func waitQueued(t *testing.T, tab *LeaseTable, resource string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if q, _ := tab.QueueLen(resource); q >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%d waiters never queued on %s", n, resource)
}

func TestLeaseFIFOHandOffAndFence(t *testing.T) {
	tab := newTable(t)
	ctx := context.Background()
	first, err := tab.Acquire(ctx, "db", "a", time.Minute, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Lease, 2)
	for i, owner := range []string{"b", "c"} {
		go func(owner string) {
			l, err := tab.Acquire(ctx, "db", owner, time.Minute, Exclusive)
			if err != nil {
				t.Error(err)
			}
			got <- l
			if err := tab.Release(l); err != nil {
				t.Error(err)
			}
		}(owner)
		waitQueued(t, tab, "db", i+1)
	}
	if err := tab.Release(first); err != nil {
		t.Fatal(err)
	}
	second, third := <-got, <-got
	if second.Owner != "b" || third.Owner != "c" {
		t.Fatalf("FIFO broken: %s then %s", second.Owner, third.Owner)
	}
	if !(first.Token < second.Token && second.Token < third.Token) {
		t.Fatalf("tokens not increasing: %d %d %d", first.Token, second.Token, third.Token)
	}
	fence, err := NewFence()
	if err != nil {
		t.Fatal(err)
	}
	defer fence.Close()
	if err := fence.Check("db", third.Token); err != nil {
		t.Fatal(err)
	}
	if err := fence.Check("db", first.Token); !errors.Is(err, ErrStaleToken) {
		t.Fatalf("stale token accepted: %v", err)
	}
	// Renew/release errors keep expired and not-held apart.
	if err := tab.Release(first); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("double release: %v", err)
	}
	if _, err := tab.TryAcquire("db", "", time.Second, Exclusive); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("empty owner: %v", err)
	}
}

func TestContextCancelsABlockedAcquire(t *testing.T) {
	tab := newTable(t)
	held, err := tab.TryAcquire("r", "holder", time.Minute, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := tab.Acquire(ctx, "r", "waiter", time.Minute, Exclusive)
		res <- err
	}()
	waitQueued(t, tab, "r", 1)
	start := time.Now()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled acquire never returned")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if q, _ := tab.QueueLen("r"); q != 0 {
		t.Fatalf("the cancelled waiter is still queued (%d)", q)
	}
	// A deadline works the same way; nothing was granted.
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer dcancel()
	if _, err := tab.Acquire(dctx, "r", "late", time.Minute, Exclusive); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if err := tab.Release(held); err != nil {
		t.Fatal(err)
	}
}

func TestCloseCancelsBlockedAcquires(t *testing.T) {
	tab, err := NewLeaseTable(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.TryAcquire("r", "holder", time.Minute, Exclusive); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tab.Acquire(context.Background(), "r", "w", time.Minute, Shared)
			errs <- err
		}()
	}
	waitQueued(t, tab, "r", 4)
	tab.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != ErrClosed {
			t.Fatalf("blocked acquire after Close: %v", err)
		}
	}
	if _, err := tab.TryAcquire("r", "x", time.Second, Exclusive); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

func TestDetector(t *testing.T) {
	d, err := NewFailureDetector(DetectorConfig{Threshold: 8, MaxSamples: 100,
		MinStdDev: 100 * time.Millisecond, FirstHeartbeatEstimate: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const s = uint64(time.Second)
	for i := uint64(1); i <= 10; i++ {
		if err := d.Heartbeat("peer", i*s); err != nil {
			t.Fatal(err)
		}
	}
	up, err := d.IsAvailable("peer", 10*s+s/2)
	if err != nil || !up {
		t.Fatalf("available right after a heartbeat: %v %v", up, err)
	}
	phi, _ := d.Phi("peer", 30*s)
	if phi < 8 {
		t.Fatalf("phi after 20 silent seconds: %v", phi)
	}
	if err := d.Heartbeat("peer", 5*s); err != nil {
		t.Fatalf("an out-of-order heartbeat is not an error: %v", err)
	}
	if _, err := d.Phi("nobody", s); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown node: %v", err)
	}
	if _, err := NewFailureDetector(DetectorConfig{Threshold: -1}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("bad config: %v", err)
	}
}
