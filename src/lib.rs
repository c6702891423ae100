//! quorumkit: building blocks of fault-tolerant distributed systems.
//!
//! One Rust core with three faces: this crate's Rust API, a stable C ABI
//! (`include/quorumkit.h`, behind the default feature `capi`) and a Python
//! package (`python/`). Components:
//!
//! - [`ring`]: consistent-hash placement — a virtual-node [`ring::HashRing`]
//!   on xxh3-64 and a [`ring::KetamaRing`] that is bit-exact with
//!   libmemcached and uhashring; a [`ring::BoundedLoad`] balancer
//!   (consistent hashing with bounded loads) and [`ring::snapshot`]s that
//!   save and restore rings in a versioned binary format.
//! - [`lease`]: lock leases — a pure [`lease::LeaseMachine`], the
//!   thread-safe [`lease::LeaseTable`] with fair blocking and fencing
//!   tokens, [`lease::Fence`] and auto-renewing [`lease::LeaseGuard`]s.
//! - [`detect`]: a phi-accrual [`detect::FailureDetector`] (sans-IO: time
//!   is passed in as nanoseconds).
//! - [`paxos`]: single-decree Paxos and Multi-Paxos as sans-IO state
//!   machines with durable storage and a versioned wire format.
//! - [`sim`]: a deterministic, fault-injecting simulator and its checkers.
//! - [`txn`]: atomic commitment — two-phase commit and Paxos Commit as
//!   sans-IO state machines, with simulations of their failures.
//!
//! Placement is stable: the hash functions in [`hash`] are fixed and
//! documented, so a key lands on the same node on every platform, version
//! and binding.
//!
//! ```
//! use quorumkit::ring::{HashRing, Placement};
//!
//! let mut ring = HashRing::new();
//! ring.add_node("cache-a", 1).unwrap();
//! ring.add_node("cache-b", 2).unwrap();
//! let node = ring.get_node(b"user:42").unwrap();
//! assert!(node == "cache-a" || node == "cache-b");
//! assert_eq!(ring.get_nodes(b"user:42", 2).unwrap().len(), 2);
//! ```

#![warn(missing_docs)]
// docs.rs builds with `--cfg docsrs` on nightly: label feature-gated items.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod detect;
pub mod error;
pub mod hash;
pub mod lease;
#[cfg(feature = "server")]
pub mod net;
pub mod paxos;
pub mod ring;
pub mod rng;
#[cfg(feature = "server")]
pub mod service;
pub mod sim;
pub mod txn;

#[cfg(feature = "capi")]
pub mod ffi;

pub use error::{Error, Result};

// The Rust blocks of the front pages and the guides run as doc tests (`cargo test --doc`);
// python/tests/test_docs.py runs their Python blocks and compiles their C.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../README.zh-CN.md")]
pub struct ReadmeZhCnDoctests;

#[cfg(doctest)]
#[doc = include_str!("../docs/paxos.md")]
pub struct PaxosGuideDoctests;

#[cfg(all(doctest, feature = "server"))]
#[doc = include_str!("../docs/service.md")]
pub struct ServiceGuideDoctests;

#[cfg(doctest)]
#[doc = include_str!("../docs/migrating.md")]
pub struct MigratingGuideDoctests;

#[cfg(doctest)]
#[doc = include_str!("../docs/migrating.zh-CN.md")]
pub struct MigratingGuideZhCnDoctests;

/// The crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
