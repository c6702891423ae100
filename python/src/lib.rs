//! `quorumkit._native`: the Python extension behind the `quorumkit`
//! package. It wraps the Rust core directly (not its C ABI); the package's
//! `__init__.py` re-exports everything public from here.

mod args;
mod bound_lookup;
mod bounded;
mod detect;
mod election;
mod errors;
mod instance_call;
mod jump;
mod lease;
mod lease_client;
mod paxos;
mod redis_lease;
mod replica;
mod rings;
mod shared;
mod txn;

use pyo3::prelude::*;

use crate::args::key_bytes;

/// xxh3-64 of `key` with `RING_SEED`: a key's position on a `HashRing`.
#[pyfunction]
fn key_hash(key: &Bound<'_, PyAny>) -> PyResult<u64> {
    Ok(quorumkit::hash::key_hash(&key_bytes(key)?))
}

/// ketama's hash: the little-endian u32 of md5(key)[0:4].
#[pyfunction]
fn ketama_hash(key: &Bound<'_, PyAny>) -> PyResult<u32> {
    Ok(quorumkit::hash::md5_u32(&key_bytes(key)?, 0))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", quorumkit::VERSION)?;
    m.add("RING_SEED", quorumkit::hash::RING_SEED)?;
    m.add_function(wrap_pyfunction!(key_hash, m)?)?;
    m.add_function(wrap_pyfunction!(ketama_hash, m)?)?;
    m.add_class::<rings::HashRing>()?;
    m.add_class::<rings::KetamaRing>()?;
    m.add_class::<bounded::BoundedLoadBalancer>()?;
    m.add_class::<rings::RendezvousHash>()?;
    m.add_class::<rings::Maglev>()?;
    m.add_function(wrap_pyfunction!(jump::jump_hash, m)?)?;
    m.add_function(wrap_pyfunction!(jump::jump_hash_batch, m)?)?;
    m.add_class::<rings::Md5Ring>()?;
    m.add_class::<instance_call::InstanceCall>()?;
    m.add_class::<bound_lookup::BoundLookup>()?;
    m.add_class::<lease::ManualClock>()?;
    m.add_class::<lease::Lease>()?;
    m.add_class::<lease::LeaseTable>()?;
    m.add_class::<lease::LeaseContext>()?;
    m.add_class::<lease::AsyncTicket>()?;
    m.add_class::<lease::Fence>()?;
    m.add_class::<lease::CancelToken>()?;
    m.add_class::<lease_client::LeaseClient>()?;
    m.add_class::<lease_client::RemoteLease>()?;
    m.add_class::<replica::Replica>()?;
    m.add_class::<replica::ReplicaClient>()?;
    m.add_class::<redis_lease::RedisLease>()?;
    m.add_class::<redis_lease::RedisLeaseTable>()?;
    m.add_class::<redis_lease::RedisLeaseContext>()?;
    m.add_class::<election::Election>()?;
    m.add_class::<detect::FailureDetector>()?;
    m.add_class::<paxos::PaxosNode>()?;
    m.add_class::<paxos::PaxosCluster>()?;
    m.add_class::<txn::TxnOutput>()?;
    m.add_class::<txn::TwoPhaseCommitCoordinator>()?;
    m.add_class::<txn::TwoPhaseCommitParticipant>()?;
    m.add_class::<txn::CommitSimulation>()?;
    Ok(())
}
