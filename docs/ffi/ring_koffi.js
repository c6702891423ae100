const koffi = require('koffi');
const lib = koffi.load(process.env.QUORUMKIT_LIB || 'libquorumkit.so.2');

// The caller's error slot, filled by each call (right even for .async calls).
const qk_error = koffi.struct('qk_error', { status: 'uint32', message: koffi.array('char', 512) });
koffi.opaque('qk_ring');
const ring_new = lib.func('uint32 qk_ring_new(uint32, _Out_ qk_ring **, _Out_ qk_error *)');
const add_node = lib.func('uint32 qk_ring_add_node(qk_ring *, const char *, size_t, uint32, _Out_ qk_error *)');
const remove_node = lib.func('uint32 qk_ring_remove_node(qk_ring *, const char *, size_t, _Out_ qk_error *)');
const get_node = lib.func('uint32 qk_ring_get_node(qk_ring *, const uint8_t *, size_t, _Out_ size_t *, _Out_ qk_error *)');
const node_name = lib.func('uint32 qk_ring_node_name(qk_ring *, size_t, _Out_ const char **, _Out_ size_t *, _Out_ qk_error *)');
const ring_free = lib.func('void qk_ring_free(qk_ring *)');

const err = {};
const out = [null];
if (ring_new(0, out, err) !== 0) throw new Error(err.message);
const ring = out[0];
for (const name of ['cache-a', 'kaché-e']) {
  const b = Buffer.from(name, 'utf8'); // b.length is the UTF-8 byte length; name.length is not
  if (add_node(ring, b, b.length, 1, err) !== 0) throw new Error(err.message);
}
const key = Buffer.from('user:42');
const idx = [0];
if (get_node(ring, key, key.length, idx, err) !== 0) throw new Error(err.message);
const ptr = [null], len = [0];
node_name(ring, idx[0], ptr, len, err); // a string koffi copies; the ring owns the original
console.log('user:42 ->', ptr[0]);

const ghost = Buffer.from('ghost');
const st = remove_node(ring, ghost, ghost.length, err);
if (st !== 5 || err.status !== 5 || !err.message.includes('ghost')) throw new Error('expected NOT_FOUND');
console.log('error:', err.message);
ring_free(ring);
