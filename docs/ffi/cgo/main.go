package main

/*
#cgo pkg-config: quorumkit
#include <stdlib.h>
#include <quorumkit.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

func main() {
	var e C.qk_error // one per call: goroutines change OS threads between calls
	var ring *C.qk_ring
	if C.qk_ring_new(0, &ring, &e) != C.QK_OK {
		panic(C.GoString(&e.message[0]))
	}
	defer C.qk_ring_free(ring)
	for _, name := range []string{"cache-a", "kaché-e"} {
		cs := C.CString(name) // or pass the string's bytes: the library copies them
		st := C.qk_ring_add_node(ring, cs, C.size_t(len(name)), 1, &e) // len() is bytes in Go
		C.free(unsafe.Pointer(cs))
		if st != C.QK_OK {
			panic(C.GoString(&e.message[0]))
		}
	}
	key := []byte("user:42")
	var idx C.size_t
	if C.qk_ring_get_node(ring, (*C.uint8_t)(&key[0]), C.size_t(len(key)), &idx, &e) != C.QK_OK {
		panic(C.GoString(&e.message[0]))
	}
	var name *C.char
	var n C.size_t
	C.qk_ring_node_name(ring, idx, &name, &n, &e)
	fmt.Println("user:42 ->", C.GoStringN(name, C.int(n))) // a copy: the ring owns name

	ghost := C.CString("ghost")
	defer C.free(unsafe.Pointer(ghost))
	if st := C.qk_ring_remove_node(ring, ghost, 5, &e); st != C.QK_ERR_NOT_FOUND || e.status != st {
		panic("expected QK_ERR_NOT_FOUND")
	}
	fmt.Println("error:", C.GoString(&e.message[0]))
}
