//! The ABI's identity, checkable at run time: a number that changes with
//! every change that can break a program built against an older header,
//! and the size of every struct that crosses the boundary (an FFI layer
//! that declares a struct by hand compares its size with these).
//!
//! Policy: `QK_ABI_VERSION` increases whenever a function's signature, a
//! struct's layout, a constant's meaning or a documented behaviour changes
//! incompatibly. The shared library's SONAME is `libquorumkit.so.<ABI>`
//! (`build.rs` reads the number from this file), so a program linked
//! against one ABI never loads a library of another.

use super::boundary::{catch_or, qk_error};
use super::lease::qk_lease;
use super::paxos::{qk_paxos_config, qk_paxos_output};
use super::txn::{qk_txn_config, qk_txn_output, qk_txn_stats};

/// The ABI version this header describes; `qk_abi_version()` is the
/// library's. They must be equal (the SONAME makes the dynamic loader
/// enforce it for linked programs; `dlopen` users should compare).
pub const QK_ABI_VERSION: u32 = 2;

/// The ABI version of the loaded library (compare with `QK_ABI_VERSION`).
/// Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_abi_version() -> u32 {
    catch_or(QK_ABI_VERSION, || QK_ABI_VERSION)
}

/// `sizeof(qk_lease)` in the loaded library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_sizeof_lease() -> usize {
    catch_or(0, std::mem::size_of::<qk_lease>)
}

/// `sizeof(qk_paxos_config)` in the loaded library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_sizeof_paxos_config() -> usize {
    catch_or(0, std::mem::size_of::<qk_paxos_config>)
}

/// `sizeof(qk_paxos_output)` in the loaded library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_sizeof_paxos_output() -> usize {
    catch_or(0, std::mem::size_of::<qk_paxos_output>)
}

/// `sizeof(qk_txn_config)` in the loaded library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_sizeof_txn_config() -> usize {
    catch_or(0, std::mem::size_of::<qk_txn_config>)
}

/// `sizeof(qk_txn_output)` in the loaded library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_sizeof_txn_output() -> usize {
    catch_or(0, std::mem::size_of::<qk_txn_output>)
}

/// `sizeof(qk_txn_stats)` in the loaded library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_sizeof_txn_stats() -> usize {
    catch_or(0, std::mem::size_of::<qk_txn_stats>)
}

/// `sizeof(qk_error)` in the loaded library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn qk_sizeof_error() -> usize {
    catch_or(0, std::mem::size_of::<qk_error>)
}
