//! `qk_paxos_node`: a Multi-Paxos replica ([`Node`]) for a C event loop.
//!
//! The node is sans-IO: the caller owns the sockets and the clock. It feeds
//! the node wire-encoded messages (`qk_paxos_node_step`), the time
//! (`qk_paxos_node_tick` when `qk_paxos_node_next_deadline` passes) and
//! client commands (`qk_paxos_node_propose`), and after each call drains
//! `qk_paxos_node_poll` for what to do: bytes to send, commands decided,
//! leader changes. Times are u64 nanoseconds of a monotonic clock the caller
//! owns; messages are the bytes of the wire format (docs/WIRE.md).

use std::ffi::{CStr, c_char};
use std::path::PathBuf;

use super::args::{Out, arg_key, arg_mut, arg_ref, arg_slice, free_boxed, hand_out};
use super::boundary::qk_error;
use super::boundary::{Failure, FfiResult, boundary, catch_or};
use super::status::qk_status;
use crate::paxos::{
    Batch, Config, FileIdentity, FileStorage, MembershipChange, MemoryStorage, Node, Output, Slot,
    Storage, wire,
};

/// `qk_paxos_output.kind`: send `data` (a wire-encoded message) to the
/// replica `to`.
pub const QK_PAXOS_OUTPUT_SEND: u32 = 0;
/// `qk_paxos_output.kind`: command `index` of the `count` commands chosen
/// for `slot` is `data`. Slots come in order with no gaps; a no-op slot
/// comes as one output with `count` 0 and no data.
pub const QK_PAXOS_OUTPUT_DECIDED: u32 = 1;
/// `qk_paxos_output.kind`: the node appended `count` records to its storage
/// and synced it (informational: the node has already done it).
pub const QK_PAXOS_OUTPUT_PERSISTED: u32 = 2;
/// `qk_paxos_output.kind`: the node now follows `leader` (itself when it
/// was elected), or no one when `has_leader` is false.
pub const QK_PAXOS_OUTPUT_LEADER_CHANGED: u32 = 3;
/// `qk_paxos_output.kind`: replace the application's state with `data`, a
/// snapshot of the state after every slot below `slot` (installed from a
/// peer that compacted those slots away, or, first thing after a restart,
/// the node's own latest snapshot). DECIDED outputs continue from `slot`.
pub const QK_PAXOS_OUTPUT_SNAPSHOT: u32 = 4;
/// `qk_paxos_output.kind`: the read `index` asked for with
/// `qk_paxos_node_read_index()`: `count` 1 — answer it from the state now
/// (the leader confirmed its leadership after the read arrived, and every
/// slot up to its read index was delivered before this output); `count` 0
/// — the node lost the leadership first: ask the new leader.
pub const QK_PAXOS_OUTPUT_READ_INDEX: u32 = 5;
/// `qk_paxos_output.kind`: a membership change was delivered (or, after a
/// restart or a snapshot install, the membership the node holds): epoch
/// `index` decides every slot from `slot` on. `data` points to `data_len`
/// bytes holding `data_len / 4` `uint32_t` ids (aligned for `uint32_t`):
/// the first `count` are the voters, the rest the learners. The DECIDED
/// output of the change's slot (just before) has no commands. A node that
/// is in neither list takes no further part and may be shut down.
pub const QK_PAXOS_OUTPUT_MEMBERSHIP: u32 = 6;

/// `qk_paxos_node_change_membership()`: add `id` as a learner (it receives
/// the log and catches up, without a vote).
pub const QK_PAXOS_ADD_LEARNER: u32 = 0;
/// `qk_paxos_node_change_membership()`: make the learner `id` a voter.
pub const QK_PAXOS_PROMOTE: u32 = 1;
/// `qk_paxos_node_change_membership()`: remove the voter or learner `id`.
pub const QK_PAXOS_REMOVE: u32 = 2;
/// `qk_paxos_node_change_membership()`: give the voter `id`'s vote to the
/// learner `other` (replace a failed replica) in one change.
pub const QK_PAXOS_REPLACE: u32 = 3;

/// The most replicas a cluster may have (the length of
/// `qk_paxos_config.members`).
pub const QK_PAXOS_MAX_MEMBERS: usize = 64;

/// How a replica behaves. Fill it with `qk_paxos_config_init()` (defaults)
/// and change what you need. Times are nanoseconds. The struct holds no
/// pointer: it owns everything in it, so it may outlive whatever it was
/// filled from (an FFI layer's scratch memory included).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct qk_paxos_config {
    /// This replica's id; must be one of `members`.
    pub id: u32,
    /// Every replica's id (distinct), this one included, in the first
    /// `members_len` entries (the rest are ignored). Copied in by
    /// `qk_paxos_config_init()`, copied again by `qk_paxos_node_new_*()`.
    pub members: [u32; QK_PAXOS_MAX_MEMBERS],
    /// How many ids `members` holds (at most `QK_PAXOS_MAX_MEMBERS`).
    pub members_len: usize,
    /// How often a leader sends heartbeats (at least 1 ms: shorter is
    /// refused with QK_ERR_INVALID_ARG, as it would make a driver spin).
    /// Default 50 ms.
    pub heartbeat_interval_ns: u64,
    /// A follower that hears no leader for a time drawn from
    /// [timeout, 2 × timeout) stands for election; must exceed the
    /// heartbeat interval. Default 500 ms.
    pub election_timeout_ns: u64,
    /// How long a follower's heartbeat acknowledgement promises not to help
    /// elect another leader (the read lease); 0 disables leases. Default 1 s.
    pub lease_duration_ns: u64,
    /// The most two replicas' clocks may drift apart over one lease.
    /// Default 50 ms.
    pub max_clock_drift_ns: u64,
    /// At most this many commands per slot (1 = no batching). Default 64.
    pub max_batch: usize,
    /// At most this many slots proposed and not yet chosen. Default 64.
    pub max_inflight: usize,
    /// Seeds the election-timeout jitter (give each replica its own).
    pub seed: u64,
    /// The cluster this replica belongs to (any number, the same on every
    /// replica; default 0). A record file records it with `id`, and
    /// `qk_paxos_node_new_file()` refuses a file of another cluster or
    /// replica (`QK_ERR_STORAGE_MISMATCH`).
    pub cluster_id: u64,
}

/// One thing the node asks its driver to do (see `qk_paxos_node_poll()`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct qk_paxos_output {
    /// One of `QK_PAXOS_OUTPUT_SEND`, `_DECIDED`, `_PERSISTED`,
    /// `_LEADER_CHANGED`, `_SNAPSHOT`, `_READ_INDEX`.
    pub kind: u32,
    /// SEND: the destination replica.
    pub to: u32,
    /// DECIDED: the slot. SNAPSHOT: the snapshot covers every slot below it.
    pub slot: u64,
    /// DECIDED: the command's position in its slot (0-based). READ_INDEX:
    /// the read's id.
    pub index: u64,
    /// DECIDED: how many commands the slot holds (0 for a no-op slot).
    /// PERSISTED: how many records were synced. READ_INDEX: 1 ready, 0
    /// leadership lost.
    pub count: u64,
    /// LEADER_CHANGED: the leader, when `has_leader`.
    pub leader: u32,
    /// LEADER_CHANGED: whether there is a leader.
    pub has_leader: u8,
    /// LEADER_CHANGED: the leader's ballot round.
    pub ballot_round: u64,
    /// SEND: the message bytes; DECIDED: the command bytes; SNAPSHOT: the
    /// snapshot (as given to `qk_paxos_node_compact()`). Borrowed from
    /// the node: valid until the next call that takes this node (copy them
    /// to keep them). NULL when `data_len` is 0.
    pub data: *const u8,
    /// The length of `data`.
    pub data_len: usize,
}

impl qk_paxos_output {
    fn empty(kind: u32) -> Self {
        qk_paxos_output {
            kind,
            to: 0,
            slot: 0,
            index: 0,
            count: 0,
            leader: 0,
            has_leader: 0,
            ballot_round: 0,
            data: std::ptr::null(),
            data_len: 0,
        }
    }
}

/// A Multi-Paxos replica (docs/paxos.md): proposer, acceptor and learner
/// in one, on memory or file storage.
///
/// Thread safety: none inside. Calls on one node must not overlap (the
/// functions taking a `const qk_paxos_node *` may overlap each other, but
/// not a call taking `qk_paxos_node *`). Different nodes are independent.
///
/// Create with `qk_paxos_node_new_memory()` or `qk_paxos_node_new_file()`,
/// destroy with `qk_paxos_node_free()`.
#[allow(non_camel_case_types)]
pub struct qk_paxos_node {
    node: Node<Box<dyn Storage + Send + Sync>>,
    /// The bytes of the last SEND output (reused to avoid allocating).
    send_buf: Vec<u8>,
    /// A decided slot being handed out command by command: the slot, its
    /// batch and the index of the next command.
    decided: Option<(Slot, Batch, usize)>,
    /// The snapshot of the last SNAPSHOT output (its bytes are handed out).
    snapshot_out: Option<crate::paxos::SnapshotData>,
    /// The ids of the last MEMBERSHIP output (voters, then learners).
    membership_out: Vec<u32>,
}

// The thread-safety promise in the doc of `qk_paxos_node`: a node may move
// between threads, and calls on a `const qk_paxos_node *` may overlap.
const _: () = {
    const fn thread_safe<T: Send + Sync>() {}
    thread_safe::<qk_paxos_node>();
};

/// The core configuration a C config describes.
///
/// # Safety
/// `c.members` is NULL or points to `c.members_len` readable ids.
fn config_of(c: &qk_paxos_config) -> FfiResult<Config> {
    let members = c.members.get(..c.members_len).ok_or_else(|| {
        Failure::invalid(format!(
            "config->members_len is {}, at most {QK_PAXOS_MAX_MEMBERS}",
            c.members_len
        ))
    })?;
    Ok(Config {
        id: c.id,
        members: members.to_vec(),
        heartbeat_interval: c.heartbeat_interval_ns,
        election_timeout: c.election_timeout_ns,
        lease_duration: c.lease_duration_ns,
        max_clock_drift: c.max_clock_drift_ns,
        max_batch: c.max_batch,
        max_inflight: c.max_inflight,
        seed: c.seed,
        cluster_id: c.cluster_id,
    })
}

/// Fills `*config_out` with the defaults for replica `id` of `members`
/// (`members_len` ids, copied into the struct: the array need not outlive
/// this call): heartbeat 50 ms, election timeout 500 ms, lease 1 s, drift
/// 50 ms, batch 64, 64 slots in flight, seed 0, cluster id 0. The ids are
/// validated by `qk_paxos_node_new_*()`.
///
/// Errors: `QK_ERR_NULL_ARG` (`config_out`, or `members` with
/// `members_len` > 0), `QK_ERR_INVALID_ARG` (more than
/// `QK_PAXOS_MAX_MEMBERS` ids).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `members` is NULL or points to `members_len` ids; `config_out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_config_init(
    id: u32,
    members: *const u32,
    members_len: usize,
    config_out: *mut qk_paxos_config,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let ids = unsafe { arg_slice(members, members_len, "members") }?;
        let out = unsafe { Out::new(config_out, "config_out") }?;
        if ids.len() > QK_PAXOS_MAX_MEMBERS {
            return Err(Failure::invalid(format!(
                "{} members, at most {QK_PAXOS_MAX_MEMBERS} are supported",
                ids.len()
            )));
        }
        let mut copy = [0u32; QK_PAXOS_MAX_MEMBERS];
        copy[..ids.len()].copy_from_slice(ids);
        let d = Config::new(id, Vec::new());
        out.set(qk_paxos_config {
            id,
            members: copy,
            members_len,
            heartbeat_interval_ns: d.heartbeat_interval,
            election_timeout_ns: d.election_timeout,
            lease_duration_ns: d.lease_duration,
            max_clock_drift_ns: d.max_clock_drift,
            max_batch: d.max_batch,
            max_inflight: d.max_inflight,
            seed: d.seed,
            cluster_id: d.cluster_id,
        });
        Ok(())
    })
}

fn new_node(
    config: Config,
    storage: Box<dyn Storage + Send + Sync>,
    now_ns: u64,
    out: Out<*mut qk_paxos_node>,
) -> FfiResult {
    start_node(Node::new(config, storage, now_ns)?, out)
}

fn start_node(
    node: Node<Box<dyn Storage + Send + Sync>>,
    out: Out<*mut qk_paxos_node>,
) -> FfiResult {
    hand_out(
        out,
        qk_paxos_node {
            node,
            send_buf: Vec::new(),
            decided: None,
            snapshot_out: None,
            membership_out: Vec::new(),
        },
    );
    Ok(())
}

/// Creates a replica on memory storage (lost when it is freed) at time
/// `now_ns` and stores it in `*node_out`.
///
/// Ownership: the caller owns the node; free it with `qk_paxos_node_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for a bad config (`id`
/// not in `members`, duplicate members, a zero heartbeat interval, an
/// election timeout not above it, a zero `max_batch` or `max_inflight`).
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `config` is NULL or a readable config (its member ids are inline, see
/// `members_len`); `node_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_new_memory(
    config: *const qk_paxos_config,
    now_ns: u64,
    node_out: *mut *mut qk_paxos_node,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_ref(config, "config") }?;
        let out = unsafe { Out::new(node_out, "node_out") }?;
        let config = config_of(c)?;
        new_node(config, Box::new(MemoryStorage::new()), now_ns, out)
    })
}

/// The path a NUL-terminated C string names (any bytes on Unix).
fn path_of(p: &CStr) -> FfiResult<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        p.to_str()
            .map(PathBuf::from)
            .map_err(|e| Failure::utf8("path", e))
    }
}

/// Creates a replica whose state lives in the file at `path` (a
/// NUL-terminated string), created if missing, at time `now_ns`, and stores
/// it in `*node_out`. Opening an existing file restarts the replica from
/// it: it keeps every promise and accept it made, and re-delivers the
/// commands it knew to be chosen (DECIDED from slot 0) before catching up.
/// One node at a time may use a file.
///
/// Ownership: the caller owns the node; free it with `qk_paxos_node_free()`.
///
/// Errors: as `qk_paxos_node_new_memory()`, and `QK_ERR_STORAGE` when the
/// file cannot be created, read or written, `QK_ERR_CORRUPT` when it is not
/// a quorumkit record file, `QK_ERR_UNSUPPORTED_VERSION` for a newer format.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// As `qk_paxos_node_new_memory()`; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_new_file(
    config: *const qk_paxos_config,
    path: *const c_char,
    now_ns: u64,
    node_out: *mut *mut qk_paxos_node,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_ref(config, "config") }?;
        if path.is_null() {
            return Err(Failure::null("path"));
        }
        let out = unsafe { Out::new(node_out, "node_out") }?;
        let config = config_of(c)?;
        // Validate the config before touching the file system.
        config.validate()?;
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let storage = unsafe { open_file(path, &config) }?;
        new_node(config, Box::new(storage), now_ns, out)
    })
}

/// The record file at `path` for the replica `config` describes.
///
/// # Safety
/// `path` is non-NULL and NUL-terminated.
unsafe fn open_file(path: *const c_char, config: &Config) -> FfiResult<FileStorage> {
    // SAFETY: the caller's contract.
    let path = path_of(unsafe { CStr::from_ptr(path) })?;
    Ok(FileStorage::open(
        &path,
        FileIdentity::new(config.cluster_id, config.id),
    )?)
}

/// Creates a replica that joins a running cluster, as
/// `qk_paxos_node_new_memory()` (`join_file` false) or
/// `qk_paxos_node_new_file()` (`path` non-NULL); `config->members` names
/// the cluster's voters as the operator knows them and need not include
/// `config->id`. The node takes no part until a leader adds it with
/// `qk_paxos_node_change_membership(QK_PAXOS_ADD_LEARNER)`; it then
/// catches up (by snapshot install if the log was compacted) and follows
/// as a learner until promoted. Restart such a node (from its file) with
/// this function too.
///
/// Ownership: the caller owns the node; free it with `qk_paxos_node_free()`.
///
/// Errors: as `qk_paxos_node_new_file()`, except that `id` need not be a
/// member.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `config` is NULL or a readable config; `path` is NULL (memory storage)
/// or a NUL-terminated string; `node_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_join(
    config: *const qk_paxos_config,
    path: *const c_char,
    now_ns: u64,
    node_out: *mut *mut qk_paxos_node,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_ref(config, "config") }?;
        let out = unsafe { Out::new(node_out, "node_out") }?;
        let config = config_of(c)?;
        config.validate_settings()?;
        let storage: Box<dyn Storage + Send + Sync> = if path.is_null() {
            Box::new(MemoryStorage::new())
        } else {
            // SAFETY: non-NULL and NUL-terminated per the contract.
            Box::new(unsafe { open_file(path, &config) }?)
        };
        start_node(Node::join(config, storage, now_ns)?, out)
    })
}

/// The change a `QK_PAXOS_*` kind names (`other` only for a replace).
pub(crate) fn membership_change(kind: u32, id: u32, other: u32) -> FfiResult<MembershipChange> {
    Ok(match kind {
        QK_PAXOS_ADD_LEARNER => MembershipChange::AddLearner(id),
        QK_PAXOS_PROMOTE => MembershipChange::Promote(id),
        QK_PAXOS_REMOVE => MembershipChange::Remove(id),
        QK_PAXOS_REPLACE => MembershipChange::Replace {
            old: id,
            new: other,
        },
        other => {
            return Err(Failure::invalid(format!(
                "kind {other} is not a QK_PAXOS_ADD_LEARNER, PROMOTE, REMOVE or REPLACE"
            )));
        }
    })
}

/// Proposes a membership change at the leader: `kind` is
/// `QK_PAXOS_ADD_LEARNER`, `QK_PAXOS_PROMOTE` or `QK_PAXOS_REMOVE` of
/// replica `id` (`other` ignored), or `QK_PAXOS_REPLACE`: the voter `id`'s
/// vote goes to the learner `other`. The change takes a slot of its own;
/// when it is delivered every replica hands out a MEMBERSHIP output and
/// the new voters elect a leader (the old one stands at once if it still
/// votes). Commands proposed meanwhile wait; none is lost.
///
/// Errors (nothing changes): `QK_ERR_NULL_ARG`; `QK_ERR_NOT_LEADER` on a
/// follower; `QK_ERR_INVALID_ARG` for an unknown `kind`, a change while
/// another is under way, a replica that is unknown (remove, replace), already
/// a member (add), not a learner (promote, replace's `other`), a removal
/// that would leave one voter, or more than `QK_PAXOS_MAX_MEMBERS` replicas;
/// `QK_ERR_STORAGE` (the node is stopped).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_change_membership(
    node: *mut qk_paxos_node,
    kind: u32,
    id: u32,
    other: u32,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        let change = membership_change(kind, id, other)?;
        Ok(n.node.change_membership(change, now_ns)?)
    })
}

/// Hands the leadership to the voter `to` (leader only), for planned
/// maintenance: the leader stops proposing, waits until `to` has
/// acknowledged every slot in flight and a heartbeat, then gives up its
/// read lease, steps down and tells `to` to stand at once (the others
/// release their lease promises), so the cluster is without a leader for
/// about one round trip. If `to` does not catch up within an election
/// timeout the leader carries on. Watch the LEADER_CHANGED outputs.
///
/// Errors (nothing changes): `QK_ERR_NULL_ARG`; `QK_ERR_NOT_LEADER` on a
/// follower; `QK_ERR_INVALID_ARG` when `to` is this node or not a voter, or
/// while a membership change or another transfer is under way;
/// `QK_ERR_STORAGE` (the node is stopped).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_transfer_leadership(
    node: *mut qk_paxos_node,
    to: u32,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        Ok(n.node.transfer_leadership(to, now_ns)?)
    })
}

/// Stores the current membership: its epoch in `*epoch_out` (0 until the
/// first change), the first slot it decides in `*start_out`, the voters
/// then the learners in `ids_out` (room for `ids_cap` ids; NULL with 0 to
/// ask the size), how many voters in `*voters_len_out` and how many ids in
/// all in `*ids_len_out`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_BUFFER_TOO_SMALL` when `ids_cap` is
/// below the count (the counts are stored; nothing is written to `ids_out`).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `ids_out` is NULL or has room for
/// `ids_cap` ids; the other outputs are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_membership(
    node: *const qk_paxos_node,
    epoch_out: *mut u64,
    start_out: *mut u64,
    ids_out: *mut u32,
    ids_cap: usize,
    voters_len_out: *mut usize,
    ids_len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        unsafe {
            write_membership(
                n.node.membership(),
                epoch_out,
                start_out,
                ids_out,
                ids_cap,
                voters_len_out,
                ids_len_out,
            )
        }
    })
}

/// Stores `m` where a `qk_*_membership()` call was asked to (see
/// `qk_paxos_node_membership()`).
///
/// # Safety
/// `ids_out` is NULL or has room for `ids_cap` ids; the other outputs are
/// NULL or writable.
pub(crate) unsafe fn write_membership(
    m: &crate::paxos::Membership,
    epoch_out: *mut u64,
    start_out: *mut u64,
    ids_out: *mut u32,
    ids_cap: usize,
    voters_len_out: *mut usize,
    ids_len_out: *mut usize,
) -> FfiResult<()> {
    let epoch = unsafe { Out::new(epoch_out, "epoch_out") }?;
    let start = unsafe { Out::new(start_out, "start_out") }?;
    let voters_len = unsafe { Out::new(voters_len_out, "voters_len_out") }?;
    let ids_len = unsafe { Out::new(ids_len_out, "ids_len_out") }?;
    let ids: Vec<u32> = m.peers().collect();
    epoch.set(m.epoch);
    start.set(m.start);
    voters_len.set(m.voters.len());
    ids_len.set(ids.len());
    if ids_cap < ids.len() {
        return Err(Failure::too_small("ids_out", ids.len(), ids_cap));
    }
    if ids.is_empty() {
        return Ok(());
    }
    if ids_out.is_null() {
        return Err(Failure::null("ids_out"));
    }
    // SAFETY: non-NULL with room for `ids_cap` >= `ids.len()` ids.
    unsafe { std::ptr::copy_nonoverlapping(ids.as_ptr(), ids_out, ids.len()) };
    Ok(())
}

/// Frees a node (its file, if any, stays). NULL is a no-op.
///
/// Thread safety: needs the `qk_paxos_node` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `node` is NULL or a live node that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_free(node: *mut qk_paxos_node) {
    catch_or((), || unsafe { free_boxed(node) })
}

/// Hands the node a message from replica `from`: `len` bytes of the wire
/// format, as a `QK_PAXOS_OUTPUT_SEND` of that replica produced them. Then
/// drain `qk_paxos_node_poll()`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_CORRUPT` when the bytes are not a
/// message (nothing changes); `QK_ERR_UNSUPPORTED_VERSION` for a newer wire
/// format; `QK_ERR_STORAGE` when storage failed (the node is stopped).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `bytes` is NULL or points to `len`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_step(
    node: *mut qk_paxos_node,
    from: u32,
    bytes: *const u8,
    len: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        let bytes = unsafe { arg_key(bytes, len, "bytes") }?;
        let message = wire::decode(bytes)?;
        Ok(n.node.step(from, message, now_ns)?)
    })
}

/// Lets time pass to `now_ns`: heartbeats, elections, retries. Call it when
/// `qk_paxos_node_next_deadline()` passes (calling it early is harmless),
/// then drain `qk_paxos_node_poll()`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_STORAGE` (the node is stopped).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_tick(
    node: *mut qk_paxos_node,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        Ok(n.node.tick(now_ns)?)
    })
}

/// Proposes the command `cmd` (`len` bytes, copied): the leader puts it in
/// a slot, a follower forwards it to the leader it knows, or holds it until
/// one is elected. It is chosen when a `QK_PAXOS_OUTPUT_DECIDED` carries it
/// (a command may be lost if the node it went to crashes: retry on a
/// timeout, and make commands idempotent or carry an id).
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_STORAGE` (the node is stopped).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `cmd` is NULL or points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_propose(
    node: *mut qk_paxos_node,
    cmd: *const u8,
    len: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        let cmd = unsafe { arg_key(cmd, len, "cmd") }?;
        Ok(n.node.propose(cmd.to_vec(), now_ns)?)
    })
}

/// Proposes `count` commands at once (command `i` is `cmds[i]`, `lens[i]`
/// bytes, copied): as `count` calls of `qk_paxos_node_propose()`, except
/// that a leader packs them into as few slots as its batch size allows
/// (one record and one accept message per slot, not per command). Nothing
/// is proposed unless every argument is valid.
///
/// Errors: `QK_ERR_NULL_ARG` (also for a NULL command with a non-zero
/// length); `QK_ERR_STORAGE` (the node is stopped).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `cmds` and `lens` are NULL or point to
/// `count` readable elements, each command to its length in bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_propose_all(
    node: *mut qk_paxos_node,
    cmds: *const *const u8,
    lens: *const usize,
    count: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        let ptrs = unsafe { arg_slice(cmds, count, "cmds") }?;
        let lens = unsafe { arg_slice(lens, count, "lens") }?;
        let mut commands = Vec::with_capacity(count);
        for (&p, &len) in ptrs.iter().zip(lens) {
            commands.push(unsafe { arg_key(p, len, "cmds[i]") }?.to_vec());
        }
        Ok(n.node.propose_all(commands, now_ns)?)
    })
}

/// Takes the node's next output: stores it in `*output_out` and true in
/// `*has_out`, or false in `*has_out` (and leaves `*output_out` alone) when
/// there is nothing to do. Outputs come in the order they must be acted on;
/// call it until `*has_out` is false after every step, tick and propose.
///
/// Lifetime: `output_out->data` points into the node and stays valid only
/// until the next call that takes this node (any `qk_paxos_node_*`
/// function); copy the bytes to keep them.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `output_out` and `has_out` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_poll(
    node: *mut qk_paxos_node,
    output_out: *mut qk_paxos_output,
    has_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        let out = unsafe { Out::new(output_out, "output_out") }?;
        let has = unsafe { Out::new(has_out, "has_out") }?;
        match next_output(n) {
            Some(o) => {
                out.set(o);
                has.set_flag(true);
            }
            None => has.set_flag(false),
        }
        Ok(())
    })
}

/// The next output in C form; a decided batch is handed out one command at
/// a time from `n.decided`.
fn next_output(n: &mut qk_paxos_node) -> Option<qk_paxos_output> {
    if let Some((slot, batch, next)) = &mut n.decided {
        if *next < batch.len() {
            let i = *next;
            *next += 1;
            let cmd = &batch[i];
            let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_DECIDED);
            o.slot = *slot;
            o.index = i as u64;
            o.count = batch.len() as u64;
            o.data = if cmd.is_empty() {
                std::ptr::null()
            } else {
                cmd.as_ptr()
            };
            o.data_len = cmd.len();
            return Some(o);
        }
        n.decided = None;
    }
    match n.node.poll()? {
        Output::Send(env) => {
            n.send_buf.clear();
            wire::encode(&env.message, &mut n.send_buf);
            let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_SEND);
            o.to = env.to;
            o.data = n.send_buf.as_ptr();
            o.data_len = n.send_buf.len();
            Some(o)
        }
        Output::Decided { slot, batch } => {
            if batch.is_empty() {
                let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_DECIDED);
                o.slot = slot;
                return Some(o);
            }
            n.decided = Some((slot, batch, 0));
            next_output(n)
        }
        Output::Persisted { records } => {
            let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_PERSISTED);
            o.count = records as u64;
            Some(o)
        }
        Output::Snapshot { slot, data } => {
            let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_SNAPSHOT);
            o.slot = slot;
            o.data_len = data.len();
            if !data.is_empty() {
                o.data = data.as_ptr();
            }
            n.snapshot_out = Some(data);
            Some(o)
        }
        Output::MembershipChanged(m) => {
            let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_MEMBERSHIP);
            o.slot = m.start;
            o.index = m.epoch;
            o.count = m.voters.len() as u64;
            n.membership_out.clear();
            n.membership_out.extend(m.peers());
            o.data_len = 4 * n.membership_out.len();
            o.data = n.membership_out.as_ptr().cast();
            Some(o)
        }
        Output::ReadIndex { id, ready } => {
            let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_READ_INDEX);
            o.index = id;
            o.count = u64::from(ready);
            Some(o)
        }
        Output::LeaderChanged { leader, ballot } => {
            let mut o = qk_paxos_output::empty(QK_PAXOS_OUTPUT_LEADER_CHANGED);
            o.leader = leader.unwrap_or(0);
            o.has_leader = u8::from(leader.is_some());
            o.ballot_round = ballot.round;
            Some(o)
        }
    }
}

/// Stores in `*deadline_out` when `qk_paxos_node_tick()` must next be
/// called (absolute nanoseconds on the caller's clock).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `deadline_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_next_deadline(
    node: *const qk_paxos_node,
    deadline_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        let out = unsafe { Out::new(deadline_out, "deadline_out") }?;
        out.set(n.node.next_deadline());
        Ok(())
    })
}

/// Stores in `*has_out` whether the node knows a leader and, if it does,
/// its id in `*leader_out` (itself when it leads; left alone otherwise).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `leader_out` and `has_out` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_leader(
    node: *const qk_paxos_node,
    leader_out: *mut u32,
    has_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        let leader = unsafe { Out::new(leader_out, "leader_out") }?;
        let has = unsafe { Out::new(has_out, "has_out") }?;
        match n.node.leader() {
            Some(l) => {
                leader.set(l);
                has.set_flag(true);
            }
            None => has.set_flag(false),
        }
        Ok(())
    })
}

/// Stores in `*is_leader_out` whether the node leads (it won phase 1 with
/// its ballot).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `is_leader_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_is_leader(
    node: *const qk_paxos_node,
    is_leader_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        let out = unsafe { Out::new(is_leader_out, "is_leader_out") }?;
        out.set_flag(n.node.is_leader());
        Ok(())
    })
}

/// Stores in `*lease_out` whether the node leads and holds a majority's
/// lease at `now_ns`, so it may answer reads from its own state.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `lease_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_has_read_lease(
    node: *const qk_paxos_node,
    now_ns: u64,
    lease_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        let out = unsafe { Out::new(lease_out, "lease_out") }?;
        out.set_flag(n.node.has_read_lease(now_ns));
        Ok(())
    })
}

/// Stores the commit index in `*commit_out`: every slot below it is chosen
/// and was delivered through `QK_PAXOS_OUTPUT_DECIDED`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `commit_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_commit_index(
    node: *const qk_paxos_node,
    commit_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        let out = unsafe { Out::new(commit_out, "commit_out") }?;
        out.set(n.node.commit_index());
        Ok(())
    })
}

/// Asks for a linearizable read that needs no clock bound (ReadIndex): the
/// leader notes its commit index and sends a heartbeat; a
/// `QK_PAXOS_OUTPUT_READ_INDEX` output with `index` = `read_id` follows
/// once a majority acknowledged it and the index is delivered (`count` 1:
/// answer from the state now), or once the node lost the leadership
/// (`count` 0).
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_NOT_LEADER` on a follower;
/// `QK_ERR_LIMIT_EXCEEDED` past 100,000 waiting reads; `QK_ERR_STORAGE`
/// (the node is stopped).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_read_index(
    node: *mut qk_paxos_node,
    read_id: u64,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        Ok(n.node.read_index(read_id, now_ns)?)
    })
}

/// Compacts the log: `data` (`len` bytes, copied) is the application's
/// state after applying every slot below `slot`. The node drops those
/// slots and rewrites its storage as a checkpoint; after a restart it hands
/// out a SNAPSHOT output with these bytes, then DECIDED from `slot` on; a
/// replica that needs the dropped slots is sent the snapshot instead.
///
/// Errors: `QK_ERR_NULL_ARG` (also NULL `data` with a non-zero `len`);
/// `QK_ERR_INVALID_ARGUMENT` when `slot` is above the commit index, or not
/// above `qk_paxos_node_log_start()` (an older snapshot, or one that raced
/// an install from a peer: nothing changes); `QK_ERR_STORAGE` (the node
/// is stopped; the old records are left whole).
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `data` is NULL or points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_compact(
    node: *mut qk_paxos_node,
    slot: u64,
    data: *const u8,
    len: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_mut(node, "node") }?;
        let data = unsafe { arg_key(data, len, "data") }?;
        Ok(n.node.compact(slot, data.to_vec(), now_ns)?)
    })
}

/// Stores the first slot the log holds in `*start_out` (every slot below
/// it is in the snapshot) and how many slots it holds in memory in
/// `*len_out`: what a compaction policy watches.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `start_out` and `len_out` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_log_extent(
    node: *const qk_paxos_node,
    start_out: *mut u64,
    len_out: *mut u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        let start = unsafe { Out::new(start_out, "start_out") }?;
        let len = unsafe { Out::new(len_out, "len_out") }?;
        start.set(n.node.log_start());
        len.set(n.node.log_len());
        Ok(())
    })
}

/// Stores in `*out` 1 while the checkpoint of the last
/// `qk_paxos_node_compact()` is still being written in the background (a
/// file-backed node writes it on a thread of its own; the next call after
/// it is written puts it in place), else 0. `qk_paxos_node_free()` waits
/// for it.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_paxos_node` may overlap.
///
/// # Safety
/// `node` is NULL or a live node; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_paxos_node_compacting(
    node: *const qk_paxos_node,
    out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let n = unsafe { arg_ref(node, "node") }?;
        let out = unsafe { Out::new(out, "out") }?;
        out.set(u8::from(n.node.compacting()));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::{QK_ERR_CORRUPT, QK_OK};

    /// Every output of `node`, DECIDED ones as (slot, index, count, bytes).
    fn drain(node: *mut qk_paxos_node) -> Vec<(u32, u64, u64, u64, Vec<u8>)> {
        let mut all = Vec::new();
        loop {
            let mut o = qk_paxos_output::empty(u32::MAX);
            let mut has = 0u8;
            // SAFETY: a live node and writable outputs.
            assert_eq!(
                unsafe { qk_paxos_node_poll(node, &mut o, &mut has, std::ptr::null_mut()) },
                QK_OK
            );
            if has == 0 {
                return all;
            }
            let data = if o.data.is_null() {
                assert_eq!(o.data_len, 0);
                Vec::new()
            } else {
                // SAFETY: borrowed from the node until its next call.
                unsafe { std::slice::from_raw_parts(o.data, o.data_len) }.to_vec()
            };
            all.push((o.kind, o.slot, o.index, o.count, data));
        }
    }

    #[test]
    fn a_batch_comes_out_one_command_at_a_time() {
        let members = [4u32];
        let mut cfg = std::mem::MaybeUninit::uninit();
        let mut node: *mut qk_paxos_node = std::ptr::null_mut();
        // SAFETY: valid pointers throughout; the node is freed at the end.
        unsafe {
            assert_eq!(
                qk_paxos_config_init(
                    4,
                    members.as_ptr(),
                    1,
                    cfg.as_mut_ptr(),
                    std::ptr::null_mut()
                ),
                QK_OK
            );
            let mut cfg = cfg.assume_init();
            cfg.max_batch = 8;
            assert_eq!(
                qk_paxos_node_new_memory(&cfg, 0, &mut node, std::ptr::null_mut()),
                QK_OK
            );
            // Held until the lone member elects itself, then batched together.
            for c in [&b"a"[..], b"", b"ccc"] {
                assert_eq!(
                    qk_paxos_node_propose(node, c.as_ptr(), c.len(), 0, std::ptr::null_mut()),
                    QK_OK
                );
            }
            let mut outputs = drain(node);
            let mut now = 0;
            for _ in 0..100 {
                let mut is_leader = 0u8;
                assert_eq!(
                    qk_paxos_node_is_leader(node, &mut is_leader, std::ptr::null_mut()),
                    QK_OK
                );
                let decided = outputs.iter().filter(|o| o.0 == QK_PAXOS_OUTPUT_DECIDED);
                if is_leader == 1 && decided.filter(|o| o.3 > 0).count() == 3 {
                    break;
                }
                assert_eq!(
                    qk_paxos_node_next_deadline(node, &mut now, std::ptr::null_mut()),
                    QK_OK
                );
                assert_eq!(qk_paxos_node_tick(node, now, std::ptr::null_mut()), QK_OK);
                outputs.extend(drain(node));
            }
            let garbage = [1u8, 0xee];
            assert_eq!(
                qk_paxos_node_step(node, 4, garbage.as_ptr(), 2, now, std::ptr::null_mut()),
                QK_ERR_CORRUPT
            );
            qk_paxos_node_free(node);

            // Slots in order; within a slot, indexes 0..count in order; a
            // no-op slot is one output with count 0 and no bytes.
            let decided: Vec<_> = outputs
                .iter()
                .filter(|o| o.0 == QK_PAXOS_OUTPUT_DECIDED)
                .collect();
            let mut expect = (0u64, 0u64);
            let mut commands = Vec::new();
            for &&(_, slot, index, count, ref data) in &decided {
                assert_eq!((slot, index), expect, "{decided:?}");
                if count == 0 {
                    assert!(data.is_empty());
                    expect = (slot + 1, 0);
                } else {
                    commands.push(data.clone());
                    expect = if index + 1 == count {
                        (slot + 1, 0)
                    } else {
                        (slot, index + 1)
                    };
                }
            }
            assert_eq!(commands, [b"a".to_vec(), Vec::new(), b"ccc".to_vec()]);
            // The three went into one slot (count 3).
            assert!(decided.iter().any(|o| o.3 == 3 && o.2 == 2));
            assert!(
                outputs
                    .iter()
                    .any(|o| o.0 == QK_PAXOS_OUTPUT_LEADER_CHANGED)
            );
            assert!(
                outputs
                    .iter()
                    .any(|o| o.0 == QK_PAXOS_OUTPUT_PERSISTED && o.3 > 0)
            );
        }
    }
}
