import ctypes, os

lib = ctypes.CDLL(os.environ.get("QUORUMKIT_LIB", "libquorumkit.so.2"))

class QkError(ctypes.Structure):  # the caller's error slot, filled by each call
    _fields_ = [("status", ctypes.c_uint32), ("message", ctypes.c_char * 512)]

P, E = ctypes.c_void_p, ctypes.POINTER(QkError)
lib.qk_ring_new.argtypes = [ctypes.c_uint32, ctypes.POINTER(P), E]
lib.qk_ring_add_node.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, E]
lib.qk_ring_remove_node.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, E]
lib.qk_ring_get_node.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), E]
lib.qk_ring_node_name.argtypes = [P, ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p),
                                  ctypes.POINTER(ctypes.c_size_t), E]
lib.qk_ring_free.argtypes = [P]
for f in (lib.qk_ring_new, lib.qk_ring_add_node, lib.qk_ring_remove_node,
          lib.qk_ring_get_node, lib.qk_ring_node_name):
    f.restype = ctypes.c_uint32

err = QkError()
ring = P()
assert lib.qk_ring_new(0, ctypes.byref(ring), ctypes.byref(err)) == 0
for name in ("cache-a", "kaché-e"):
    b = name.encode()  # pass the UTF-8 byte length, not len(name)
    assert lib.qk_ring_add_node(ring, b, len(b), 1, ctypes.byref(err)) == 0

idx = ctypes.c_size_t()
key = b"user:42"
assert lib.qk_ring_get_node(ring, key, len(key), ctypes.byref(idx), ctypes.byref(err)) == 0
name, name_len = ctypes.c_char_p(), ctypes.c_size_t()
lib.qk_ring_node_name(ring, idx, ctypes.byref(name), ctypes.byref(name_len), ctypes.byref(err))
print("user:42 ->", ctypes.string_at(name, name_len.value).decode())  # copy: the ring owns it

st = lib.qk_ring_remove_node(ring, b"ghost", 5, ctypes.byref(err))
assert st == err.status == 5 and b"ghost" in err.message  # QK_ERR_NOT_FOUND
print("error:", err.message.decode())
lib.qk_ring_free(ring)
