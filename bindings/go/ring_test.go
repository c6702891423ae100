package quorumkit

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func newRing(t *testing.T, nodes ...string) *HashRing {
	t.Helper()
	r, err := NewHashRing(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for _, n := range nodes {
		if err := r.AddNode(n, 1); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestRingLookupsAndBatchAgree(t *testing.T) {
	r := newRing(t, "a", "b", "c", "d")
	keys := make([][]byte, 10000)
	counts := map[string]int{}
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key-%d", i))
	}
	batch, err := r.GetNodeBatch(keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		single, err := r.GetNode(k)
		if err != nil {
			t.Fatal(err)
		}
		if single != batch[i] {
			t.Fatalf("key %q: single %q, batch %q", k, single, batch[i])
		}
		counts[single]++
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		if counts[n] < 1500 || counts[n] > 3500 {
			t.Fatalf("node %s owns %d of 10000 keys: %v", n, counts[n], counts)
		}
	}
	prefs, err := r.GetNodes([]byte("user:42"), 3)
	owner, _ := r.GetNode([]byte("user:42"))
	if err != nil || len(prefs) != 3 || prefs[0] != owner {
		t.Fatalf("preference list %v (owner %s): %v", prefs, owner, err)
	}
	seen := map[string]bool{}
	for _, p := range prefs {
		seen[p] = true
	}
	if len(seen) != 3 {
		t.Fatalf("preference list repeats a node: %v", prefs)
	}
	// The empty key is a key like any other (NULL, 0).
	if _, err := r.GetNode(nil); err != nil {
		t.Fatal(err)
	}
}

func TestRingErrors(t *testing.T) {
	r := newRing(t)
	if _, err := r.GetNode([]byte("k")); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty ring: %v", err)
	}
	err := r.RemoveNode("ghost")
	var qe *Error
	if !errors.As(err, &qe) || qe.Status != StatusNotFound || !strings.Contains(qe.Message, "ghost") {
		t.Fatalf("remove ghost: %#v", err)
	}
	if err := r.AddNode("a", 0); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("weight 0: %v", err)
	}
	if err := r.AddNode("a", 1); err != nil {
		t.Fatal(err)
	}
	if err := r.AddNode("a", 1); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := r.AddNode("bad\xff", 1); err == nil || err.(*Error).Status != StatusInvalidUTF8 {
		t.Fatalf("bad UTF-8: %v", err)
	}
	r.Close()
	if _, err := r.GetNode([]byte("k")); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
	r.Close() // twice is fine
}

// Regression: an empty Go string arrives as (NULL, 0). It must be the empty
// name (refused as a name, INVALID_ARG), not a NULL-pointer error, exactly
// as the empty key is accepted.
func TestEmptyGoStringIsTheEmptyName(t *testing.T) {
	r := newRing(t, "a")
	err := r.AddNode("", 1)
	var qe *Error
	if !errors.As(err, &qe) || qe.Status != StatusInvalidArg {
		t.Fatalf("empty name: %v (want invalid argument, not null argument)", err)
	}
	if err := r.RemoveNode(""); errors.Is(err, &Error{Status: StatusNullArg}) {
		t.Fatalf("empty name reported as NULL: %v", err)
	}
}

// Regression: messages used to be per OS thread, and goroutines migrate
// between OS threads; 32 goroutines each fail with their own name, yield,
// fail again, and every error must name its own call.
func TestErrorsBelongToTheirGoroutine(t *testing.T) {
	r := newRing(t, "a")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong := 0
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				name := fmt.Sprintf("missing-%d-%d", g, i)
				err := r.RemoveNode(name)
				runtime.Gosched()
				var qe *Error
				if !errors.As(err, &qe) || !strings.Contains(qe.Message, fmt.Sprintf("%q", name)) {
					mu.Lock()
					wrong++
					mu.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
	if wrong != 0 {
		t.Fatalf("%d of 32000 errors carried another call's message", wrong)
	}
}

func TestMultibyteNamesAreByteLengths(t *testing.T) {
	r := newRing(t, "kaché-e", "kaché-")
	nodes, err := r.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0] != "kaché-e" || nodes[1] != "kaché-" {
		t.Fatalf("nodes %q", nodes)
	}
}
