package quorumkit

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
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
	if err := n.ReadIndex(4, now); err != nil {
		t.Fatal(err)
	}
	drain(n)
	if len(reads) != 1 || reads[0].Index != 4 || reads[0].Count != 1 {
		t.Fatalf("reads %+v", reads)
	}
	want := slots
	n.Close()
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
