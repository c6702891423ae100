package quorumkit

/*
#include <quorumkit.h>
*/
import "C"

import (
	"sync"
	"unsafe"
)

// HashRing is a consistent-hashing ring with virtual nodes (qk_ring).
// Lookups run concurrently; membership changes take the ring exclusively.
type HashRing struct {
	mu sync.RWMutex
	p  *C.qk_ring
}

// NewHashRing makes an empty ring with vnodes points per unit of weight
// (0: the library's default).
func NewHashRing(vnodes uint32) (*HashRing, error) {
	var e C.qk_error
	var p *C.qk_ring
	if err := check(C.qk_ring_new(C.uint32_t(vnodes), &p, &e), &e); err != nil {
		return nil, err
	}
	return &HashRing{p: p}, nil
}

// Close frees the ring. Safe to call more than once.
func (r *HashRing) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	C.qk_ring_free(r.p)
	r.p = nil
	return nil
}

// AddNode adds a node with a weight (>= 1).
func (r *HashRing) AddNode(name string, weight uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	n, nl := str(name)
	return check(C.qk_ring_add_node(r.p, n, nl, C.uint32_t(weight), &e), &e)
}

// RemoveNode removes a node (ErrNotFound if absent).
func (r *HashRing) RemoveNode(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return ErrClosed
	}
	var e C.qk_error
	n, nl := str(name)
	return check(C.qk_ring_remove_node(r.p, n, nl, &e), &e)
}

// Len is the number of nodes.
func (r *HashRing) Len() (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return 0, ErrClosed
	}
	var e C.qk_error
	var n C.size_t
	if err := check(C.qk_ring_node_count(r.p, &n, &e), &e); err != nil {
		return 0, err
	}
	return int(n), nil
}

// name copies node i's name (the library's copy is only lent).
func (r *HashRing) name(i C.size_t) (string, error) {
	var e C.qk_error
	var p *C.char
	var n C.size_t
	if err := check(C.qk_ring_node_name(r.p, i, &p, &n, &e), &e); err != nil {
		return "", err
	}
	return C.GoStringN(p, C.int(n)), nil
}

// Nodes lists the node names in index order.
func (r *HashRing) Nodes() ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return nil, ErrClosed
	}
	var e C.qk_error
	var n C.size_t
	if err := check(C.qk_ring_node_count(r.p, &n, &e), &e); err != nil {
		return nil, err
	}
	out := make([]string, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		s, err := r.name(i)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// GetNode is the node that owns key (ErrEmpty on an empty ring).
func (r *HashRing) GetNode(key []byte) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return "", ErrClosed
	}
	var e C.qk_error
	var idx C.size_t
	k, kl := bytesArg(key)
	if err := check(C.qk_ring_get_node(r.p, k, kl, &idx, &e), &e); err != nil {
		return "", err
	}
	return r.name(idx)
}

// GetNodes is the preference list: the first n distinct nodes for key.
func (r *HashRing) GetNodes(key []byte, n int) ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return nil, ErrClosed
	}
	if n <= 0 {
		return nil, nil
	}
	idx := make([]C.size_t, n)
	var e C.qk_error
	k, kl := bytesArg(key)
	if err := check(C.qk_ring_get_nodes(r.p, k, kl, C.size_t(n), &idx[0], &e), &e); err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i, x := range idx {
		s, err := r.name(x)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// GetNodeBatch looks up many keys in one call: the keys travel end to end
// in one buffer with offsets (qk_ring_get_node_batch_flat), so there is no
// copy per key.
func (r *HashRing) GetNodeBatch(keys [][]byte) ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return nil, ErrClosed
	}
	if len(keys) == 0 {
		return nil, nil
	}
	total := 0
	for _, k := range keys {
		total += len(k)
	}
	buf := make([]byte, 0, total)
	offsets := make([]C.size_t, len(keys)+1)
	for i, k := range keys {
		offsets[i] = C.size_t(len(buf))
		buf = append(buf, k...)
	}
	offsets[len(keys)] = C.size_t(len(buf))
	idx := make([]C.size_t, len(keys))
	var e C.qk_error
	b, bl := bytesArg(buf)
	st := C.qk_ring_get_node_batch_flat(r.p, b, bl, &offsets[0], C.size_t(len(keys)), &idx[0], &e)
	if err := check(st, &e); err != nil {
		return nil, err
	}
	// Names are few; resolve each index once.
	names := map[C.size_t]string{}
	out := make([]string, len(keys))
	for i, x := range idx {
		s, ok := names[x]
		if !ok {
			var err error
			if s, err = r.name(x); err != nil {
				return nil, err
			}
			names[x] = s
		}
		out[i] = s
	}
	return out, nil
}

var _ = unsafe.Pointer(nil)
