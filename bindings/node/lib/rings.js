'use strict';
// Placement: HashRing (qk_ring), KetamaRing (qk_ketama), Maglev (qk_maglev)
// and Rendezvous (qk_rendezvous) share one shape of C API, so one class
// wraps them all. Node names lent by the library (qk_x_node_name) are
// copied into JS strings at once: they die at the next change.

const { koffi, fn, call, callAllowing, bytes, Handle, makeError, CODES } = require('./native');

function functions(x, { add = 'add_node', remove = 'remove_node', weight = 'uint32' } = {}) {
  const h = `qk_${x} *`;
  return {
    free: fn(`void qk_${x}_free(${h})`),
    add: fn(`uint32 qk_${x}_${add}(${h}, const uint8_t *, size_t, ${weight}, qk_error *)`),
    remove: fn(`uint32 qk_${x}_${remove}(${h}, const uint8_t *, size_t, qk_error *)`),
    setWeight: fn(`uint32 qk_${x}_set_weight(${h}, const uint8_t *, size_t, ${weight}, qk_error *)`),
    weight: fn(`uint32 qk_${x}_weight(${h}, const uint8_t *, size_t, _Out_ ${weight} *, qk_error *)`),
    count: fn(`uint32 qk_${x}_node_count(${h}, _Out_ size_t *, qk_error *)`),
    name: fn(`uint32 qk_${x}_node_name(${h}, size_t, _Out_ void **, _Out_ size_t *, qk_error *)`),
    index: fn(`uint32 qk_${x}_node_index(${h}, const uint8_t *, size_t, _Out_ size_t *, qk_error *)`),
    get: fn(`uint32 qk_${x}_get_node(${h}, const uint8_t *, size_t, _Out_ size_t *, qk_error *)`),
    getN: fn(`uint32 qk_${x}_get_nodes(${h}, const uint8_t *, size_t, size_t, size_t *, qk_error *)`),
    batch: fn(`uint32 qk_${x}_get_node_batch_flat(${h}, const uint8_t *, size_t, const size_t *, size_t, size_t *, qk_error *)`),
    shares: fn(`uint32 qk_${x}_shares(${h}, double *, size_t, qk_error *)`),
    snapshot: fn(`uint32 qk_${x}_snapshot(${h}, uint8_t *, size_t, _Out_ size_t *, qk_error *)`),
    restore: fn(`uint32 qk_${x}_restore(const uint8_t *, size_t, _Out_ ${h}*, qk_error *)`),
  };
}

const F = {
  ring: { ...functions('ring'), new: fn('uint32 qk_ring_new(uint32, _Out_ qk_ring **, qk_error *)') },
  ketama: {
    ...functions('ketama', { add: 'add_server', remove: 'remove_server' }),
    new: fn('uint32 qk_ketama_new(uint32, const void *, const size_t *, const uint32_t *, size_t, _Out_ qk_ketama **, qk_error *)'),
  },
  maglev: {
    ...functions('maglev'),
    new: fn('uint32 qk_maglev_new(uint32, _Out_ qk_maglev **, qk_error *)'),
    clone: fn('uint32 qk_maglev_clone(qk_maglev *, _Out_ qk_maglev **, qk_error *)'),
    diff: fn('uint32 qk_maglev_diff(qk_maglev *, qk_maglev *, _Out_ double *, qk_error *)'),
    tableSize: fn('uint32 qk_maglev_table_size(qk_maglev *, _Out_ uint32_t *, qk_error *)'),
  },
  rendezvous: {
    ...functions('rendezvous', { weight: 'double' }),
    new: fn('uint32 qk_rendezvous_new(_Out_ qk_rendezvous **, qk_error *)'),
  },
};

/** The pointer a qk_x_new / qk_x_restore stored in its out-parameter. */
function make(f, ...args) {
  const out = [null];
  call(f, ...args, out);
  return out[0];
}

/** The common API of the four placements. */
class Placement extends Handle {
  constructor(ptr, f) {
    super(ptr, f.free);
    this._f = f;
  }

  /** Adds node `name` (UTF-8, non-empty) with `weight` (default 1). */
  addNode(name, weight = 1) {
    const b = bytes(name, 'name');
    call(this._f.add, this.ptr, b, b.length, weight);
  }

  /** Removes node `name`; NotFoundError if there is none. */
  removeNode(name) {
    const b = bytes(name, 'name');
    call(this._f.remove, this.ptr, b, b.length);
  }

  setWeight(name, weight) {
    const b = bytes(name, 'name');
    call(this._f.setWeight, this.ptr, b, b.length, weight);
  }

  weight(name) {
    const b = bytes(name, 'name');
    const out = [0];
    call(this._f.weight, this.ptr, b, b.length, out);
    return out[0];
  }

  get size() {
    const out = [0];
    call(this._f.count, this.ptr, out);
    return Number(out[0]);
  }

  /** The name of node `index` (indices are dense, in insertion order). */
  nodeName(index) {
    const p = [null];
    const len = [0];
    call(this._f.name, this.ptr, index, p, len);
    return koffiString(p[0], Number(len[0]));
  }

  /** Every node's name, by index. */
  get nodeNames() {
    const names = [];
    for (let i = 0, n = this.size; i < n; i++) names.push(this.nodeName(i));
    return names;
  }

  indexOf(name) {
    const b = bytes(name, 'name');
    const out = [0];
    call(this._f.index, this.ptr, b, b.length, out);
    return Number(out[0]);
  }

  /** The index of the node owning `key` (a string, as UTF-8, or bytes). */
  getNodeIndex(key) {
    const k = bytes(key, 'key');
    const out = [0];
    call(this._f.get, this.ptr, k, k.length, out);
    return Number(out[0]);
  }

  /** The name of the node owning `key`. */
  getNode(key) {
    return this.nodeName(this.getNodeIndex(key));
  }

  /** The first `n` distinct nodes for `key`, in preference order. */
  getNodes(key, n) {
    const k = bytes(key, 'key');
    const out = new BigUint64Array(n); // size_t[n]
    call(this._f.getN, this.ptr, k, k.length, n, out);
    return Array.from(out, (i) => this.nodeName(Number(i)));
  }

  /**
   * The owners' indices of many keys in one call: the keys go end to end in
   * one Buffer with count + 1 size_t offsets (qk_x_get_node_batch_flat).
   */
  getNodeIndexBatch(keys) {
    const n = keys.length;
    const offsets = new BigUint64Array(n + 1);
    const parts = new Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      parts[i] = typeof k === 'string' ? k : bytes(k, 'key');
      offsets[i] = BigInt(total);
      total += typeof k === 'string' ? Buffer.byteLength(k, 'utf8') : parts[i].length;
    }
    offsets[n] = BigInt(total);
    const flat = Buffer.allocUnsafe(total);
    for (let i = 0; i < n; i++) {
      const at = Number(offsets[i]);
      if (typeof parts[i] === 'string') flat.write(parts[i], at, 'utf8');
      else parts[i].copy(flat, at);
    }
    const out = new BigUint64Array(n);
    call(this._f.batch, this.ptr, flat, total, offsets, n, out);
    return Uint32Array.from(out, Number);
  }

  /** The owners' names of many keys in one call. */
  getNodeBatch(keys) {
    const idx = this.getNodeIndexBatch(keys);
    const names = this.nodeNames;
    return Array.from(idx, (i) => names[i]);
  }

  /** Each node's share of the keys, by index. */
  shares() {
    const n = this.size;
    const out = new Float64Array(Math.max(n, 1));
    call(this._f.shares, this.ptr, out, n);
    return Array.from(out.subarray(0, n));
  }

  /** A versioned, checksummed snapshot of the membership (restore with `X.restore`). */
  snapshot() {
    // Two-call pattern: capacity 0 answers BUFFER_TOO_SMALL with the size.
    const len = [0];
    if (callAllowing([CODES.BUFFER_TOO_SMALL], this._f.snapshot, this.ptr, null, 0, len) === 0) {
      return Buffer.alloc(0);
    }
    const buf = Buffer.alloc(Number(len[0]));
    call(this._f.snapshot, this.ptr, buf, buf.length, len);
    return buf.subarray(0, Number(len[0]));
  }

}

/** Wraps a pointer made by qk_x_restore / qk_maglev_clone as a `Cls` (its constructor would make a new one). */
function adopt(Cls, ptr, f) {
  return Reflect.construct(Placement, [ptr, f], Cls);
}

function restore(Cls, f, data) {
  const b = bytes(data, 'data');
  return adopt(Cls, make(f.restore, b, b.length), f);
}

function koffiString(ptr, len) {
  if (len === 0) return '';
  const u8 = koffi.decode(ptr, koffi.array('uint8_t', len, 'Typed'));
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('utf8');
}

/** A consistent-hash ring with weighted virtual nodes on xxh3-64 (qk_ring). */
class HashRing extends Placement {
  /** `vnodes`: points per unit of weight (0: the default, 160). */
  constructor({ vnodes = 0 } = {}) {
    super(make(F.ring.new, vnodes), F.ring);
  }
  static restore(data) { return restore(HashRing, F.ring, data); }
}

const KETAMA_COMPAT = { libmemcached: 0, uhashring: 1 };

/** A ketama continuum bit-exact with libmemcached or uhashring (qk_ketama). */
class KetamaRing extends Placement {
  /**
   * `compat`: 'libmemcached' (default) or 'uhashring'; `servers`: specs
   * ("host", "host:port", "[v6]:port") or { name, weight }.
   */
  constructor({ compat = 'libmemcached', servers = [] } = {}) {
    const c = typeof compat === 'number' ? compat : KETAMA_COMPAT[compat];
    if (c === undefined) throw makeError(CODES.INVALID_ARG, `unknown ketama compat mode ${JSON.stringify(compat)}`);
    super(make(F.ketama.new, c, null, null, null, 0), F.ketama);
    try {
      for (const s of servers) {
        if (typeof s === 'object' && !Buffer.isBuffer(s)) this.addNode(s.name, s.weight ?? 1);
        else this.addNode(s);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }
  static restore(data) { return restore(KetamaRing, F.ketama, data); }
}

/** A Maglev lookup table of prime size (qk_maglev). */
class Maglev extends Placement {
  /** `tableSize`: a prime up to 2^26 (0: the default, 65537). */
  constructor({ tableSize = 0 } = {}) {
    super(make(F.maglev.new, tableSize), F.maglev);
  }
  get tableSize() {
    const out = [0];
    call(F.maglev.tableSize, this.ptr, out);
    return out[0];
  }
  /** An independent copy (same backends, same table). */
  clone() {
    return adopt(Maglev, make(F.maglev.clone, this.ptr), F.maglev);
  }
  /** The fraction of keys whose backend differs between this table and `other`. */
  diff(other) {
    const out = [0];
    call(F.maglev.diff, this.ptr, other.ptr, out);
    return out[0];
  }
  static restore(data) { return restore(Maglev, F.maglev, data); }
}

/** Weighted rendezvous (highest random weight) hashing; weights are doubles (qk_rendezvous). */
class Rendezvous extends Placement {
  constructor() {
    super(make(F.rendezvous.new), F.rendezvous);
  }
  static restore(data) { return restore(Rendezvous, F.rendezvous, data); }
}

module.exports = { HashRing, KetamaRing, Maglev, Rendezvous };
