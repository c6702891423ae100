package quorumkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testSecret = "go-test-cluster-secret"

// quorumkitBin is the `quorumkit` binary: QK_BIN, else the repository's build.
func quorumkitBin(t *testing.T) string {
	if b := os.Getenv("QK_BIN"); b != "" {
		return b
	}
	b, _ := filepath.Abs("../../target/release/quorumkit")
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("%s is missing (make bin, or set QK_BIN)", b)
	}
	return b
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCluster runs three lease replicas on free loopback ports in a temp
// dir and stops them (by PID, SIGKILL) when the test ends.
func startCluster(t *testing.T) []string {
	bin := quorumkitBin(t)
	dir := t.TempDir()
	var peers, addrs []string
	for i := 1; i <= 3; i++ {
		a := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		peers = append(peers, fmt.Sprintf("%d=%s", i, a))
		addrs = append(addrs, a)
	}
	for i := 1; i <= 3; i++ {
		cmd := exec.Command(bin, "serve", "--state", "lease", "--id", fmt.Sprint(i), "--peers", strings.Join(peers, ","),
			"--cluster-id", "11", "--heartbeat-ms", "20", "--data", filepath.Join(dir, fmt.Sprint("r", i)), "--init")
		cmd.Env = append(os.Environ(), "QK_CLUSTER_SECRET="+testSecret)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	return addrs
}

func TestLeaseClientAgainstThreeReplicas(t *testing.T) {
	addrs := startCluster(t)
	if _, err := NewLeaseClient(nil, 11, []byte(testSecret), 0); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("no address: %v", err)
	}
	if _, err := NewLeaseClient([]string{"not an address"}, 11, []byte(testSecret), 0); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("bad address: %v", err)
	}
	if _, err := NewLeaseClient(addrs, 11, []byte("short"), 0); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("short secret: %v", err)
	}
	c, err := NewLeaseClient(addrs, 11, []byte(testSecret), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The first grant waits for an election (bounded).
	var a Lease
	for i := 0; ; i++ {
		a, err = c.TryAcquire("db", "alice", 5*time.Second, Exclusive)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBackendUnavailable) || i == 200 {
			t.Fatalf("first grant: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now, _ := c.Now(); a.Token == 0 || a.ExpiresAtNs <= now {
		t.Fatalf("lease %+v at %d", a, now)
	}
	if _, err := c.TryAcquire("db", "bob", time.Second, Exclusive); !errors.Is(err, ErrBusy) {
		t.Fatalf("held: %v", err)
	}
	if _, err := c.TryAcquire("", "bob", time.Second, Exclusive); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("empty resource: %v", err)
	}
	if _, err := c.Acquire("db", "bob", time.Second, Exclusive, 100*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("timeout: %v", err)
	}
	if err := c.Release(Lease{Resource: "db", Owner: "mallory", Token: a.Token}); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("release by another owner: %v", err)
	}
	if r, err := c.Renew(a, 8*time.Second); err != nil || r.Token != a.Token {
		t.Fatalf("renew: %+v %v", r, err)
	}

	// Many goroutines queue on one resource; each is granted in turn with a
	// larger token, and the holders list shows exactly one at a time.
	const waiters = 8
	got := make(chan Lease, waiters)
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		go func(i int) {
			l, err := c.Acquire("db", fmt.Sprint("w", i), 5*time.Second, Exclusive, 20*time.Second)
			if err != nil {
				errs <- err
				return
			}
			got <- l
		}(i)
	}
	time.Sleep(200 * time.Millisecond)
	if err := c.Release(a); err != nil {
		t.Fatal(err)
	}
	last := a.Token
	for i := 0; i < waiters; i++ {
		select {
		case l := <-got:
			if l.Token <= last {
				t.Fatalf("token %d after %d", l.Token, last)
			}
			last = l.Token
			h, err := c.Holders("db")
			if err != nil || len(h) != 1 || h[0].Token != l.Token {
				t.Fatalf("holders %+v %v", h, err)
			}
			if err := c.Release(l); err != nil {
				t.Fatal(err)
			}
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			t.Fatal("a waiter was never granted")
		}
	}

	// A client with the wrong secret takes nothing.
	bad, err := NewLeaseClient(addrs, 11, []byte("not-the-cluster-secret"), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.TryAcquire("free", "intruder", time.Second, Exclusive); !errors.Is(err, ErrBackendUnavailable) {
		t.Fatalf("wrong secret: %v", err)
	}
	bad.Close()
	c.Close()
	if _, err := c.TryAcquire("db", "x", time.Second, Exclusive); err != ErrClosed {
		t.Fatalf("after close: %v", err)
	}
}
