package quorumkit

/*
#include <stdlib.h>
#include <quorumkit.h>

// The Go callbacks (replica_callbacks.go), as the C ABI's function types.
extern int32_t qkGoReplicaApply(void *, uint64_t, uint8_t *, size_t, qk_reply *);
extern int32_t qkGoReplicaQuery(void *, uint8_t *, size_t, qk_reply *);
extern int32_t qkGoReplicaSnapshot(void *, qk_reply *);
extern int32_t qkGoReplicaRestore(void *, uint8_t *, size_t, qk_reply *);

static qk_replica_apply_fn qk_go_apply(void) { return (qk_replica_apply_fn)qkGoReplicaApply; }
static qk_replica_query_fn qk_go_query(void) { return (qk_replica_query_fn)qkGoReplicaQuery; }
static qk_replica_snapshot_fn qk_go_snapshot(void) { return (qk_replica_snapshot_fn)qkGoReplicaSnapshot; }
static qk_replica_restore_fn qk_go_restore(void) { return (qk_replica_restore_fn)qkGoReplicaRestore; }
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// StateMachine is what a Replica replicates: Apply runs every decided
// command in log order on every replica alike (after a restart again from
// the first command not in a snapshot, so the state must start empty) and
// must be deterministic; an error refuses the command (the proposer gets
// ErrInvalidArg with its message). Query answers a read from the current
// state on the leader. Both run on the replica's own thread, one call at a
// time, and must not call the Replica's methods (Close waits for them).
type StateMachine interface {
	Apply(timeNs uint64, command []byte) ([]byte, error)
	Query(query []byte) ([]byte, error)
}

// Snapshotter is a StateMachine that can hand over its whole state, for
// log compaction (ReplicaConfig.CompactEvery): Snapshot returns it (an
// error skips that compaction), Restore replaces the state with it (on a
// restart, or from a peer's snapshot; an error stops the replica).
type Snapshotter interface {
	StateMachine
	Snapshot() ([]byte, error)
	Restore(data []byte) error
}

// ReplicaConfig says which replica of which cluster to run.
type ReplicaConfig struct {
	// ID is this replica; Peers maps every replica of the cluster, this
	// one included, to its loopback "HOST:PORT" (this one listens there).
	ID    uint32
	Peers map[uint32]string
	// DataDir holds the replica's log.
	DataDir   string
	ClusterID uint64
	// Secret authenticates the cluster's traffic (at least 16 bytes).
	Secret []byte
	// Init creates a new replica (DataDir must hold no log); false
	// restarts one from DataDir (a replica that lost its data is refused).
	Init bool
	// Join: the replica joins a running cluster (Init and Join the first
	// time, then Join alone for its restarts).
	Join bool
	// Heartbeat is the leader's heartbeat (0: 50 ms); elections take 10 to
	// 20 heartbeats, read leases last 10.
	Heartbeat time.Duration
	// CompactEvery: with a Snapshotter, compact the log every so many
	// slots (0: never).
	CompactEvery uint64
}

// ReadPolicy is how a replica answers reads.
type ReadPolicy uint32

const (
	// ReadLease answers from the leader's read lease (no message; it
	// counts on bounded clock drift).
	ReadLease ReadPolicy = C.QK_REPLICA_READ_LEASE
	// ReadIndex confirms the leadership with a majority first (no clock
	// bound).
	ReadIndex ReadPolicy = C.QK_REPLICA_READ_INDEX
)

// ReplicaStatus is what a running replica knows.
type ReplicaStatus struct {
	ID uint32
	// Leader is the leader it knows (0: none).
	Leader      uint32
	BallotRound uint64
	BallotNode  uint32
	// CommitIndex counts the log entries known decided; Applied the
	// commands applied to the state machine.
	CommitIndex uint64
	Applied     uint64
	// ReadLease: it leads under a read lease (it answers reads).
	ReadLease bool
}

// Replica runs one replica of a Multi-Paxos cluster over the network
// (qk_replica): its own threads, its log in a directory, the StateMachine's
// callbacks on its thread. Safe for concurrent use; Close stops it.
type Replica struct {
	// Every call holds mu for reading; Close takes it for writing, so the
	// free waits for the calls in progress and never races one.
	mu sync.RWMutex
	p  *C.qk_replica
	// ud is the C memory holding the cgo.Handle of the state machine (the
	// callbacks' user_data); freed after the replica is.
	ud     unsafe.Pointer
	handle cgo.Handle
}

// replicaMachine is what the callbacks find behind their user_data.
type replicaMachine struct {
	sm   StateMachine
	snap Snapshotter // nil without compaction
}

// StartReplica starts the replica cfg.ID with sm as its state machine.
func StartReplica(cfg ReplicaConfig, sm StateMachine) (*Replica, error) {
	if sm == nil {
		return nil, &Error{Status: StatusNullArg, Message: "a replica needs a state machine"}
	}
	m := &replicaMachine{sm: sm}
	if cfg.CompactEvery > 0 {
		snap, ok := sm.(Snapshotter)
		if !ok {
			return nil, &Error{Status: StatusInvalidArg,
				Message: "CompactEvery needs a state machine that implements Snapshotter"}
		}
		m.snap = snap
	}
	ids := make([]int, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	entries := make([]string, len(ids))
	for i, id := range ids {
		entries[i] = fmt.Sprintf("%d=%s", id, cfg.Peers[uint32(id)])
	}
	peers := C.CString(strings.Join(entries, ","))
	defer C.free(unsafe.Pointer(peers))
	dir := C.CString(cfg.DataDir)
	defer C.free(unsafe.Pointer(dir))
	var init C.uint8_t
	if cfg.Init {
		init |= C.QK_REPLICA_INIT
	}
	if cfg.Join {
		init |= C.QK_REPLICA_JOIN
	}
	heartbeat := cfg.Heartbeat
	if heartbeat < 0 {
		heartbeat = 0
	}
	r := &Replica{handle: cgo.NewHandle(m)}
	// The handle travels in C memory: a uintptr is not a pointer Go may
	// hand to C as one.
	r.ud = C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	*(*C.uintptr_t)(r.ud) = C.uintptr_t(r.handle)
	s, sl := bytesArg(cfg.Secret)
	var e C.qk_error
	var st C.qk_status
	if m.snap != nil {
		st = C.qk_replica_start_compacting(C.uint32_t(cfg.ID), peers, dir, C.uint64_t(cfg.ClusterID), s, sl,
			init, C.uint64_t(heartbeat), C.qk_go_apply(), C.qk_go_query(), C.qk_go_snapshot(), C.qk_go_restore(),
			C.uint64_t(cfg.CompactEvery), r.ud, &r.p, &e)
	} else {
		st = C.qk_replica_start(C.uint32_t(cfg.ID), peers, dir, C.uint64_t(cfg.ClusterID), s, sl,
			init, C.uint64_t(heartbeat), C.qk_go_apply(), C.qk_go_query(), r.ud, &r.p, &e)
	}
	if err := check(st, &e); err != nil {
		r.release()
		return nil, err
	}
	return r, nil
}

// release frees what the callbacks used; the replica is stopped.
func (r *Replica) release() {
	C.free(r.ud)
	r.ud = nil
	r.handle.Delete()
}

// Close stops the replica (its threads end, nothing more is applied) once
// the calls in progress return. Its directory keeps the log for a restart.
func (r *Replica) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return nil
	}
	C.qk_replica_free(r.p)
	r.p = nil
	r.release()
	return nil
}

// Status is what the replica knows now.
func (r *Replica) Status() (ReplicaStatus, error) {
	var s C.qk_replica_info
	if err := r.do(func(e *C.qk_error) C.qk_status { return C.qk_replica_status(r.p, &s, e) }); err != nil {
		return ReplicaStatus{}, err
	}
	return ReplicaStatus{ID: uint32(s.id), Leader: uint32(s.leader), BallotRound: uint64(s.ballot_round),
		BallotNode: uint32(s.ballot_node), CommitIndex: uint64(s.commit_index), Applied: uint64(s.applied),
		ReadLease: flag(s.read_lease)}, nil
}

// SetReadPolicy switches how the replica answers reads, from its next
// read on (ErrInvalidArg for another value).
func (r *Replica) SetReadPolicy(p ReadPolicy) error {
	return r.do(func(e *C.qk_error) C.qk_status { return C.qk_replica_set_read_policy(r.p, C.uint32_t(p), e) })
}

// do runs call on the live replica (ErrClosed after Close).
func (r *Replica) do(call func(e *C.qk_error) C.qk_status) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	return check(call(&e), &e)
}

// AddPeer makes replica id at addr known to this one; call it on every
// replica before a change adds id.
func (r *Replica) AddPeer(id uint32, addr string) error {
	a := C.CString(addr)
	defer C.free(unsafe.Pointer(a))
	return r.do(func(e *C.qk_error) C.qk_status { return C.qk_replica_add_peer(r.p, C.uint32_t(id), a, e) })
}

// ChangeMembership proposes a change at the leader (ErrNotLeader on a
// follower): AddLearner, Promote or Remove of id (other ignored), or
// Replace of voter id by learner other. It is in force once Membership
// shows its epoch.
func (r *Replica) ChangeMembership(kind MembershipChange, id, other uint32) error {
	return r.do(func(e *C.qk_error) C.qk_status {
		return C.qk_replica_change_membership(r.p, C.uint32_t(kind), C.uint32_t(id), C.uint32_t(other), e)
	})
}

// TransferLeadership hands the leadership to voter to once it has every
// slot (on the leader).
func (r *Replica) TransferLeadership(to uint32) error {
	return r.do(func(e *C.qk_error) C.qk_status { return C.qk_replica_transfer_leadership(r.p, C.uint32_t(to), e) })
}

// Membership is the membership the replica applied last.
func (r *Replica) Membership() (Membership, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return Membership{}, ErrClosed
	}
	return readMembership(func(epoch, start *C.uint64_t, ids *C.uint32_t, idsCap C.size_t, voters, length *C.size_t,
		e *C.qk_error) C.qk_status {
		return C.qk_replica_membership(r.p, epoch, start, ids, idsCap, voters, length, e)
	})
}

// NetClient sends commands and reads to a replica cluster over the network
// (qk_net_client): it finds the leader and retries, with exactly-once
// commands. Safe for concurrent use.
type NetClient struct {
	mu sync.RWMutex
	p  *C.qk_net_client
}

// NewNetClient opens a client of the cluster at addrs ("HOST:PORT" or
// "ID=HOST:PORT"). timeout bounds every call's turn, retries included (0:
// 10 s). The client is one session, so its calls take turns: a call made
// while others are under way also waits for them (open a client per
// goroutine for calls in parallel).
func NewNetClient(addrs []string, clusterID uint64, secret []byte, timeout time.Duration) (*NetClient, error) {
	var p *C.qk_net_client
	err := openClient(addrs, secret, timeout, func(list *C.char, s *C.uint8_t, sl C.size_t, t C.uint64_t, e *C.qk_error) C.qk_status {
		return C.qk_net_client_new(list, C.uint64_t(clusterID), s, sl, t, &p, e)
	})
	if err != nil {
		return nil, err
	}
	return &NetClient{p: p}, nil
}

// Close frees the client once the calls in progress return.
func (c *NetClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	C.qk_net_client_free(c.p)
	c.p = nil
	return nil
}

// takeBytes copies bytes the library handed out and frees them.
func takeBytes(b *C.qk_bytes) []byte {
	defer C.qk_bytes_free(b)
	if b.len == 0 {
		return []byte{}
	}
	return C.GoBytes(unsafe.Pointer(b.data), C.int(b.len))
}

// Propose replicates command and returns the state machine's result once
// it is decided and applied. An error after the command was sent means it
// may or may not have been applied.
func (c *NetClient) Propose(command []byte) ([]byte, error) {
	return c.exchange(command, func(b *C.uint8_t, n C.size_t, out *C.qk_bytes, e *C.qk_error) C.qk_status {
		return C.qk_net_client_propose(c.p, b, n, out, e)
	})
}

// Read answers query from the leader's state (linearizable).
func (c *NetClient) Read(query []byte) ([]byte, error) {
	return c.exchange(query, func(b *C.uint8_t, n C.size_t, out *C.qk_bytes, e *C.qk_error) C.qk_status {
		return C.qk_net_client_read(c.p, b, n, out, e)
	})
}

// exchange sends in through call and hands back the bytes it stored.
func (c *NetClient) exchange(in []byte, call func(*C.uint8_t, C.size_t, *C.qk_bytes, *C.qk_error) C.qk_status) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return nil, ErrClosed
	}
	var e C.qk_error
	var out C.qk_bytes
	b, bl := bytesArg(in)
	if err := check(call(b, bl, &out, &e), &e); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// errNoMachine: a callback whose user_data names no live state machine
// (it cannot happen while the replica runs).
var errNoMachine = errors.New("quorumkit: the replica's state machine is gone")
