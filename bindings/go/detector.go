package quorumkit

/*
#include <quorumkit.h>
*/
import "C"

import (
	"sync"
	"time"
)

// FailureDetector is a phi-accrual failure detector (qk_detector). Times
// are nanoseconds of the caller's monotonic clock.
type FailureDetector struct {
	mu sync.RWMutex
	p  *C.qk_detector
}

// DetectorConfig holds the detector's parameters (see the C header).
type DetectorConfig struct {
	Threshold              float64
	MaxSamples             int
	MinStdDev              time.Duration
	AcceptablePause        time.Duration
	FirstHeartbeatEstimate time.Duration
}

// NewFailureDetector makes a detector.
func NewFailureDetector(c DetectorConfig) (*FailureDetector, error) {
	var e C.qk_error
	var p *C.qk_detector
	st := C.qk_detector_new(C.double(c.Threshold), C.size_t(c.MaxSamples), C.uint64_t(c.MinStdDev),
		C.uint64_t(c.AcceptablePause), C.uint64_t(c.FirstHeartbeatEstimate), &p, &e)
	if err := check(st, &e); err != nil {
		return nil, err
	}
	return &FailureDetector{p: p}, nil
}

// Close frees the detector.
func (d *FailureDetector) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	C.qk_detector_free(d.p)
	d.p = nil
	return nil
}

// Heartbeat records a heartbeat from name at nowNs.
func (d *FailureDetector) Heartbeat(name string, nowNs uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	n, nl := str(name)
	return check(C.qk_detector_heartbeat(d.p, n, nl, C.uint64_t(nowNs), &e), &e)
}

// Phi is the suspicion level of name at nowNs.
func (d *FailureDetector) Phi(name string, nowNs uint64) (float64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var phi C.double
	n, nl := str(name)
	if err := check(C.qk_detector_phi(d.p, n, nl, C.uint64_t(nowNs), &phi, &e), &e); err != nil {
		return 0, err
	}
	return float64(phi), nil
}

// IsAvailable reports whether name's phi at nowNs is below the threshold.
func (d *FailureDetector) IsAvailable(name string, nowNs uint64) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.p == nil {
		return false, ErrClosed
	}
	var e C.qk_error
	var up C.uint8_t
	n, nl := str(name)
	if err := check(C.qk_detector_is_available(d.p, n, nl, C.uint64_t(nowNs), &up, &e), &e); err != nil {
		return false, err
	}
	return flag(up), nil
}

// Remove forgets name.
func (d *FailureDetector) Remove(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	n, nl := str(name)
	return check(C.qk_detector_remove(d.p, n, nl, &e), &e)
}
