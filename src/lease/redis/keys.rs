//! Key names. Every key of one resource starts with the hash tag
//! `{namespace:resource}`, so a script touches one Redis Cluster slot.
//! Resource names are binary-safe (braces and newlines included): keys end
//! in fixed suffixes without `}:`, so two resources never share a key.

use crate::error::{Error, Result};

/// The longest resource or owner name, in bytes: a key is sent with every
/// call, and a name this long is a caller bug rather than a name.
pub const MAX_NAME_LEN: usize = 1024;

/// The longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Checks a namespace: non-empty, short, and free of `{`, `}` and `:` (a
/// colon would let `ns "a:b"` + resource `"c"` collide with `"a"` + `"b:c"`).
pub(crate) fn check_namespace(ns: &str) -> Result<()> {
    if ns.is_empty() || ns.len() > MAX_NAMESPACE_LEN {
        return Err(Error::invalid(format!(
            "namespace must be 1 to {MAX_NAMESPACE_LEN} bytes long"
        )));
    }
    if ns.contains(['{', '}', ':']) {
        return Err(Error::invalid(format!(
            "namespace {ns:?} must not contain '{{', '}}' or ':'"
        )));
    }
    Ok(())
}

/// Checks a resource or owner name: non-empty and at most [`MAX_NAME_LEN`].
pub(crate) fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} is {} bytes long; the limit is {MAX_NAME_LEN}",
            s.len()
        )));
    }
    Ok(())
}

/// The keys of one resource, in the order the scripts expect them
/// (`lua/common.lua`), and the prefix of its waiters' wake-up lists.
pub(crate) struct ResourceKeys {
    pub keys: [String; 6],
    pub wake_prefix: String,
}

impl ResourceKeys {
    pub fn new(namespace: &str, resource: &str) -> Self {
        let tag = format!("{{{namespace}:{resource}}}");
        let k = |suffix: &str| format!("{tag}:{suffix}");
        ResourceKeys {
            keys: [k("h"), k("o"), k("t"), k("q"), k("w"), k("d")],
            wake_prefix: k("k:"),
        }
    }

    /// The wake-up list of waiter `id`.
    pub fn wake(&self, id: u64) -> String {
        format!("{}{id}", self.wake_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_hash_tag_and_never_collide() {
        let a = ResourceKeys::new("qk", "x}:h");
        let b = ResourceKeys::new("qk", "x");
        for k in a.keys.iter().chain(std::iter::once(&a.wake_prefix)) {
            assert!(k.starts_with("{qk:x}"));
            assert!(!b.keys.contains(k));
        }
        assert_eq!(b.keys[0], "{qk:x}:h");
        assert_eq!(b.wake(7), "{qk:x}:k:7");
        assert!(check_namespace("a:b").is_err());
        assert!(check_namespace("a{").is_err());
        assert!(check_namespace("").is_err());
        assert!(check_name("resource", "").is_err());
        assert!(check_name("resource", &"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_name("resource", "a\n{b}").is_ok());
    }
}
