package quorumkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// counter: "add N" adds N and answers the total; "fail" is refused;
// "panic" panics; a query answers the total. Its snapshot is the total.
type counter struct {
	mu       sync.Mutex
	total    int64
	restores int
}

func (c *counter) Apply(_ uint64, cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := string(cmd)
	switch {
	case s == "fail":
		return nil, errors.New("refused: fail")
	case s == "panic":
		panic("boom in apply")
	case strings.HasPrefix(s, "add "):
		n, err := strconv.ParseInt(s[4:], 10, 64)
		if err != nil {
			return nil, err
		}
		c.total += n
		return []byte(strconv.FormatInt(c.total, 10)), nil
	}
	return nil, fmt.Errorf("unknown command %q", s)
}

func (c *counter) Query([]byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []byte(strconv.FormatInt(c.total, 10)), nil
}

func (c *counter) Snapshot() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []byte(strconv.FormatInt(c.total, 10)), nil
}

func (c *counter) Restore(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return err
	}
	c.total, c.restores = n, c.restores+1
	return nil
}

func (c *counter) value() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

var replicaSecret = []byte("go-binding-test-secret-0123456789")

// freePorts reserves n loopback ports (closed again: the replicas listen).
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		defer l.Close()
	}
	return addrs
}

// waitFor polls cond every 10 ms for at most limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReplicaClusterOverTheNetwork(t *testing.T) {
	root := t.TempDir()
	addrs := freePorts(t, 3)
	peers := map[uint32]string{1: addrs[0], 2: addrs[1], 3: addrs[2]}
	cfg := func(id uint32, init bool) ReplicaConfig {
		return ReplicaConfig{ID: id, Peers: peers, DataDir: filepath.Join(root, fmt.Sprint(id)),
			ClusterID: 77, Secret: replicaSecret, Init: init, Heartbeat: 20 * time.Millisecond, CompactEvery: 4}
	}
	machines := map[uint32]*counter{}
	replicas := map[uint32]*Replica{}
	for id := uint32(1); id <= 3; id++ {
		if err := os.MkdirAll(cfg(id, true).DataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		machines[id] = &counter{}
		r, err := StartReplica(cfg(id, true), machines[id])
		if err != nil {
			t.Fatalf("start %d: %v", id, err)
		}
		replicas[id] = r
	}
	defer func() {
		for _, r := range replicas {
			r.Close()
		}
	}()

	client, err := NewNetClient(addrs, 77, replicaSecret, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	want := int64(0)
	for i := int64(1); i <= 10; i++ {
		want += i
		got, err := client.Propose([]byte(fmt.Sprintf("add %d", i)))
		if err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
		if string(got) != strconv.FormatInt(want, 10) {
			t.Fatalf("add %d answered %q, want %d", i, got, want)
		}
	}
	// A refusal and a panic in the Go state machine reach the proposer as
	// ErrInvalidArg with their message; the replicas go on.
	if _, err := client.Propose([]byte("fail")); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "refused: fail") {
		t.Fatalf("a refused command: %v", err)
	}
	if _, err := client.Propose([]byte("panic")); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "boom in apply") {
		t.Fatalf("a panicking command: %v", err)
	}
	if got, err := client.Read(nil); err != nil || string(got) != "55" {
		t.Fatalf("read: %q, %v", got, err)
	}

	// One leader, known to all; every replica applied every command.
	var leader uint32
	waitFor(t, 10*time.Second, "one leader known to every replica", func() bool {
		leader = 0
		for _, r := range replicas {
			s, err := r.Status()
			if err != nil || s.Leader == 0 || (leader != 0 && s.Leader != leader) {
				return false
			}
			leader = s.Leader
		}
		return true
	})
	waitFor(t, 10*time.Second, "every replica to apply the commands", func() bool {
		for id := range replicas {
			if machines[id].value() != 55 {
				return false
			}
		}
		return true
	})
	follower := leader%3 + 1
	if s, _ := replicas[leader].Status(); s.ID != leader || s.CommitIndex < 12 || s.Applied < 12 {
		t.Fatalf("leader status %+v", s)
	}

	// Membership, and the leader-only operations refused where they do
	// not apply.
	m, err := replicas[follower].Membership()
	if err != nil || fmt.Sprint(m.Voters) != "[1 2 3]" || len(m.Learners) != 0 {
		t.Fatalf("membership %+v, %v", m, err)
	}
	if err := replicas[follower].AddPeer(9, freePorts(t, 1)[0]); err != nil {
		t.Fatal(err)
	}
	if err := replicas[follower].AddPeer(9, "127.0.0.1:1"); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("a known replica at another address: %v", err)
	}
	if err := replicas[follower].ChangeMembership(AddLearner, 9, 0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a change on a follower: %v", err)
	}
	if err := replicas[leader].ChangeMembership(AddLearner, 9, 0); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("adding a replica without an address: %v", err)
	}
	if err := replicas[leader].TransferLeadership(9); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("a transfer to a non-voter: %v", err)
	}
	if err := replicas[leader].AddPeer(0, "127.0.0.1:1"); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("peer id 0: %v", err)
	}

	// ReadIndex reads, and a policy that does not exist.
	for _, r := range replicas {
		if err := r.SetReadPolicy(ReadIndex); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := client.Propose([]byte("add 100")); err != nil || string(got) != "155" {
		t.Fatalf("add 100: %q, %v", got, err)
	}
	if got, err := client.Read(nil); err != nil || string(got) != "155" {
		t.Fatalf("a ReadIndex read: %q, %v", got, err)
	}
	if err := replicas[leader].SetReadPolicy(ReadPolicy(7)); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("read policy 7: %v", err)
	}

	// A follower stopped, the cluster goes on; restarted from its
	// directory (from its snapshot: it compacts every 4 slots), it catches
	// up.
	replicas[follower].Close()
	if _, err := replicas[follower].Status(); !errors.Is(err, ErrClosed) {
		t.Fatalf("status of a closed replica: %v", err)
	}
	if err := replicas[follower].SetReadPolicy(ReadLease); !errors.Is(err, ErrClosed) {
		t.Fatalf("read policy of a closed replica: %v", err)
	}
	for i := 0; i < 6; i++ {
		if _, err := client.Propose([]byte("add 1")); err != nil {
			t.Fatal(err)
		}
	}
	machines[follower] = &counter{}
	r, err := StartReplica(cfg(follower, false), machines[follower])
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	replicas[follower] = r
	waitFor(t, 10*time.Second, "the restarted replica to catch up", func() bool {
		return machines[follower].value() == 161
	})
	if machines[follower].restores == 0 {
		t.Fatal("the restarted replica never restored a snapshot")
	}

	// Many goroutines at once through one client, Status polled meanwhile:
	// every command is applied exactly once.
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := client.Propose([]byte("add 1")); err != nil {
					errs <- err
				}
				if _, err := replicas[leader].Status(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a concurrent call: %v", err)
	}
	waitFor(t, 10*time.Second, "every replica to apply the concurrent commands", func() bool {
		for id := range replicas {
			if machines[id].value() != 241 {
				return false
			}
		}
		return true
	})

	// The same directory cannot be created again nor opened twice.
	if _, err := StartReplica(cfg(follower, true), &counter{}); err == nil {
		t.Fatal("init over a live replica's directory")
	}
}

func TestReplicaBadInput(t *testing.T) {
	root := t.TempDir()
	addrs := freePorts(t, 2)
	peers := map[uint32]string{1: addrs[0], 2: addrs[1]}
	base := ReplicaConfig{ID: 1, Peers: peers, DataDir: root, ClusterID: 5, Secret: replicaSecret, Init: true}
	if _, err := StartReplica(base, nil); err == nil {
		t.Fatal("a nil state machine")
	}
	bad := base
	bad.ID = 3
	if _, err := StartReplica(bad, &counter{}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("an id not among the peers: %v", err)
	}
	bad = base
	bad.Peers = map[uint32]string{1: "not an address", 2: addrs[1]}
	if _, err := StartReplica(bad, &counter{}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("a bad address: %v", err)
	}
	bad = base
	bad.Secret = []byte("short")
	if _, err := StartReplica(bad, &counter{}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("a short secret: %v", err)
	}
	bad = base
	bad.CompactEvery = 3
	if _, err := StartReplica(bad, struct{ StateMachine }{&counter{}}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("compaction without a Snapshotter: %v", err)
	}
	bad = base
	bad.Init = false
	var storage *Error
	if _, err := StartReplica(bad, &counter{}); !errors.As(err, &storage) || storage.Status < StatusStorage {
		t.Fatalf("a restart of an empty directory: %v", err)
	}
	if _, err := NewNetClient([]string{"nowhere"}, 5, replicaSecret, 0); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("a client of a bad address: %v", err)
	}
	c, err := NewNetClient(addrs, 5, replicaSecret, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody listens: the call ends within its timeout.
	start := time.Now()
	if _, err := c.Propose([]byte("add 1")); !errors.Is(err, ErrBackendUnavailable) {
		t.Fatalf("a propose with no replica up: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the propose took %v", d)
	}
	c.Close()
	if _, err := c.Read(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("a read on a closed client: %v", err)
	}
	c.Close()
}

// Close races calls from many goroutines: each call either works or
// answers ErrClosed, and nothing crashes or hangs.
func TestReplicaCloseRacesCalls(t *testing.T) {
	root := t.TempDir()
	addrs := freePorts(t, 1)
	cfg := ReplicaConfig{ID: 1, Peers: map[uint32]string{1: addrs[0]}, DataDir: root, ClusterID: 3,
		Secret: replicaSecret, Init: true, Heartbeat: 10 * time.Millisecond}
	r, err := StartReplica(cfg, &counter{})
	if err != nil {
		t.Fatal(err)
	}
	// Calls on one client take turns: after the replica is gone each call
	// in line waits out its timeout, so keep it short.
	client, err := NewNetClient(addrs, 3, replicaSecret, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the lone replica to lead", func() bool {
		s, err := r.Status()
		return err == nil && s.Leader == 1
	})
	if _, err := client.Propose([]byte("add 1")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	bad := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				var err error
				switch (g + i) % 4 {
				case 0:
					_, err = r.Status()
				case 1:
					_, err = r.Membership()
				case 2:
					err = r.SetReadPolicy(ReadLease)
				case 3:
					_, err = client.Propose([]byte("add 1"))
				}
				if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrBackendUnavailable) {
					bad <- err
					return
				}
			}
		}(g)
	}
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		r.Close()
		client.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30 s")
	}
	wg.Wait()
	close(bad)
	for err := range bad {
		t.Fatalf("a call racing Close: %v", err)
	}
	if _, err := r.Status(); !errors.Is(err, ErrClosed) {
		t.Fatalf("status after close: %v", err)
	}
	if _, err := client.Propose([]byte("add 1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("propose after close: %v", err)
	}
}
