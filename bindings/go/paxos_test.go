package quorumkit

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// cluster drives three replicas in one process: a queue of copied
// messages and a fake clock.
type cluster struct {
	t       *testing.T
	dir     string
	now     uint64
	nodes   map[uint32]*PaxosNode
	mail    []mail
	decided map[uint32][][]byte
}

type mail struct {
	from, to uint32
	data     []byte
}

var members = []uint32{1, 2, 3}

func (c *cluster) open(id uint32) {
	c.t.Helper()
	cfg := PaxosConfig{ID: id, Members: []uint32{1, 2, 3}, Seed: uint64(id) * 7, ClusterID: 0x5eed}
	n, err := NewPaxosNode(cfg, filepath.Join(c.dir, fmt.Sprintf("replica-%d.log", id)), c.now)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
	c.decided[id] = nil // a restart re-delivers from slot 0
}

func (c *cluster) drain(id uint32) {
	c.t.Helper()
	outs, err := c.nodes[id].Poll()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, o := range outs {
		switch o.Kind {
		case OutputSend:
			// Regression: the config once kept a pointer to the caller's
			// member array, and peers read garbage ids (0, 2164273152).
			if o.To != 1 && o.To != 2 && o.To != 3 || o.To == id {
				c.t.Fatalf("replica %d sends to %d, not a peer", id, o.To)
			}
			c.mail = append(c.mail, mail{id, o.To, o.Data})
		case OutputDecided:
			if o.Count > 0 {
				c.decided[id] = append(c.decided[id], o.Data)
			}
		}
	}
}

// run advances time in 1 ms steps, delivering mail, until done or 30 s of
// fake time pass.
func (c *cluster) run(done func() bool) {
	c.t.Helper()
	for step := 0; step < 30000; step++ {
		if done() {
			return
		}
		c.now += uint64(time.Millisecond)
		for _, id := range members {
			if n := c.nodes[id]; n != nil {
				if err := n.Tick(c.now); err != nil {
					c.t.Fatal(err)
				}
				c.drain(id)
			}
		}
		for len(c.mail) > 0 {
			m := c.mail[0]
			c.mail = c.mail[1:]
			if n := c.nodes[m.to]; n != nil {
				if err := n.Step(m.from, m.data, c.now); err != nil {
					c.t.Fatal(err)
				}
				c.drain(m.to)
			}
		}
	}
	c.t.Fatal("the cluster did not get there in 30 s of fake time")
}

func (c *cluster) leader() uint32 {
	for _, id := range members {
		if n := c.nodes[id]; n != nil {
			if l, _ := n.IsLeader(); l {
				return id
			}
		}
	}
	return 0
}

func TestPaxosThreeReplicasOnFilesWithRestart(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir(), now: uint64(time.Second), nodes: map[uint32]*PaxosNode{},
		decided: map[uint32][][]byte{}}
	for _, id := range members {
		c.open(id)
	}
	defer func() {
		for _, n := range c.nodes {
			n.Close()
		}
	}()
	c.run(func() bool { return c.leader() != 0 })
	want := [][]byte{}
	for i := 0; i < 10; i++ {
		cmd := []byte(fmt.Sprintf("set x %d", i))
		want = append(want, cmd)
		if err := c.nodes[c.leader()].Propose(cmd, c.now); err != nil {
			t.Fatal(err)
		}
	}
	all := func() bool {
		for _, id := range members {
			if len(c.decided[id]) < len(want) {
				return false
			}
		}
		return true
	}
	c.run(all)
	for _, id := range members {
		for i, cmd := range want {
			if !bytes.Equal(c.decided[id][i], cmd) {
				t.Fatalf("replica %d decided %q at %d, want %q", id, c.decided[id][i], i, cmd)
			}
		}
	}

	// A second open of a live replica's file is refused.
	_, err := NewPaxosNode(PaxosConfig{ID: 2, Members: members, ClusterID: 0x5eed},
		filepath.Join(c.dir, "replica-2.log"), c.now)
	if !errors.Is(err, ErrStorageInUse) {
		t.Fatalf("double open: %v", err)
	}
	// Restart replica 2 from its file: it re-delivers and catches up.
	c.nodes[2].Close()
	c.nodes[2] = nil
	more := []byte("after restart")
	want = append(want, more)
	leader := c.leader()
	if leader == 2 || leader == 0 {
		c.run(func() bool { l := c.leader(); return l != 0 && l != 2 })
		leader = c.leader()
	}
	if err := c.nodes[leader].Propose(more, c.now); err != nil {
		t.Fatal(err)
	}
	c.open(2)
	c.run(all)
	if !bytes.Equal(c.decided[2][len(want)-1], more) {
		t.Fatalf("restarted replica decided %q", c.decided[2])
	}
	// Garbage is refused and changes nothing.
	if err := c.nodes[1].Step(2, []byte{0x01, 0xee, 0x13}, c.now); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage: %v", err)
	}
	// A bad config: an id that is not a member.
	if _, err := NewPaxosNode(PaxosConfig{ID: 9, Members: members}, "", 0); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("bad config: %v", err)
	}
}

// A lone replica on a file: compaction, a restart from the snapshot, and a
// ReadIndex read.
func TestPaxosCompactionAndReadIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lone.log")
	cfg := PaxosConfig{ID: 1, Members: []uint32{1}, ClusterID: 9}
	now := uint64(time.Second)
	n, err := NewPaxosNode(cfg, path, now)
	if err != nil {
		t.Fatal(err)
	}
	var slots uint64
	var reads []PaxosOutput
	var snapshot []byte
	drain := func(n *PaxosNode) {
		outs, err := n.Poll()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			switch o.Kind {
			case OutputDecided:
				if o.Index+1 >= o.Count {
					slots = o.Slot + 1
				}
			case OutputSnapshot:
				snapshot, slots = o.Data, o.Slot
			case OutputReadIndex:
				reads = append(reads, o)
			}
		}
	}
	for i := 0; i < 100; i++ {
		if l, _ := n.IsLeader(); l {
			break
		}
		d, _ := n.NextDeadline()
		now = d
		if err := n.Tick(now); err != nil {
			t.Fatal(err)
		}
		drain(n)
	}
	for i := 0; i < 5; i++ {
		if err := n.Propose([]byte(fmt.Sprintf("c%d", i)), now); err != nil {
			t.Fatal(err)
		}
		drain(n)
	}
	if err := n.Compact(slots+3, []byte("x"), now); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("compact past the commit index: %v", err)
	}
	state := []byte(fmt.Sprintf("state@%d", slots))
	if err := n.Compact(slots, state, now); err != nil {
		t.Fatal(err)
	}
	if start, _ := n.LogStart(); start != slots {
		t.Fatalf("log starts at %d, want %d", start, slots)
	}
	// The checkpoint is written in the background; ticks put it in place.
	for i := 0; ; i++ {
		c, err := n.Compacting()
		if err != nil {
			t.Fatal(err)
		}
		if !c {
			break
		}
		if i == 2000 {
			t.Fatal("the checkpoint never landed")
		}
		time.Sleep(time.Millisecond)
		if err := n.Tick(now); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.ReadIndex(4, now); err != nil {
		t.Fatal(err)
	}
	drain(n)
	if len(reads) != 1 || reads[0].Index != 4 || reads[0].Count != 1 {
		t.Fatalf("reads %+v", reads)
	}
	want := slots
	n.Close()
	if _, err := n.Compacting(); !errors.Is(err, ErrClosed) {
		t.Fatalf("compacting on a closed node: %v", err)
	}
	n, err = NewPaxosNode(cfg, path, now)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	slots = 0
	drain(n)
	if !bytes.Equal(snapshot, state) || slots != want {
		t.Fatalf("restart: snapshot %q at %d, want %q at %d", snapshot, slots, state, want)
	}
}

// group drives replicas on memory that may join later: a queue of copied
// messages, a fake clock, and what each replica decided and which
// memberships it polled.
type group struct {
	t           *testing.T
	now         uint64
	ids         []uint32
	nodes       map[uint32]*PaxosNode
	mail        []mail
	decided     map[uint32][]string
	memberships map[uint32][]Membership
}

func newGroup(t *testing.T) *group {
	g := &group{t: t, now: uint64(time.Second), nodes: map[uint32]*PaxosNode{},
		decided: map[uint32][]string{}, memberships: map[uint32][]Membership{}}
	t.Cleanup(func() {
		for _, n := range g.nodes {
			n.Close()
		}
	})
	return g
}

func groupConfig(id uint32, members ...uint32) PaxosConfig {
	return PaxosConfig{ID: id, Members: members, HeartbeatInterval: 10 * time.Millisecond,
		ElectionTimeout: 100 * time.Millisecond, Seed: uint64(id), ClusterID: 0x6a}
}

// add starts replica id of members on path ("" for memory), joining the
// cluster when join is set.
func (g *group) add(id uint32, join bool, path string, members ...uint32) *PaxosNode {
	g.t.Helper()
	start := NewPaxosNode
	if join {
		start = JoinPaxosNode
	}
	n, err := start(groupConfig(id, members...), path, g.now)
	if err != nil {
		g.t.Fatal(err)
	}
	g.ids = append(g.ids, id)
	g.nodes[id] = n
	return n
}

func (g *group) drain(id uint32) {
	g.t.Helper()
	outs, err := g.nodes[id].Poll()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, o := range outs {
		switch o.Kind {
		case OutputSend:
			g.mail = append(g.mail, mail{id, o.To, o.Data})
		case OutputDecided:
			if o.Count > 0 {
				g.decided[id] = append(g.decided[id], string(o.Data))
			}
		case OutputMembership:
			if o.Membership == nil || o.Data != nil || o.Index != o.Membership.Epoch ||
				o.Slot != o.Membership.Start || o.Count != uint64(len(o.Membership.Voters)) {
				g.t.Fatalf("replica %d: membership output %+v", id, o)
			}
			g.memberships[id] = append(g.memberships[id], *o.Membership)
		}
	}
}

func (g *group) step() {
	g.t.Helper()
	g.now += uint64(time.Millisecond)
	for _, id := range g.ids {
		if n := g.nodes[id]; n != nil {
			if d, _ := n.NextDeadline(); d <= g.now {
				if err := n.Tick(g.now); err != nil {
					g.t.Fatal(err)
				}
			}
			g.drain(id)
		}
	}
	for len(g.mail) > 0 {
		m := g.mail[0]
		g.mail = g.mail[1:]
		if n := g.nodes[m.to]; n != nil {
			if err := n.Step(m.from, m.data, g.now); err != nil {
				g.t.Fatal(err)
			}
			g.drain(m.to)
		}
	}
}

// until steps (1 ms each) until done, or fails after 30 s of fake time.
func (g *group) until(what string, done func() bool) {
	g.t.Helper()
	for i := 0; i < 30000 && !done(); i++ {
		g.step()
	}
	if !done() {
		g.t.Fatalf("%s: not within 30 s of fake time", what)
	}
}

func (g *group) leader() uint32 {
	for _, id := range g.ids {
		if n := g.nodes[id]; n != nil {
			if l, _ := n.IsLeader(); l {
				return id
			}
		}
	}
	return 0
}

func (g *group) epoch(id uint32) uint64 {
	ms := g.memberships[id]
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Epoch
}

func (g *group) commit(id uint32) uint64 {
	c, err := g.nodes[id].CommitIndex()
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func (g *group) propose(id uint32, cmd string) {
	g.t.Helper()
	if err := g.nodes[id].Propose([]byte(cmd), g.now); err != nil {
		g.t.Fatal(err)
	}
	g.drain(id)
}

func membership(t *testing.T, n *PaxosNode) Membership {
	t.Helper()
	m, err := n.Membership()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

// A lone voter adds a joiner as a learner; it catches up and is promoted.
func TestPaxosMembershipJoinAndPromote(t *testing.T) {
	g := newGroup(t)
	one := g.add(1, false, "", 1)
	g.until("the lone voter leads", func() bool { return g.leader() == 1 })
	for _, cmd := range []string{"a", "b", "c"} {
		g.propose(1, cmd)
	}
	if got := membership(t, one); got.Epoch != 0 || fmt.Sprint(got.Voters, got.Learners) != "[1] []" {
		t.Fatalf("initial membership %+v", got)
	}

	// The joiner's config names the cluster's voters, not itself.
	_, err := NewPaxosNode(groupConfig(2, 1), "", g.now)
	wantErr(t, "a non-member without join", err, ErrInvalidArg)
	two := g.add(2, true, "", 1)

	// Refusals change nothing.
	err = one.Promote(2, g.now)
	wantErr(t, "promote a non-learner", err, ErrInvalidArg)
	if !strings.Contains(err.Error(), "not a learner") {
		t.Fatalf("promote a non-learner: %v", err)
	}
	wantErr(t, "remove the only voter", one.Remove(1, g.now), ErrInvalidArg)
	wantErr(t, "remove an unknown replica", one.Remove(9, g.now), ErrInvalidArg)
	wantErr(t, "add a member", one.AddLearner(1, g.now), ErrInvalidArg)
	wantErr(t, "an unknown kind", one.ChangeMembership(MembershipChange(77), 2, 0, g.now), ErrInvalidArg)
	wantErr(t, "a change on a non-leader", two.AddLearner(3, g.now), ErrNotLeader)
	wantErr(t, "a command that looks like a change", one.Propose([]byte("\xffqk-cfg\x01x"), g.now), ErrInvalidArg)
	if got := membership(t, one); got.Epoch != 0 || len(got.Learners) != 0 {
		t.Fatalf("membership after refusals %+v", got)
	}

	// Add the learner: the lone voter decides the change at once.
	if err := one.AddLearner(2, g.now); err != nil {
		t.Fatal(err)
	}
	g.drain(1)
	if len(g.memberships[1]) != 1 {
		t.Fatalf("leader's membership outputs %+v", g.memberships[1])
	}
	added := g.memberships[1][0]
	if added.Epoch != 1 || added.Start < 4 || fmt.Sprint(added.Voters, added.Learners) != "[1] [2]" {
		t.Fatalf("added %+v", added)
	}
	if got := membership(t, one); fmt.Sprint(got) != fmt.Sprint(added) {
		t.Fatalf("Membership() %+v, output %+v", got, added)
	}
	wantErr(t, "a lone voter whose epoch ended", one.AddLearner(3, g.now), ErrNotLeader)

	// The learner catches up: the same commands, the same membership.
	g.until("the learner catches up", func() bool { return g.epoch(2) == 1 && g.commit(2) == g.commit(1) })
	if fmt.Sprint(g.decided[2]) != "[a b c]" {
		t.Fatalf("learner decided %q", g.decided[2])
	}
	if got := membership(t, two); fmt.Sprint(got) != fmt.Sprint(added) {
		t.Fatalf("learner's membership %+v, want %+v", got, added)
	}

	// Let the leader hear the learner, then promote it: two voters.
	g.until("the voter leads in epoch 1", func() bool { return g.leader() == 1 })
	for i := 0; i < 30; i++ {
		g.step()
	}
	wantErr(t, "promote on a follower", two.Promote(2, g.now), ErrNotLeader)
	if err := one.Promote(2, g.now); err != nil {
		t.Fatal(err)
	}
	g.drain(1)
	g.until("both reach epoch 2", func() bool { return g.epoch(1) == 2 && g.epoch(2) == 2 })
	for _, id := range []uint32{1, 2} {
		m := g.memberships[id][len(g.memberships[id])-1]
		if fmt.Sprint(m.Voters, m.Learners) != "[1 2] []" {
			t.Fatalf("replica %d: epoch 2 is %+v", id, m)
		}
		if got := membership(t, g.nodes[id]); fmt.Sprint(got) != fmt.Sprint(m) {
			t.Fatalf("replica %d: Membership() %+v, output %+v", id, got, m)
		}
	}

	// Both vote now: a command proposed at the new voter is decided by both.
	g.until("a leader in epoch 2", func() bool { return g.leader() != 0 })
	g.propose(2, "two")
	g.until("both decide it", func() bool { return len(g.decided[1]) == 4 && len(g.decided[2]) == 4 })
	if fmt.Sprint(g.decided[1]) != "[a b c two]" || fmt.Sprint(g.decided[2]) != "[a b c two]" {
		t.Fatalf("decided %q and %q", g.decided[1], g.decided[2])
	}

	// Two voters: removing either is refused; a follower is not the leader.
	l := g.leader()
	f := 3 - l
	wantErr(t, "remove the other of two voters", g.nodes[l].Remove(f, g.now), ErrInvalidArg)
	wantErr(t, "remove itself of two voters", g.nodes[l].Remove(l, g.now), ErrInvalidArg)
	wantErr(t, "remove on a follower", g.nodes[f].Remove(l, g.now), ErrNotLeader)
	if got := membership(t, one); got.Epoch != 2 {
		t.Fatalf("membership after refusals %+v", got)
	}
	one.Close()
	if _, err := one.Membership(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
	wantErr(t, "closed", one.AddLearner(5, g.now), ErrClosed)
}

// Replace gives a voter's vote to a learner; the replaced replica is out
// and the joiner, restarted from its file with JoinPaxosNode, keeps its
// membership.
func TestPaxosMembershipReplace(t *testing.T) {
	g := newGroup(t)
	g.add(1, false, "", 1, 2)
	g.add(2, false, "", 1, 2)
	g.until("a leader", func() bool { return g.leader() != 0 })
	g.propose(g.leader(), "x")
	g.until("x decided", func() bool { return len(g.decided[1]) == 1 && len(g.decided[2]) == 1 })

	path := filepath.Join(t.TempDir(), "joiner.log")
	g.add(3, true, path, 1, 2)
	l := g.leader()
	wantErr(t, "replace with a non-learner", g.nodes[l].Replace(3-l, 3, g.now), ErrInvalidArg)
	if err := g.nodes[l].AddLearner(3, g.now); err != nil {
		t.Fatal(err)
	}
	g.drain(l)
	g.until("the learner catches up", func() bool { return g.epoch(3) == 1 && g.commit(3) == g.commit(l) })
	for i := 0; i < 30; i++ {
		g.step()
	}
	g.until("a leader in epoch 1", func() bool { return g.leader() != 0 })
	l = g.leader()
	old := 3 - l
	wantErr(t, "replace a learner", g.nodes[l].Replace(3, old, g.now), ErrInvalidArg)
	if err := g.nodes[l].Replace(old, 3, g.now); err != nil {
		t.Fatal(err)
	}
	g.drain(l)
	g.until("epoch 2", func() bool { return g.epoch(l) == 2 && g.epoch(3) == 2 })
	m := g.memberships[3][len(g.memberships[3])-1]
	voters := append([]uint32{}, m.Voters...)
	sort.Slice(voters, func(i, j int) bool { return voters[i] < voters[j] })
	want := []uint32{l, 3}
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if fmt.Sprint(voters) != fmt.Sprint(want) || len(m.Learners) != 0 {
		t.Fatalf("after replace %+v, want voters %v", m, want)
	}

	// The replaced replica is out: the two voters decide without it.
	g.nodes[old].Close()
	delete(g.nodes, old)
	g.until("a leader in epoch 2", func() bool { return g.leader() != 0 })
	g.propose(g.leader(), "y")
	g.until("y decided", func() bool { return len(g.decided[3]) == 2 && len(g.decided[l]) == 2 })
	if fmt.Sprint(g.decided[3]) != "[x y]" {
		t.Fatalf("joiner decided %q", g.decided[3])
	}

	// Restart the joiner from its file: only JoinPaxosNode reopens it, and
	// it re-delivers its commands and its membership.
	g.nodes[3].Close()
	_, err := NewPaxosNode(groupConfig(3, 1, 2), path, g.now)
	wantErr(t, "reopen a joiner without join", err, ErrInvalidArg)
	n, err := JoinPaxosNode(groupConfig(3, 1, 2), path, g.now)
	if err != nil {
		t.Fatal(err)
	}
	g.nodes[3], g.decided[3], g.memberships[3] = n, nil, nil
	g.drain(3)
	if fmt.Sprint(g.decided[3]) != "[x y]" || g.epoch(3) != 2 {
		t.Fatalf("restarted joiner: decided %q, memberships %+v", g.decided[3], g.memberships[3])
	}
	if got := membership(t, n); fmt.Sprint(got) != fmt.Sprint(m) {
		t.Fatalf("restarted joiner's membership %+v, want %+v", got, m)
	}
}
