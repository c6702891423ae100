//! Jump consistent hash (Lamping & Veach, "A Fast, Minimal Memory,
//! Consistent Hash Algorithm", 2014).
//!
//! Maps a 64-bit key to a bucket in `0..buckets` with no state at all:
//! growing from `n` to `n + 1` buckets moves exactly the keys that land in
//! the new bucket (an expected `1/(n+1)` of them). Buckets are numbers, not
//! names, and only the last bucket can be removed: it suits sharded storage
//! whose shards are numbered, not a cache pool whose members come and go
//! (use [`super::HashRing`], [`super::Rendezvous`] or [`super::Maglev`]).
//!
//! Keys:
//! - an integer key is the `u64` itself, as in the paper's reference code,
//!   so results match every other implementation of jump hash on integers;
//! - a byte key is first hashed with [`crate::hash::key_hash`] (xxh3-64
//!   with quorumkit's fixed seed), and that hash is the jump key.

use crate::error::{Error, Result};
use crate::hash::key_hash;

/// The 64-bit linear congruential step of the paper's reference code.
const LCG_MULTIPLIER: u64 = 2_862_933_555_777_941_757;

fn check_buckets(buckets: u32) -> Result<()> {
    if buckets == 0 {
        return Err(Error::invalid("the number of buckets must be at least 1"));
    }
    Ok(())
}

/// The algorithm, for `buckets >= 1`. A transcription of the paper's
/// C++ reference (Figure 1): `b` is the last bucket the key jumped to, `j`
/// the next one; the loop runs O(ln buckets) times. Same arithmetic, fewer
/// conversions: `(key >> 33) + 1 <= 2^31` converts to `f64` through `i64`
/// (one instruction; `u64 -> f64` is a longer sequence on x86-64), and `j`
/// is compared before truncation (`trunc(t) < n` iff `t < n` for `t >= 0`).
#[inline]
fn jump(mut key: u64, buckets: u32) -> u32 {
    const TWO_31: f64 = (1u64 << 31) as f64;
    let n = buckets as f64;
    let mut b: i64 = -1;
    let mut j: f64 = 0.0;
    while j < n {
        // SAFETY: 0 <= j < n <= u32::MAX: finite and in i64 range, so the
        // unchecked truncation is defined (and skips `as`'s saturation checks,
        // which sit on the loop's dependency chain).
        b = unsafe { j.to_int_unchecked::<i64>() };
        key = key.wrapping_mul(LCG_MULTIPLIER).wrapping_add(1);
        let d = ((key >> 33) + 1) as i64 as f64;
        j = (b + 1) as f64 * (TWO_31 / d);
    }
    b as u32
}

/// The bucket in `0..buckets` of a 64-bit key (an integer key itself, or a
/// key already hashed). Fails with [`Error::InvalidArgument`] when
/// `buckets` is 0.
///
/// The paper's reference takes a signed 32-bit bucket count; for counts up
/// to `i32::MAX` the results are identical, and larger counts work too.
#[inline]
pub fn jump_hash(key: u64, buckets: u32) -> Result<u32> {
    check_buckets(buckets)?;
    Ok(jump(key, buckets))
}

/// The bucket of a byte key: `jump_hash(key_hash(key), buckets)`.
#[inline]
pub fn jump_hash_key(key: &[u8], buckets: u32) -> Result<u32> {
    jump_hash(key_hash(key), buckets)
}

/// The buckets of many 64-bit keys: `out[i] = jump_hash(keys[i], buckets)`.
/// `out` is cleared first; on error it is left empty.
pub fn jump_hash_batch(keys: &[u64], buckets: u32, out: &mut Vec<u32>) -> Result<()> {
    out.clear();
    check_buckets(buckets)?;
    out.extend(keys.iter().map(|&k| jump(k, buckets)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from the `jump-consistent-hash` 3.6.0 package on PyPI
    /// (`jump.hash(key, n)`, its C extension), itself a transcription of
    /// the paper's C++ reference; the Python tests recheck them against the
    /// package and against a transcription of the paper's code.
    #[test]
    fn known_vectors() {
        let cases: &[(u64, u32, u32)] = &[
            (0, 1, 0),
            (0, 1000, 0),
            (1, 10, 6),
            (u64::MAX, 1000, 313),
            (u64::MAX, 10, 9),
            (42, 1000, 571),
            (0xdead_beef, 1000, 285),
            (0x0123_4567_89ab_cdef, 1_000_000, 352_229),
            (256, 1024, 520),
            (12_345_678_901, 7, 1),
            (1, i32::MAX as u32, 262_355_607),
        ];
        for &(k, n, want) in cases {
            assert_eq!(jump_hash(k, n).unwrap(), want, "jump_hash({k}, {n})");
        }
    }

    #[test]
    fn zero_buckets_is_invalid() {
        assert!(matches!(jump_hash(1, 0), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            jump_hash_key(b"k", 0),
            Err(Error::InvalidArgument(_))
        ));
        let mut out = vec![7];
        assert!(jump_hash_batch(&[1, 2], 0, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn byte_keys_hash_first() {
        for key in [&b""[..], b"a", b"user:42"] {
            assert_eq!(
                jump_hash_key(key, 977).unwrap(),
                jump_hash(key_hash(key), 977).unwrap()
            );
        }
        let mut out = Vec::new();
        jump_hash_batch(&[1, u64::MAX, 42], 1000, &mut out).unwrap();
        assert_eq!(out, [jump_hash(1, 1000).unwrap(), 313, 571]);
    }

    #[test]
    fn growing_moves_only_to_the_new_bucket() {
        let seed: u64 = 0x6a75_6d70;
        let mut x = seed;
        let mut moved = 0usize;
        const KEYS: usize = 20_000;
        for _ in 0..KEYS {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for n in [1u32, 2, 9, 10, 99] {
                let (a, b) = (jump(x, n), jump(x, n + 1));
                assert!(a < n && b <= n, "seed {seed:#x} key {x}");
                assert!(a == b || b == n, "seed {seed:#x}: key {x} moved {a} -> {b}");
                if n == 99 && a != b {
                    moved += 1;
                }
            }
        }
        // Expected 1% of the keys move from 99 to 100 buckets.
        let frac = moved as f64 / KEYS as f64;
        assert!(
            (0.007..0.013).contains(&frac),
            "seed {seed:#x}: moved {frac}"
        );
    }
}
