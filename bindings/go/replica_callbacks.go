package quorumkit

// The C callbacks of a Replica: they run on the replica's own thread and
// call the Go state machine found behind their user_data. A file with
// //export may only declare C in its preamble, so the function-pointer
// helpers live in replica.go.

/*
#include <quorumkit.h>
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// machineOf finds the state machine behind a callback's user_data.
func machineOf(ud unsafe.Pointer) *replicaMachine {
	if ud == nil {
		panic(errNoMachine)
	}
	m, ok := cgo.Handle(*(*C.uintptr_t)(ud)).Value().(*replicaMachine)
	if !ok {
		panic(errNoMachine)
	}
	return m
}

// copyIn copies n bytes the library lends at p for the callback's length
// of time: the state machine may keep what it is given.
func copyIn(p *C.uint8_t, n C.size_t) []byte {
	if n == 0 || p == nil {
		return []byte{}
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))...)
}

// setReply stores b as the callback's reply (the library copies it).
func setReply(reply *C.qk_reply, b []byte) {
	var e C.qk_error
	ptr, n := bytesArg(b)
	C.qk_reply_set(reply, ptr, n, &e)
}

// answer turns a state machine's result into the callback's return: 0
// with the result, or 1 with the error's message.
func answer(reply *C.qk_reply, out []byte, err error) C.int32_t {
	if err != nil {
		setReply(reply, []byte(err.Error()))
		return 1
	}
	setReply(reply, out)
	return 0
}

// guard turns a panic in the state machine into a refusal with its message
// instead of unwinding into the C library's thread (which would crash the
// process).
func guard(reply *C.qk_reply, rc *C.int32_t) {
	if p := recover(); p != nil {
		setReply(reply, []byte(fmt.Sprintf("the Go state machine panicked: %v", p)))
		*rc = 1
	}
}

//export qkGoReplicaApply
func qkGoReplicaApply(ud unsafe.Pointer, timeNs C.uint64_t, command *C.uint8_t, n C.size_t, reply *C.qk_reply) (rc C.int32_t) {
	defer guard(reply, &rc)
	out, err := machineOf(ud).sm.Apply(uint64(timeNs), copyIn(command, n))
	return answer(reply, out, err)
}

//export qkGoReplicaQuery
func qkGoReplicaQuery(ud unsafe.Pointer, query *C.uint8_t, n C.size_t, reply *C.qk_reply) (rc C.int32_t) {
	defer guard(reply, &rc)
	out, err := machineOf(ud).sm.Query(copyIn(query, n))
	return answer(reply, out, err)
}

//export qkGoReplicaSnapshot
func qkGoReplicaSnapshot(ud unsafe.Pointer, reply *C.qk_reply) (rc C.int32_t) {
	defer guard(reply, &rc)
	m := machineOf(ud)
	if m.snap == nil {
		panic("snapshot asked of a state machine without Snapshotter")
	}
	out, err := m.snap.Snapshot()
	return answer(reply, out, err)
}

//export qkGoReplicaRestore
func qkGoReplicaRestore(ud unsafe.Pointer, data *C.uint8_t, n C.size_t, reply *C.qk_reply) (rc C.int32_t) {
	defer guard(reply, &rc)
	m := machineOf(ud)
	if m.snap == nil {
		panic("restore asked of a state machine without Snapshotter")
	}
	return answer(reply, nil, m.snap.Restore(copyIn(data, n)))
}
