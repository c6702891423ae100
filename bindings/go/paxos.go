package quorumkit

/*
#include <stdlib.h>
#include <quorumkit.h>
*/
import "C"

import (
	"sync"
	"time"
	"unsafe"
)

// PaxosConfig configures one replica. Zero durations and counts keep the
// library's defaults (qk_paxos_config_init).
type PaxosConfig struct {
	ID                uint32
	Members           []uint32
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	Seed              uint64
	ClusterID         uint64
}

// OutputKind says what a PaxosOutput asks of the caller.
type OutputKind uint32

// Output kinds.
const (
	OutputSend          OutputKind = C.QK_PAXOS_OUTPUT_SEND
	OutputDecided       OutputKind = C.QK_PAXOS_OUTPUT_DECIDED
	OutputPersisted     OutputKind = C.QK_PAXOS_OUTPUT_PERSISTED
	OutputLeaderChanged OutputKind = C.QK_PAXOS_OUTPUT_LEADER_CHANGED
	// OutputSnapshot: replace the application's state with Data, the state
	// after every slot below Slot (installed from a peer, or the node's own
	// after a restart).
	OutputSnapshot OutputKind = C.QK_PAXOS_OUTPUT_SNAPSHOT
	// OutputReadIndex: the read with id Index may be answered from the
	// state now (Count 1), or leadership was lost first (Count 0).
	OutputReadIndex OutputKind = C.QK_PAXOS_OUTPUT_READ_INDEX
	// OutputMembership: a membership change was delivered (or, after a
	// restart or a snapshot install, the membership the node holds):
	// Membership says which. A node in neither list takes no further part
	// and may be shut down.
	OutputMembership OutputKind = C.QK_PAXOS_OUTPUT_MEMBERSHIP
)

// Membership is the replicas of one epoch: epoch Epoch (0 until the first
// change) decides every slot from Start on; Voters vote, Learners receive
// the log without a vote.
type Membership struct {
	Epoch    uint64
	Start    uint64
	Voters   []uint32
	Learners []uint32
}

// PaxosOutput is one thing the replica asks for: Send Data to replica To,
// or a Decided command (Data, at Slot/Index of Count), Persisted,
// LeaderChanged (Leader when HasLeader), or a Membership (then Membership
// is set, and Index/Slot/Count are its epoch, start and voter count).
// Data is a copy the caller owns.
type PaxosOutput struct {
	Kind       OutputKind
	To         uint32
	Slot       uint64
	Index      uint64
	Count      uint64
	Leader     uint32
	HasLeader  bool
	Data       []byte
	Membership *Membership
}

// MembershipChange is what ChangeMembership proposes.
type MembershipChange uint32

// Membership changes.
const (
	// AddLearner adds the replica as a learner: it receives the log and
	// catches up, without a vote.
	AddLearner MembershipChange = C.QK_PAXOS_ADD_LEARNER
	// Promote makes the learner a voter.
	Promote MembershipChange = C.QK_PAXOS_PROMOTE
	// Remove removes the voter or learner.
	Remove MembershipChange = C.QK_PAXOS_REMOVE
	// Replace gives the voter's vote to the learner other, in one change.
	Replace MembershipChange = C.QK_PAXOS_REPLACE
)

// PaxosNode is one Multi-Paxos replica (qk_paxos_node), driven by the
// caller: Step with messages, Tick with time, Propose commands, Poll for
// outputs. Times are nanoseconds of the caller's clock.
type PaxosNode struct {
	mu sync.Mutex
	p  *C.qk_paxos_node
}

func (c *PaxosConfig) toC() (C.qk_paxos_config, error) {
	var cfg C.qk_paxos_config
	var e C.qk_error
	// The library copies the ids into cfg.members: nothing Go owns is kept.
	var members *C.uint32_t
	ids := make([]C.uint32_t, len(c.Members))
	for i, m := range c.Members {
		ids[i] = C.uint32_t(m)
	}
	if len(ids) > 0 {
		members = &ids[0]
	}
	st := C.qk_paxos_config_init(C.uint32_t(c.ID), members, C.size_t(len(ids)), &cfg, &e)
	if err := check(st, &e); err != nil {
		return cfg, err
	}
	if c.HeartbeatInterval > 0 {
		cfg.heartbeat_interval_ns = C.uint64_t(c.HeartbeatInterval)
	}
	if c.ElectionTimeout > 0 {
		cfg.election_timeout_ns = C.uint64_t(c.ElectionTimeout)
	}
	cfg.seed = C.uint64_t(c.Seed)
	cfg.cluster_id = C.uint64_t(c.ClusterID)
	return cfg, nil
}

// NewPaxosNode starts a replica at nowNs whose state lives in the file at
// path (created if missing; reopening it restarts the replica), or in
// memory when path is "".
func NewPaxosNode(c PaxosConfig, path string, nowNs uint64) (*PaxosNode, error) {
	cfg, err := c.toC()
	if err != nil {
		return nil, err
	}
	var e C.qk_error
	var p *C.qk_paxos_node
	var st C.qk_status
	if path == "" {
		st = C.qk_paxos_node_new_memory(&cfg, C.uint64_t(nowNs), &p, &e)
	} else {
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		st = C.qk_paxos_node_new_file(&cfg, cpath, C.uint64_t(nowNs), &p, &e)
	}
	if err := check(st, &e); err != nil {
		return nil, err
	}
	return &PaxosNode{p: p}, nil
}

// JoinPaxosNode starts a replica that joins a running cluster, as
// NewPaxosNode; c.Members are the cluster's voters and need not include
// c.ID. It takes no part until a leader adds it (AddLearner), then catches
// up and follows as a learner until promoted. Restart such a replica from
// its file with JoinPaxosNode too.
func JoinPaxosNode(c PaxosConfig, path string, nowNs uint64) (*PaxosNode, error) {
	cfg, err := c.toC()
	if err != nil {
		return nil, err
	}
	var e C.qk_error
	var p *C.qk_paxos_node
	var cpath *C.char
	if path != "" {
		cpath = C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
	}
	if err := check(C.qk_paxos_node_join(&cfg, cpath, C.uint64_t(nowNs), &p, &e), &e); err != nil {
		return nil, err
	}
	return &PaxosNode{p: p}, nil
}

// Close frees the replica (and unlocks its file).
func (n *PaxosNode) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	C.qk_paxos_node_free(n.p)
	n.p = nil
	return nil
}

// Step hands the replica a message from replica `from`.
func (n *PaxosNode) Step(from uint32, msg []byte, nowNs uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	b, bl := bytesArg(msg)
	return check(C.qk_paxos_node_step(n.p, C.uint32_t(from), b, bl, C.uint64_t(nowNs), &e), &e)
}

// Tick advances the replica's timers to nowNs.
func (n *PaxosNode) Tick(nowNs uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	return check(C.qk_paxos_node_tick(n.p, C.uint64_t(nowNs), &e), &e)
}

// Propose submits a command (forwarded to the leader when there is one).
func (n *PaxosNode) Propose(cmd []byte, nowNs uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	b, bl := bytesArg(cmd)
	return check(C.qk_paxos_node_propose(n.p, b, bl, C.uint64_t(nowNs), &e), &e)
}

// Poll takes every pending output.
func (n *PaxosNode) Poll() ([]PaxosOutput, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return nil, ErrClosed
	}
	var outs []PaxosOutput
	for {
		var e C.qk_error
		var o C.qk_paxos_output
		var has C.uint8_t
		if err := check(C.qk_paxos_node_poll(n.p, &o, &has, &e), &e); err != nil {
			return outs, err
		}
		if !flag(has) {
			return outs, nil
		}
		out := PaxosOutput{Kind: OutputKind(o.kind), To: uint32(o.to), Slot: uint64(o.slot),
			Index: uint64(o.index), Count: uint64(o.count), Leader: uint32(o.leader),
			HasLeader: flag(o.has_leader)}
		// o.data is lent until the next call on this node: copy it now.
		if out.Kind == OutputMembership {
			var ids []uint32
			if o.data != nil && o.data_len >= 4 {
				ids = make([]uint32, int(o.data_len)/4)
				copy(ids, unsafe.Slice((*uint32)(unsafe.Pointer(o.data)), len(ids)))
			}
			out.Membership = splitMembership(uint64(o.index), uint64(o.slot), ids, int(o.count))
		} else if o.data != nil && o.data_len > 0 {
			out.Data = C.GoBytes(unsafe.Pointer(o.data), C.int(o.data_len))
		}
		outs = append(outs, out)
	}
}

// Compact drops the log below slot: state is the application's state after
// every slot below it. A restart then polls an OutputSnapshot first.
// Refused (nothing changes) when slot is above the commit index or not
// above the log's start.
func (n *PaxosNode) Compact(slot uint64, state []byte, nowNs uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	b, bl := bytesArg(state)
	return check(C.qk_paxos_node_compact(n.p, C.uint64_t(slot), b, bl, C.uint64_t(nowNs), &e), &e)
}

// LogStart is the first slot the log holds (every slot below it is in the
// snapshot).
func (n *PaxosNode) LogStart() (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var start, length C.uint64_t
	if err := check(C.qk_paxos_node_log_extent(n.p, &start, &length, &e), &e); err != nil {
		return 0, err
	}
	return uint64(start), nil
}

// Compacting reports whether the checkpoint of the last Compact is still
// being written in the background (a node on a file writes it on a thread
// of its own; a later call puts it in place once written). Close waits
// for it.
func (n *PaxosNode) Compacting() (bool, error) {
	return n.yesNo(func(v *C.uint8_t, e *C.qk_error) C.qk_status { return C.qk_paxos_node_compacting(n.p, v, e) })
}

// yesNo asks the node a yes/no question through get, under its lock.
func (n *PaxosNode) yesNo(get func(*C.uint8_t, *C.qk_error) C.qk_status) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return false, ErrClosed
	}
	var e C.qk_error
	var v C.uint8_t
	if err := check(get(&v, &e), &e); err != nil {
		return false, err
	}
	return flag(v), nil
}

// ReadIndex asks the leader for a linearizable read with no clock bound:
// Poll later gives an OutputReadIndex with Index id.
func (n *PaxosNode) ReadIndex(id uint64, nowNs uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	return check(C.qk_paxos_node_read_index(n.p, C.uint64_t(id), C.uint64_t(nowNs), &e), &e)
}

// ChangeMembership proposes a membership change at the leader (ErrNotLeader
// elsewhere): AddLearner, Promote or Remove of replica id (other ignored),
// or Replace: voter id's vote goes to learner other. The change takes a
// slot of its own; when it is delivered every replica polls an
// OutputMembership. ErrInvalidArg (nothing changes) while another change
// is under way, and for a change that does not apply: adding a member,
// promoting (or replacing with) a replica that is not a learner the leader
// heard from within the election timeout, removing or replacing an unknown
// replica, a removal that would leave one voter.
func (n *PaxosNode) ChangeMembership(kind MembershipChange, id, other uint32, nowNs uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	return check(C.qk_paxos_node_change_membership(n.p, C.uint32_t(kind), C.uint32_t(id),
		C.uint32_t(other), C.uint64_t(nowNs), &e), &e)
}

// AddLearner adds replica id as a learner (see ChangeMembership).
func (n *PaxosNode) AddLearner(id uint32, nowNs uint64) error {
	return n.ChangeMembership(AddLearner, id, 0, nowNs)
}

// Promote makes the learner id a voter (see ChangeMembership).
func (n *PaxosNode) Promote(id uint32, nowNs uint64) error {
	return n.ChangeMembership(Promote, id, 0, nowNs)
}

// Remove removes the voter or learner id (see ChangeMembership).
func (n *PaxosNode) Remove(id uint32, nowNs uint64) error {
	return n.ChangeMembership(Remove, id, 0, nowNs)
}

// Replace gives the voter old's vote to the learner new (see
// ChangeMembership).
func (n *PaxosNode) Replace(old, new uint32, nowNs uint64) error {
	return n.ChangeMembership(Replace, old, new, nowNs)
}

// Membership is the membership the replica holds now.
func (n *PaxosNode) Membership() (Membership, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return Membership{}, ErrClosed
	}
	return readMembership(func(epoch, start *C.uint64_t, ids *C.uint32_t, idsCap C.size_t, voters, length *C.size_t,
		e *C.qk_error) C.qk_status {
		return C.qk_paxos_node_membership(n.p, epoch, start, ids, idsCap, voters, length, e)
	})
}

// readMembership reads a membership through one of the C calls that store
// one (qk_paxos_node_membership, qk_replica_membership).
func readMembership(read func(epoch, start *C.uint64_t, ids *C.uint32_t, idsCap C.size_t, voters, length *C.size_t,
	e *C.qk_error) C.qk_status) (Membership, error) {
	var e C.qk_error
	var epoch, start C.uint64_t
	var voters, length C.size_t
	var ids [C.QK_PAXOS_MAX_MEMBERS]C.uint32_t
	if err := check(read(&epoch, &start, &ids[0], C.size_t(len(ids)), &voters, &length, &e), &e); err != nil {
		return Membership{}, err
	}
	all := make([]uint32, int(length))
	for i := range all {
		all[i] = uint32(ids[i])
	}
	return *splitMembership(uint64(epoch), uint64(start), all, int(voters)), nil
}

// splitMembership: the first voters ids vote, the rest are learners.
func splitMembership(epoch, start uint64, ids []uint32, voters int) *Membership {
	if voters > len(ids) {
		voters = len(ids)
	}
	return &Membership{Epoch: epoch, Start: start,
		Voters: append([]uint32{}, ids[:voters]...), Learners: append([]uint32{}, ids[voters:]...)}
}

// NextDeadline is when Tick should next be called.
func (n *PaxosNode) NextDeadline() (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var d C.uint64_t
	if err := check(C.qk_paxos_node_next_deadline(n.p, &d, &e), &e); err != nil {
		return 0, err
	}
	return uint64(d), nil
}

// CommitIndex: every slot below it is chosen and was delivered.
func (n *PaxosNode) CommitIndex() (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var c C.uint64_t
	if err := check(C.qk_paxos_node_commit_index(n.p, &c, &e), &e); err != nil {
		return 0, err
	}
	return uint64(c), nil
}

// IsLeader reports whether this replica leads.
func (n *PaxosNode) IsLeader() (bool, error) {
	return n.yesNo(func(v *C.uint8_t, e *C.qk_error) C.qk_status { return C.qk_paxos_node_is_leader(n.p, v, e) })
}
