//! Stable hash functions. Their outputs decide placements, so they are fixed
//! forever: changing one would move keys between nodes across versions.
//!
//! - [`key_hash`]: xxh3-64 of the key bytes with seed [`RING_SEED`]; the
//!   position of a key on a [`crate::ring::HashRing`].
//! - [`vnode_hash`]: xxh3-64 with the same seed of the UTF-8 string
//!   `"{node}-{i}"` (decimal `i`, from 0); the position of a node's i-th
//!   virtual node.
//! - [`md5_u32`]: ketama's hash, the little-endian u32 at bytes
//!   `4*alignment..4*alignment+4` of the MD5 digest.

use md5::{Digest, Md5};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The fixed seed of every xxh3-64 placement hash: the bytes "qkring" then 0x0001.
pub const RING_SEED: u64 = 0x716b_7269_6e67_0001;

/// Position of a key on a [`crate::ring::HashRing`].
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, RING_SEED)
}

/// Position of virtual node `i` of node `name`: xxh3-64 of `"{name}-{i}"`.
pub fn vnode_hash(name: &str, i: u32) -> u64 {
    // Build the string on the stack for short names: this runs for every
    // virtual node when a node joins.
    let mut buf = [0u8; 256];
    let suffix = format_u32_dec(i);
    let need = name.len() + 1 + suffix.1;
    if need <= buf.len() {
        buf[..name.len()].copy_from_slice(name.as_bytes());
        buf[name.len()] = b'-';
        buf[name.len() + 1..need].copy_from_slice(&suffix.0[..suffix.1]);
        xxh3_64_with_seed(&buf[..need], RING_SEED)
    } else {
        xxh3_64_with_seed(format!("{name}-{i}").as_bytes(), RING_SEED)
    }
}

/// The MD5 digest of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// uhashring's default hash: MD5(data) as a big-endian 128-bit integer
/// (Python's `int(md5(data).hexdigest(), 16)`).
#[inline]
pub fn md5_u128(data: &[u8]) -> u128 {
    u128::from_be_bytes(md5(data))
}

/// ketama's hash: the little-endian u32 at `4*alignment` in MD5(data).
/// `alignment` must be 0..=3.
pub fn md5_u32(data: &[u8], alignment: usize) -> u32 {
    let d = md5(data);
    digest_u32(&d, alignment)
}

/// The little-endian u32 at `4*alignment` of a 16-byte digest.
#[inline]
pub fn digest_u32(d: &[u8; 16], alignment: usize) -> u32 {
    let o = alignment * 4;
    u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

fn format_u32_dec(mut v: u32) -> ([u8; 10], usize) {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut out = [0u8; 10];
    for k in 0..n {
        out[k] = tmp[n - 1 - k];
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnode_hash_matches_formatted_string() {
        for name in ["a", "node-1", "ü-ключ", &"x".repeat(300)] {
            for i in [0u32, 1, 9, 10, 159, 4_294_967_295] {
                let expect = xxh3_64_with_seed(format!("{name}-{i}").as_bytes(), RING_SEED);
                assert_eq!(vnode_hash(name, i), expect, "{name} {i}");
            }
        }
    }

    #[test]
    fn md5_u32_is_little_endian_prefix() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(md5_u32(b"a", 0), 0xb975c10c);
        assert_eq!(md5_u32(b"a", 3), 0x61267769);
    }

    #[test]
    fn key_hash_is_pinned() {
        // Pinned with an independent xxh3 implementation (Python's xxhash
        // package, seed 0x716b72696e670001). If these change, every
        // placement changes.
        assert_eq!(key_hash(b""), 0x43d0_de6f_932a_83d2);
        assert_eq!(key_hash(b"a"), 0x22d7_9654_1c62_3883);
        assert_eq!(key_hash(b"hello"), 0x32e1_567f_14de_0f7d);
        assert_eq!(key_hash(b"user:42"), 0xfde0_9d7d_ff53_fa37);
        assert_eq!(vnode_hash("node-a", 0), 0xaeab_a1c0_45ab_69ff);
    }
}
