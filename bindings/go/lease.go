package quorumkit

/*
#include <quorumkit.h>
*/
import "C"

import (
	"context"
	"sync"
	"time"
)

// Mode is exclusive (one holder) or shared (many shared holders).
type Mode uint32

// Lease modes.
const (
	Exclusive Mode = C.QK_LEASE_EXCLUSIVE
	Shared    Mode = C.QK_LEASE_SHARED
)

// Lease is a granted lease. Pass the same resource and owner to renew or
// release it. Token is its fencing token; ExpiresAtNs is on the table's
// clock (LeaseTable.Now).
type Lease struct {
	Resource    string
	Owner       string
	Token       uint64
	ExpiresAtNs uint64
	Mode        Mode
}

// LeaseTable is a table of expiring shared/exclusive locks with fencing
// tokens and FIFO blocking acquires (qk_lease_table).
type LeaseTable struct {
	// Every call holds mu for reading; Close takes it for writing after
	// cancelling the blocked acquires (closing), so a free never races a call.
	mu        sync.RWMutex
	p         *C.qk_lease_table
	closing   chan struct{}
	closeOnce sync.Once
}

// NewLeaseTable makes a table on the library's monotonic clock. After a
// lease expires without release its resource grants nothing for lockDelay.
func NewLeaseTable(lockDelay time.Duration) (*LeaseTable, error) {
	var e C.qk_error
	var p *C.qk_lease_table
	if err := check(C.qk_lease_table_new(C.uint64_t(lockDelay), &p, &e), &e); err != nil {
		return nil, err
	}
	return &LeaseTable{p: p, closing: make(chan struct{})}, nil
}

// Close frees the table. Blocked acquires return ErrClosed.
func (t *LeaseTable) Close() error {
	t.closeOnce.Do(func() { close(t.closing) })
	t.mu.Lock()
	defer t.mu.Unlock()
	C.qk_lease_table_free(t.p)
	t.p = nil
	return nil
}

func (t *LeaseTable) lease(resource, owner string, l *C.qk_lease) Lease {
	return toLease(resource, owner, l)
}

// toLease is a qk_lease with its names (LeaseTable and LeaseClient).
func toLease(resource, owner string, l *C.qk_lease) Lease {
	return Lease{Resource: resource, Owner: owner, Token: uint64(l.token),
		ExpiresAtNs: uint64(l.expires_at_ns), Mode: Mode(l.mode)}
}

// Acquire blocks until the lease is granted (FIFO), ctx is done (then it
// returns ctx.Err(), holding nothing) or the table is closed (ErrClosed).
// The wait runs in the library; ctx's cancellation reaches it through a
// qk_cancel, so a blocked goroutine wakes at once.
func (t *LeaseTable) Acquire(ctx context.Context, resource, owner string, ttl time.Duration, mode Mode) (Lease, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.p == nil {
		return Lease{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	var e C.qk_error
	var c *C.qk_cancel
	if err := check(C.qk_cancel_new(&c, &e), &e); err != nil {
		return Lease{}, err
	}
	// The watcher fires c on ctx or Close; it is gone before c is freed.
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		select {
		case <-ctx.Done():
		case <-t.closing:
		case <-done:
			return
		}
		C.qk_cancel_fire(c, nil)
	}()
	r, rl := str(resource)
	o, ol := str(owner)
	var l C.qk_lease
	st := C.qk_lease_table_acquire_cancellable(t.p, r, rl, o, ol, C.uint64_t(ttl), C.uint32_t(mode),
		C.QK_TIMEOUT_FOREVER, c, &l, &e)
	close(done)
	watcher.Wait()
	C.qk_cancel_free(c)
	if st == C.QK_ERR_CANCELLED {
		if err := ctx.Err(); err != nil {
			return Lease{}, err
		}
		return Lease{}, ErrClosed
	}
	if err := check(st, &e); err != nil {
		return Lease{}, err
	}
	return t.lease(resource, owner, &l), nil
}

// TryAcquire grants the lease if it is free now, else ErrBusy; never waits.
func (t *LeaseTable) TryAcquire(resource, owner string, ttl time.Duration, mode Mode) (Lease, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.p == nil {
		return Lease{}, ErrClosed
	}
	var e C.qk_error
	var l C.qk_lease
	r, rl := str(resource)
	o, ol := str(owner)
	st := C.qk_lease_table_try_acquire(t.p, r, rl, o, ol, C.uint64_t(ttl), C.uint32_t(mode), &l, &e)
	if err := check(st, &e); err != nil {
		return Lease{}, err
	}
	return t.lease(resource, owner, &l), nil
}

// Renew extends l to now + ttl (ErrLeaseExpired, ErrNotHolder).
func (t *LeaseTable) Renew(l Lease, ttl time.Duration) (Lease, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.p == nil {
		return Lease{}, ErrClosed
	}
	var e C.qk_error
	var out C.qk_lease
	r, rl := str(l.Resource)
	o, ol := str(l.Owner)
	st := C.qk_lease_table_renew(t.p, r, rl, o, ol, C.uint64_t(l.Token), C.uint64_t(ttl), &out, &e)
	if err := check(st, &e); err != nil {
		return Lease{}, err
	}
	return t.lease(l.Resource, l.Owner, &out), nil
}

// Release ends l and hands the resource to the next waiter.
func (t *LeaseTable) Release(l Lease) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	r, rl := str(l.Resource)
	o, ol := str(l.Owner)
	return check(C.qk_lease_table_release(t.p, r, rl, o, ol, C.uint64_t(l.Token), &e), &e)
}

// QueueLen is how many acquires wait for resource.
func (t *LeaseTable) QueueLen(resource string) (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var n C.size_t
	r, rl := str(resource)
	if err := check(C.qk_lease_table_queue_len(t.p, r, rl, &n, &e), &e); err != nil {
		return 0, err
	}
	return int(n), nil
}

// Now is the table's clock reading in nanoseconds.
func (t *LeaseTable) Now() (uint64, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var n C.uint64_t
	if err := check(C.qk_lease_table_now(t.p, &n, &e), &e); err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// Fence remembers the highest fencing token seen per resource (qk_fence): a
// protected resource checks each request's token.
type Fence struct {
	mu sync.RWMutex
	p  *C.qk_fence
}

// NewFence makes an empty fence.
func NewFence() (*Fence, error) {
	var e C.qk_error
	var p *C.qk_fence
	if err := check(C.qk_fence_new(&p, &e), &e); err != nil {
		return nil, err
	}
	return &Fence{p: p}, nil
}

// Close frees the fence.
func (f *Fence) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	C.qk_fence_free(f.p)
	f.p = nil
	return nil
}

// Check accepts token if it is at least the highest seen for resource (and
// records it); else ErrStaleToken.
func (f *Fence) Check(resource string, token uint64) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	r, rl := str(resource)
	return check(C.qk_fence_check(f.p, r, rl, C.uint64_t(token), &e), &e)
}
