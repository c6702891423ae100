package quorumkit

/*
#include <stdlib.h>
#include <quorumkit.h>
*/
import "C"

import (
	"strings"
	"sync"
	"time"
	"unsafe"
)

// LeaseClient takes leases from a replicated lease service (`quorumkit
// serve --state lease`): every process that reaches the cluster shares its
// leases, FIFO queues and fencing tokens (qk_lease_client). Safe for
// concurrent use; a blocked Acquire does not hold up a Renew.
type LeaseClient struct {
	// Every call holds mu for reading; Close takes it for writing, so the
	// free waits for the calls in progress and never races one.
	mu sync.RWMutex
	p  *C.qk_lease_client
}

// Forever is the timeout of an Acquire that waits without end.
const Forever time.Duration = -1

// NewLeaseClient opens a client of the cluster whose replicas listen at
// addrs ("HOST:PORT"), with its id and secret (at least 16 bytes).
// timeout bounds each call's search for a leader, retries included (0: 10
// s). It connects on first use.
func NewLeaseClient(addrs []string, clusterID uint64, secret []byte, timeout time.Duration) (*LeaseClient, error) {
	var p *C.qk_lease_client
	err := openClient(addrs, secret, timeout, func(list *C.char, s *C.uint8_t, sl C.size_t, t C.uint64_t, e *C.qk_error) C.qk_status {
		return C.qk_lease_client_new(list, C.uint64_t(clusterID), s, sl, t, &p, e)
	})
	if err != nil {
		return nil, err
	}
	return &LeaseClient{p: p}, nil
}

// openClient passes a cluster client's addresses, secret and timeout (a
// negative one is 0: the default) to the C constructor open.
func openClient(addrs []string, secret []byte, timeout time.Duration,
	open func(list *C.char, s *C.uint8_t, sl C.size_t, timeout C.uint64_t, e *C.qk_error) C.qk_status) error {
	list := C.CString(strings.Join(addrs, ","))
	defer C.free(unsafe.Pointer(list))
	s, sl := bytesArg(secret)
	if timeout < 0 {
		timeout = 0
	}
	var e C.qk_error
	return check(open(list, s, sl, C.uint64_t(timeout), &e), &e)
}

// Close frees the client once the calls in progress return (bound blocking
// acquires with a timeout). Leases still held stay with the service.
func (c *LeaseClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	C.qk_lease_client_free(c.p)
	c.p = nil
	return nil
}

// Now reads the clock of Lease.ExpiresAtNs (this process's monotonic clock).
func (c *LeaseClient) Now() (uint64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var now C.uint64_t
	if err := check(C.qk_lease_client_now(c.p, &now, &e), &e); err != nil {
		return 0, err
	}
	return uint64(now), nil
}

// Acquire blocks until the service grants the lease (FIFO across every
// client of the cluster; no polling), or timeout passes (ErrTimeout;
// Forever: no limit; 0: only if free now, else ErrBusy). A retried request
// after a leader change is never granted twice.
func (c *LeaseClient) Acquire(resource, owner string, ttl time.Duration, mode Mode, timeout time.Duration) (Lease, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return Lease{}, ErrClosed
	}
	wait := C.uint64_t(C.QK_TIMEOUT_FOREVER)
	if timeout >= 0 {
		wait = C.uint64_t(timeout)
	}
	var e C.qk_error
	var l C.qk_lease
	r, rl := str(resource)
	o, ol := str(owner)
	st := C.qk_lease_client_acquire(c.p, r, rl, o, ol, C.uint64_t(ttl), C.uint32_t(mode), wait, &l, &e)
	if err := check(st, &e); err != nil {
		return Lease{}, err
	}
	return toLease(resource, owner, &l), nil
}

// TryAcquire grants the lease if it is free now, else ErrBusy (Acquire
// with timeout 0).
func (c *LeaseClient) TryAcquire(resource, owner string, ttl time.Duration, mode Mode) (Lease, error) {
	return c.Acquire(resource, owner, ttl, mode, 0)
}

// Renew extends a held lease to ttl from the service's now (same token).
func (c *LeaseClient) Renew(l Lease, ttl time.Duration) (Lease, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return Lease{}, ErrClosed
	}
	var e C.qk_error
	var out C.qk_lease
	r, rl := str(l.Resource)
	o, ol := str(l.Owner)
	st := C.qk_lease_client_renew(c.p, r, rl, o, ol, C.uint64_t(l.Token), C.uint64_t(ttl), &out, &e)
	if err := check(st, &e); err != nil {
		return Lease{}, err
	}
	return toLease(l.Resource, l.Owner, &out), nil
}

// Release ends the lease; the next waiter is granted. ErrNotHolder if it
// is not held.
func (c *LeaseClient) Release(l Lease) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	r, rl := str(l.Resource)
	o, ol := str(l.Owner)
	return check(C.qk_lease_client_release(c.p, r, rl, o, ol, C.uint64_t(l.Token), &e), &e)
}

// Holders lists the current holders of resource (a linearizable read on
// the leader; ExpiresAtNs is the service's cluster time; Owner is empty).
func (c *LeaseClient) Holders(resource string) ([]Lease, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return nil, ErrClosed
	}
	r, rl := str(resource)
	buf := make([]C.qk_lease, 4)
	for {
		var e C.qk_error
		var n C.size_t
		st := C.qk_lease_client_holders(c.p, r, rl, &buf[0], C.size_t(len(buf)), &n, &e)
		if st == C.QK_ERR_BUFFER_TOO_SMALL && int(n) > len(buf) {
			buf = make([]C.qk_lease, int(n))
			continue
		}
		if err := check(st, &e); err != nil {
			return nil, err
		}
		out := make([]Lease, int(n))
		for i := range out {
			out[i] = toLease(resource, "", &buf[i])
		}
		return out, nil
	}
}
