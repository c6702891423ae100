// Package quorumkit is the Go binding of the quorumkit C library: consistent
// hashing rings, lock leases with fencing tokens, a phi-accrual failure
// detector and Multi-Paxos replicas.
//
// It links libquorumkit through pkg-config (`make install`, then
// PKG_CONFIG_PATH=<prefix>/lib/pkgconfig when the prefix is not a system
// one). Every type is safe for concurrent use by many goroutines and must be
// closed with Close; a closed value answers ErrClosed.
//
// Errors are *Error values carrying the library's status and its message.
// The message travels with each call (the C ABI's qk_error out-parameter), so
// it is right even though goroutines move between OS threads.
package quorumkit

/*
#cgo pkg-config: quorumkit
#include <stdlib.h>
#include <quorumkit.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ABIVersion is the C ABI this binding was written for; New* functions fail
// if the loaded library reports another.
const ABIVersion = 2

func init() {
	if v := int(C.qk_abi_version()); v != ABIVersion || C.QK_ABI_VERSION != ABIVersion {
		panic(fmt.Sprintf("quorumkit: the binding needs C ABI %d, the library has %d", ABIVersion, v))
	}
}

// Version is the loaded library's version ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.qk_version()) }

// Status is a qk_status code of the C library.
type Status int32

// The status codes (include/quorumkit.h, QK_ERR_*).
const (
	StatusOK                 Status = C.QK_OK
	StatusNullArg            Status = C.QK_ERR_NULL_ARG
	StatusInvalidArg         Status = C.QK_ERR_INVALID_ARG
	StatusInvalidUTF8        Status = C.QK_ERR_INVALID_UTF8
	StatusEmpty              Status = C.QK_ERR_EMPTY
	StatusNotFound           Status = C.QK_ERR_NOT_FOUND
	StatusAlreadyExists      Status = C.QK_ERR_ALREADY_EXISTS
	StatusBufferTooSmall     Status = C.QK_ERR_BUFFER_TOO_SMALL
	StatusPanic              Status = C.QK_ERR_PANIC
	StatusCorrupt            Status = C.QK_ERR_CORRUPT
	StatusUnsupportedVersion Status = C.QK_ERR_UNSUPPORTED_VERSION
	StatusTimeout            Status = C.QK_ERR_TIMEOUT
	StatusLeaseExpired       Status = C.QK_ERR_LEASE_EXPIRED
	StatusNotHolder          Status = C.QK_ERR_NOT_HOLDER
	StatusStaleToken         Status = C.QK_ERR_STALE_TOKEN
	StatusBusy               Status = C.QK_ERR_BUSY
	StatusStorage            Status = C.QK_ERR_STORAGE
	StatusNotLeader          Status = C.QK_ERR_NOT_LEADER
	StatusNotMonotonic       Status = C.QK_ERR_NOT_MONOTONIC
	StatusStorageCorrupt     Status = C.QK_ERR_STORAGE_CORRUPT
	StatusStorageInUse       Status = C.QK_ERR_STORAGE_IN_USE
	StatusStorageMismatch    Status = C.QK_ERR_STORAGE_MISMATCH
	StatusLimitExceeded      Status = C.QK_ERR_LIMIT_EXCEEDED
	StatusCancelled          Status = C.QK_ERR_CANCELLED
	StatusBackendUnavailable Status = C.QK_ERR_BACKEND_UNAVAILABLE
)

// String is the code's short name ("not found", ...).
func (s Status) String() string { return C.GoString(C.qk_status_str(C.qk_status(s))) }

// Error is a failed call: the status and the library's detailed message.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "quorumkit: " + e.Status.String()
	}
	return "quorumkit: " + e.Message
}

// Is makes errors.Is(err, quorumkit.ErrNotFound) (and every other Err*
// sentinel) match any error of that status.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Message == "" && t.Status == e.Status
}

// Sentinels for errors.Is.
var (
	ErrInvalidArg     = &Error{Status: StatusInvalidArg}
	ErrEmpty          = &Error{Status: StatusEmpty}
	ErrNotFound       = &Error{Status: StatusNotFound}
	ErrAlreadyExists  = &Error{Status: StatusAlreadyExists}
	ErrCorrupt        = &Error{Status: StatusCorrupt}
	ErrTimeout        = &Error{Status: StatusTimeout}
	ErrLeaseExpired   = &Error{Status: StatusLeaseExpired}
	ErrNotHolder      = &Error{Status: StatusNotHolder}
	ErrStaleToken     = &Error{Status: StatusStaleToken}
	ErrBusy           = &Error{Status: StatusBusy}
	ErrStorage        = &Error{Status: StatusStorage}
	ErrNotLeader      = &Error{Status: StatusNotLeader}
	ErrStorageInUse   = &Error{Status: StatusStorageInUse}
	ErrStorageCorrupt = &Error{Status: StatusStorageCorrupt}
	ErrCancelled      = &Error{Status: StatusCancelled}
	// ErrBackendUnavailable: no replica (or server) answered in time.
	ErrBackendUnavailable = &Error{Status: StatusBackendUnavailable}
)

// ErrClosed is the answer of every method of a closed value.
var ErrClosed = errors.New("quorumkit: use of a closed value")

// check turns a status and its qk_error into a Go error.
func check(st C.qk_status, e *C.qk_error) error {
	if st == C.QK_OK {
		return nil
	}
	return &Error{Status: Status(st), Message: C.GoString(&e.message[0])}
}

// str passes a Go string to C as (pointer, byte length) without a copy: the
// library copies what it keeps, and never keeps the pointer. "" is (NULL, 0).
func str(s string) (*C.char, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	data := *(*unsafe.Pointer)(unsafe.Pointer(&s))
	return (*C.char)(data), C.size_t(len(s))
}

// bytesArg passes a byte slice as (pointer, length); nil or empty is (NULL, 0).
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// flag reads a C uint8_t yes/no.
func flag(v C.uint8_t) bool { return v != 0 }
