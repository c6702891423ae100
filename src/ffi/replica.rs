//! `qk_replica` and `qk_net_client`: the networked replica runtime with a
//! state machine made of C callbacks ([`crate::net::hosted`]), and the
//! client that proposes commands to such a cluster and reads from it.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_void};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use super::args::{Out, arg_mut, arg_ref, arg_slice, free_boxed, hand_out};
use super::boundary::{Failure, FfiResult, boundary, catch_or, qk_error};
use super::status::qk_status;
use crate::net::hosted::{self, HostedMachine};
use crate::net::{Client, ClientConfig, ReadPolicy, Replica, ReplicaConfig, parse_addrs};

/// Where a callback puts its answer: set it with `qk_reply_set()` (the
/// bytes are copied). Valid only during the callback that received it.
#[allow(non_camel_case_types)]
pub struct qk_reply(Vec<u8>);

/// Applies a decided command to the host's state: called on the replica's
/// own thread, one call at a time, for every command in log order (on
/// every replica alike; after a restart, again from the first command, so
/// the state must start empty). `time_ns` is the cluster time the leader
/// stamped on the command. Return 0 with the result in `reply`, or
/// non-zero to refuse the command with the message in `reply` (the
/// proposer gets `QK_ERR_INVALID_ARG`). Must be deterministic: the same
/// state and command give the same answer on every replica.
#[allow(non_camel_case_types)]
pub type qk_replica_apply_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        time_ns: u64,
        command: *const u8,
        command_len: usize,
        reply: *mut qk_reply,
    ) -> i32,
>;

/// Answers a read-only query from the current state (on the leader, under
/// its read lease): 0 with the answer in `reply`, or non-zero to refuse
/// with the message in `reply`. Called on the replica's thread, never at
/// the same time as the apply callback.
#[allow(non_camel_case_types)]
pub type qk_replica_query_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        query: *const u8,
        query_len: usize,
        reply: *mut qk_reply,
    ) -> i32,
>;

/// Writes the state machine's whole state into `reply` (with
/// `qk_reply_set()`), for log compaction, and returns 0; non-zero skips
/// this compaction (the replica asks again at the next one).
#[allow(non_camel_case_types)]
pub type qk_replica_snapshot_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, reply: *mut qk_reply) -> i32>;

/// Replaces the state machine's state with `data` (what the snapshot
/// callback wrote, on this replica or another) and returns 0; non-zero
/// (with a message in `reply`) stops the replica.
#[allow(non_camel_case_types)]
pub type qk_replica_restore_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        data: *const u8,
        data_len: usize,
        reply: *mut qk_reply,
    ) -> i32,
>;

/// Stores `len` bytes from `data` as the callback's reply (replacing any
/// earlier one).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: only inside the callback that received `reply`.
///
/// # Safety
/// `reply` is NULL or the callback's reply; `data` is NULL (with `len` 0)
/// or points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_reply_set(
    reply: *mut qk_reply,
    data: *const u8,
    len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (r, d) = unsafe { (arg_mut(reply, "reply")?, arg_slice(data, len, "data")?) };
        r.0.clear();
        r.0.extend_from_slice(d);
        Ok(())
    })
}

/// The host's pointer, handed back to its callbacks on the replica's
/// thread. The host promises (in `qk_replica_start()`'s contract) that its
/// callbacks may run on that thread.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: only passed back to the host's callbacks, which the contract of
// `qk_replica_start()` allows to run on another thread.
unsafe impl Send for UserData {}

fn call_back(f: impl FnOnce(*mut qk_reply) -> i32) -> std::result::Result<Vec<u8>, String> {
    let mut reply = qk_reply(Vec::new());
    let rc = f(&mut reply);
    if rc == 0 {
        Ok(reply.0)
    } else {
        let msg = String::from_utf8_lossy(&reply.0).into_owned();
        Err(if msg.is_empty() {
            format!("refused (callback returned {rc})")
        } else {
            msg
        })
    }
}

/// The status of a running replica (filled by `qk_replica_status()`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct qk_replica_info {
    /// This replica.
    pub id: u32,
    /// The leader it knows (0: none).
    pub leader: u32,
    /// Its ballot: round, and the replica that owns it.
    pub ballot_round: u64,
    /// The ballot's replica.
    pub ballot_node: u32,
    /// Log entries known decided.
    pub commit_index: u64,
    /// Commands applied to the state machine.
    pub applied: u64,
    /// 1 while it leads under a read lease (it answers reads), else 0.
    pub read_lease: u8,
}

/// A replica of a cluster, running on its own threads (docs/service.md):
/// it listens, connects to its peers, stores its log in its data
/// directory with group commit, and applies decided commands through the
/// host's callbacks.
///
/// Thread safety: `qk_replica_status()` may run from any thread;
/// `qk_replica_free()` needs the replica to itself.
///
/// Create with `qk_replica_start()`, destroy with `qk_replica_free()`.
#[allow(non_camel_case_types)]
pub struct qk_replica {
    replica: Option<Replica>,
}

/// `ID=HOST:PORT,...` into the map of a cluster's replicas.
fn peer_map(list: &str) -> FfiResult<BTreeMap<u32, SocketAddr>> {
    let mut peers = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| Failure::invalid(format!("peers: {item:?} is not ID=HOST:PORT")))?;
        let id: u32 =
            id.parse().ok().filter(|&i| i > 0).ok_or_else(|| {
                Failure::invalid(format!("peers: {item:?}: ids are numbers from 1"))
            })?;
        let addr = parse_addrs(addr)?[0];
        if peers.insert(id, addr).is_some() {
            return Err(Failure::invalid(format!(
                "peers: replica {id} is listed twice"
            )));
        }
    }
    if peers.is_empty() {
        return Err(Failure::invalid("peers: no replica"));
    }
    Ok(peers)
}

/// # Safety
/// `p` is NULL or NUL-terminated.
unsafe fn c_str<'a>(p: *const c_char, arg: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Failure::null(arg));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|e| Failure::utf8(arg, e))
}

/// `qk_replica_start()`'s `init`: create a new replica (its directory must
/// hold no log). Without it the replica restarts from its directory.
pub const QK_REPLICA_INIT: u8 = 1;
/// `qk_replica_start()`'s `init`, or-ed in: the replica joins a running
/// cluster (`QK_REPLICA_INIT | QK_REPLICA_JOIN` the first time, then
/// `QK_REPLICA_JOIN` for its restarts). The other `peers` are the
/// cluster's voters as the operator knows them; it takes part once the
/// leader adds it (`qk_replica_change_membership()`).
pub const QK_REPLICA_JOIN: u8 = 2;

/// Starts replica `id` of the cluster `peers` (NUL-terminated
/// `ID=HOST:PORT,...`, this replica included; it listens on its own
/// entry, which must be a loopback address), keeping its log in
/// `data_dir`. `init` = `QK_REPLICA_INIT` (1) creates a new replica (the
/// directory must hold no log); 0 restarts one from its directory (a
/// replica that lost its data must not rejoin silently: that is refused);
/// or-ed with `QK_REPLICA_JOIN` the replica joins a running cluster.
/// `heartbeat_ns` sets
/// the leader's heartbeat (0: 50 ms); elections take 10 to 20 heartbeats,
/// read leases last 10. The callbacks run on the replica's thread with
/// `user_data` (`query` may be NULL: reads are then refused).
///
/// Ownership: the caller owns the replica; stop and free it with
/// `qk_replica_free()`. `user_data` must stay valid until then.
///
/// Errors: `QK_ERR_NULL_ARG` (a NULL string or `apply`),
/// `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG` (bad peers, `id` not
/// among them, a short secret), `QK_ERR_STORAGE*` (the data directory:
/// in use by another process, missing its log without `init`, of another
/// cluster), `QK_ERR_BACKEND_UNAVAILABLE` (cannot listen).
///
/// Thread safety: thread-safe. The callbacks must be safe to run on
/// another thread than the caller's.
///
/// # Safety
/// `peers` and `data_dir` are NULL or NUL-terminated; `secret` is NULL or
/// points to `secret_len` readable bytes; `replica_out` is NULL or
/// writable; the callbacks and `user_data` stay valid until the replica is
/// freed.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_replica_start(
    id: u32,
    peers: *const c_char,
    data_dir: *const c_char,
    cluster_id: u64,
    secret: *const u8,
    secret_len: usize,
    init: u8,
    heartbeat_ns: u64,
    apply: qk_replica_apply_fn,
    query: qk_replica_query_fn,
    user_data: *mut c_void,
    replica_out: *mut *mut qk_replica,
    err: *mut qk_error,
) -> qk_status {
    let args = StartArgs {
        id,
        peers,
        data_dir,
        cluster_id,
        secret,
        secret_len,
        init,
        heartbeat_ns,
        apply,
        query,
        snapshots: None,
        compact_every: 0,
        user_data,
    };
    // SAFETY: the caller's contract, passed on.
    boundary(err, || unsafe { start_replica(args, replica_out) })
}

/// [`qk_replica_start`]'s arguments, and the compaction ones.
struct StartArgs {
    id: u32,
    peers: *const c_char,
    data_dir: *const c_char,
    cluster_id: u64,
    secret: *const u8,
    secret_len: usize,
    init: u8,
    heartbeat_ns: u64,
    apply: qk_replica_apply_fn,
    query: qk_replica_query_fn,
    snapshots: Option<(qk_replica_snapshot_fn, qk_replica_restore_fn)>,
    compact_every: u64,
    user_data: *mut c_void,
}

/// # Safety
/// As [`qk_replica_start_compacting`].
unsafe fn start_replica(a: StartArgs, replica_out: *mut *mut qk_replica) -> FfiResult<()> {
    let StartArgs {
        id,
        peers,
        data_dir,
        cluster_id,
        secret,
        secret_len,
        init,
        heartbeat_ns,
        apply,
        query,
        snapshots,
        compact_every,
        user_data,
    } = a;
    {
        let peers = peer_map(unsafe { c_str(peers, "peers") }?)?;
        let dir = unsafe { c_str(data_dir, "data_dir") }?;
        let secret = unsafe { arg_slice(secret, secret_len, "secret") }?;
        let out = unsafe { Out::new(replica_out, "replica_out") }?;
        let apply = apply.ok_or_else(|| Failure::null("apply"))?;
        let snapshots = match snapshots {
            None => None,
            Some((s, r)) => Some((
                s.ok_or_else(|| Failure::null("snapshot"))?,
                r.ok_or_else(|| Failure::null("restore"))?,
            )),
        };
        if !peers.contains_key(&id) {
            return Err(Failure::invalid(format!(
                "replica {id} is not among the peers"
            )));
        }
        let mut config = ReplicaConfig::new(id, peers, dir, cluster_id, secret.to_vec());
        if init & !(QK_REPLICA_INIT | QK_REPLICA_JOIN) != 0 {
            return Err(Failure::invalid(format!(
                "init is {init}: 0 or QK_REPLICA_INIT, with QK_REPLICA_JOIN or not"
            )));
        }
        config.init = init & QK_REPLICA_INIT != 0;
        config.join = init & QK_REPLICA_JOIN != 0;
        if snapshots.is_some() {
            config.compact_every_slots = compact_every;
            if compact_every == 0 {
                config.compact_every_bytes = 0;
            }
        }
        let beat = if heartbeat_ns == 0 {
            Duration::from_millis(50)
        } else {
            Duration::from_nanos(heartbeat_ns)
        };
        config.set_heartbeat(beat);
        let user = UserData(user_data);
        let apply_fn: hosted::ApplyFn = Box::new(move |time, command| {
            let u = user;
            call_back(|reply| {
                // SAFETY: the host's callback, with its own pointer and a
                // command valid for the call.
                unsafe { apply(u.0, time, command.as_ptr(), command.len(), reply) }
            })
        });
        let query_fn: Option<hosted::QueryFn> = query.map(|q| {
            let f: hosted::QueryFn = Box::new(move |bytes: &[u8]| {
                let u = user;
                // SAFETY: as for apply.
                call_back(|reply| unsafe { q(u.0, bytes.as_ptr(), bytes.len(), reply) })
            });
            f
        });
        let mut machine = HostedMachine::new(apply_fn, query_fn);
        if let Some((snap, rest)) = snapshots {
            let snapshot_fn: hosted::SnapshotFn = Box::new(move || {
                let u = user;
                // SAFETY: the host's callback, with its own pointer.
                call_back(|reply| unsafe { snap(u.0, reply) })
            });
            let restore_fn: hosted::RestoreFn = Box::new(move |data: &[u8]| {
                let u = user;
                // SAFETY: as for apply.
                call_back(|reply| unsafe { rest(u.0, data.as_ptr(), data.len(), reply) }).map(drop)
            });
            machine = machine.with_snapshots(snapshot_fn, restore_fn);
        }
        let replica = Replica::start(config, machine)?;
        hand_out(
            out,
            qk_replica {
                replica: Some(replica),
            },
        );
        Ok(())
    }
}

/// As `qk_replica_start()`, with log compaction: every `compact_every`
/// slots (0: never) the replica asks `snapshot` for the state machine's
/// whole state and keeps it instead of the log before it. A restart, or a
/// replica that fell behind its peers' compactions (it is sent a peer's
/// snapshot), calls `restore` with the bytes first and applies only later
/// commands. Both callbacks run on the replica's thread with `user_data`.
///
/// Ownership: as `qk_replica_start()`.
///
/// Errors: as `qk_replica_start()`; also `QK_ERR_NULL_ARG` for a NULL
/// `snapshot` or `restore`.
///
/// Thread safety: thread-safe. The callbacks must be safe to run on
/// another thread than the caller's.
///
/// # Safety
/// As `qk_replica_start()`; `snapshot` and `restore` stay valid until the
/// replica is freed.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn qk_replica_start_compacting(
    id: u32,
    peers: *const c_char,
    data_dir: *const c_char,
    cluster_id: u64,
    secret: *const u8,
    secret_len: usize,
    init: u8,
    heartbeat_ns: u64,
    apply: qk_replica_apply_fn,
    query: qk_replica_query_fn,
    snapshot: qk_replica_snapshot_fn,
    restore: qk_replica_restore_fn,
    compact_every: u64,
    user_data: *mut c_void,
    replica_out: *mut *mut qk_replica,
    err: *mut qk_error,
) -> qk_status {
    let args = StartArgs {
        id,
        peers,
        data_dir,
        cluster_id,
        secret,
        secret_len,
        init,
        heartbeat_ns,
        apply,
        query,
        snapshots: Some((snapshot, restore)),
        compact_every,
        user_data,
    };
    // SAFETY: the caller's contract, passed on.
    boundary(err, || unsafe { start_replica(args, replica_out) })
}

/// Stops the replica (its threads end; nothing more is applied) and frees
/// it. NULL is a no-op. Its data directory keeps the log for a restart.
///
/// Thread safety: needs the replica to itself.
///
/// # Safety
/// `replica` is NULL or live and not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_replica_free(replica: *mut qk_replica) {
    catch_or((), || {
        if replica.is_null() {
            return;
        }
        // SAFETY: live per the contract.
        if let Some(r) = unsafe { &mut *replica }.replica.take() {
            let _ = r.shutdown();
        }
        unsafe { free_boxed(replica) }
    })
}

/// Stores the replica's status in `*status_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: may run concurrently from any thread, except with the
/// replica's free.
///
/// # Safety
/// `replica` is NULL or live; `status_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_replica_status(
    replica: *const qk_replica,
    status_out: *mut qk_replica_info,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (r, out) = unsafe {
            (
                arg_ref(replica, "replica")?,
                Out::new(status_out, "status_out")?,
            )
        };
        let Some(rep) = &r.replica else {
            return Err(Failure::invalid("the replica was stopped"));
        };
        let s = rep.status();
        out.set(qk_replica_info {
            id: s.id,
            leader: s.leader,
            ballot_round: s.ballot_round,
            ballot_node: s.ballot_node,
            commit_index: s.commit_index,
            applied: s.applied,
            read_lease: u8::from(s.read_lease),
        });
        Ok(())
    })
}

/// `qk_replica_set_read_policy()`: a leader answers a read from its state
/// while it holds its read lease (the default; no message per read, safe
/// while clocks drift apart by less than the lease's margin).
pub const QK_REPLICA_READ_LEASE: u32 = 0;
/// `qk_replica_set_read_policy()`: ReadIndex. A leader confirms it still
/// leads with a heartbeat round to a majority per turn of reads and answers
/// once its state reaches the commit index it noted (no clock assumption).
pub const QK_REPLICA_READ_INDEX: u32 = 1;

/// Sets how the replica answers reads (`QK_REPLICA_READ_LEASE` or
/// `QK_REPLICA_READ_INDEX`), from the next read it takes on; reads already
/// waiting finish under the policy they started with. It may be changed at
/// any time, for example to ReadIndex while the clocks are suspect.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for another `policy`
/// (nothing changes) or a stopped replica.
///
/// Thread safety: may run concurrently from any thread, except with the
/// replica's free.
///
/// # Safety
/// `replica` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_replica_set_read_policy(
    replica: *const qk_replica,
    policy: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let rep = unsafe { running(replica) }?;
        let policy = match policy {
            QK_REPLICA_READ_LEASE => ReadPolicy::Lease,
            QK_REPLICA_READ_INDEX => ReadPolicy::ReadIndex,
            other => {
                return Err(Failure::invalid(format!(
                    "policy {other} is not QK_REPLICA_READ_LEASE (0) or QK_REPLICA_READ_INDEX (1)"
                )));
            }
        };
        rep.set_read_policy(policy);
        Ok(())
    })
}

/// The running replica behind `replica`, or an error for a stopped one.
///
/// # Safety
/// `replica` is NULL or live.
unsafe fn running<'a>(replica: *const qk_replica) -> FfiResult<&'a Replica> {
    let r = unsafe { arg_ref(replica, "replica")? };
    r.replica
        .as_ref()
        .ok_or_else(|| Failure::invalid("the replica was stopped"))
}

/// Makes replica `id` at `addr` (NUL-terminated `HOST:PORT`) known to this
/// one: it connects to it and accepts its connections. Call it on every
/// replica before a change adds `id` (`qk_replica_change_membership()`
/// refuses a replica it has no address for). Adding a known replica again
/// at the same address does nothing.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`; `QK_ERR_INVALID_ARG`
/// for id 0, a bad address, a replica already known at another address,
/// or a stopped replica.
///
/// Thread safety: may run concurrently from any thread, except with the
/// replica's free.
///
/// # Safety
/// `replica` is NULL or live; `addr` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_replica_add_peer(
    replica: *const qk_replica,
    id: u32,
    addr: *const c_char,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let rep = unsafe { running(replica) }?;
        let addr = parse_addrs(unsafe { c_str(addr, "addr") }?)?[0];
        Ok(rep.add_peer(id, addr)?)
    })
}

/// Proposes a membership change at the leader, as
/// `qk_paxos_node_change_membership()` (`kind` is `QK_PAXOS_ADD_LEARNER`,
/// `QK_PAXOS_PROMOTE`, `QK_PAXOS_REMOVE` of `id`, or `QK_PAXOS_REPLACE` of
/// `id` by the learner `other`). `QK_OK` means it was proposed; it is in
/// force once `qk_replica_membership()` shows its epoch. A new replica
/// starts with `QK_REPLICA_INIT | QK_REPLICA_JOIN` and must be known to
/// every replica (`qk_replica_add_peer()`) before it is added.
///
/// Errors (nothing changes): `QK_ERR_NULL_ARG`; `QK_ERR_NOT_LEADER` on a
/// follower; `QK_ERR_INVALID_ARG` for an unknown `kind`, a replica without
/// an address, a stopped replica, and the refusals of
/// `qk_paxos_node_change_membership()`; `QK_ERR_BACKEND_UNAVAILABLE` if the
/// replica does not answer within 5 s.
///
/// Thread safety: may run concurrently from any thread, except with the
/// replica's free.
///
/// # Safety
/// `replica` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_replica_change_membership(
    replica: *const qk_replica,
    kind: u32,
    id: u32,
    other: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let rep = unsafe { running(replica) }?;
        let change = super::paxos::membership_change(kind, id, other)?;
        Ok(rep.change_membership(change)?)
    })
}

/// Hands the leadership to voter `to`, as
/// `qk_paxos_node_transfer_leadership()`: the leader waits until `to` has
/// every slot, then steps down and `to` stands at once.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_NOT_LEADER` on a follower;
/// `QK_ERR_INVALID_ARG` when `to` is not another voter or the replica was
/// stopped; `QK_ERR_BACKEND_UNAVAILABLE` if it does not answer within 5 s.
///
/// Thread safety: may run concurrently from any thread, except with the
/// replica's free.
///
/// # Safety
/// `replica` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_replica_transfer_leadership(
    replica: *const qk_replica,
    to: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let rep = unsafe { running(replica) }?;
        Ok(rep.transfer_leadership(to)?)
    })
}

/// Stores the membership the replica applied last, as
/// `qk_paxos_node_membership()`: its epoch, its first slot, the voters then
/// the learners in `ids_out` (room for `ids_cap`; NULL with 0 to ask the
/// size), the voter count and the id count.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_BUFFER_TOO_SMALL` (the counts are
/// stored); `QK_ERR_INVALID_ARG` for a stopped replica.
///
/// Thread safety: may run concurrently from any thread, except with the
/// replica's free.
///
/// # Safety
/// `replica` is NULL or live; `ids_out` is NULL or has room for `ids_cap`
/// ids; the other outputs are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_replica_membership(
    replica: *const qk_replica,
    epoch_out: *mut u64,
    start_out: *mut u64,
    ids_out: *mut u32,
    ids_cap: usize,
    voters_len_out: *mut usize,
    ids_len_out: *mut usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let rep = unsafe { running(replica) }?;
        unsafe {
            super::paxos::write_membership(
                &rep.membership(),
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

/// Bytes that the library allocated for the caller: free them with
/// `qk_bytes_free()`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct qk_bytes {
    /// The bytes (NULL when `len` is 0).
    pub data: *mut u8,
    /// How many.
    pub len: usize,
}

impl qk_bytes {
    fn from_vec(v: Vec<u8>) -> qk_bytes {
        if v.is_empty() {
            return qk_bytes {
                data: std::ptr::null_mut(),
                len: 0,
            };
        }
        let b = v.into_boxed_slice();
        let len = b.len();
        qk_bytes {
            data: Box::into_raw(b).cast::<u8>(),
            len,
        }
    }
}

/// Frees bytes the library handed out and sets `bytes` to empty. NULL, or
/// empty bytes, are a no-op.
///
/// Thread safety: needs `bytes` to itself.
///
/// # Safety
/// `bytes` is NULL or holds what a `qk_` call stored (or was zeroed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_bytes_free(bytes: *mut qk_bytes) {
    catch_or((), || {
        if bytes.is_null() {
            return;
        }
        // SAFETY: per the contract.
        let b = unsafe { &mut *bytes };
        if !b.data.is_null() && b.len > 0 {
            // SAFETY: made by `from_vec` from a boxed slice of this length.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(b.data, b.len)) });
        }
        b.data = std::ptr::null_mut();
        b.len = 0;
    })
}

/// A client of a replica cluster: finds the leader, follows redirects,
/// and retries a command with the same request id (so it is applied once).
///
/// Thread safety: every function taking a `const qk_net_client *` may run
/// concurrently (calls take turns on one connection: use one client per
/// thread for parallel calls). `qk_net_client_free()` needs it to itself.
///
/// Create with `qk_net_client_new()`, destroy with `qk_net_client_free()`.
#[allow(non_camel_case_types)]
pub struct qk_net_client(Mutex<Client>);

/// Opens a client of the cluster at `addrs` (NUL-terminated,
/// comma-separated `HOST:PORT` or `ID=HOST:PORT` entries), with its id and
/// secret. `timeout_ns` bounds every call's turn, retries included (0: 10
/// s). The client is one session, so its calls take turns: a call made
/// while others are under way also waits for them (a client per thread
/// for calls in parallel). Connects lazily.
///
/// Ownership: free the client with `qk_net_client_free()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_INVALID_UTF8`, `QK_ERR_INVALID_ARG`.
///
/// Thread safety: thread-safe.
///
/// # Safety
/// `addrs` is NULL or NUL-terminated; `secret` is NULL or points to
/// `secret_len` readable bytes; `client_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_net_client_new(
    addrs: *const c_char,
    cluster_id: u64,
    secret: *const u8,
    secret_len: usize,
    timeout_ns: u64,
    client_out: *mut *mut qk_net_client,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let addrs = parse_addrs(unsafe { c_str(addrs, "addrs") }?)?;
        let secret = unsafe { arg_slice(secret, secret_len, "secret") }?;
        let out = unsafe { Out::new(client_out, "client_out") }?;
        let mut config = ClientConfig::new(addrs, cluster_id, secret.to_vec());
        if timeout_ns != 0 {
            config.timeout = Duration::from_nanos(timeout_ns);
            config.attempt_timeout = config.attempt_timeout.min(config.timeout);
        }
        hand_out(out, qk_net_client(Mutex::new(Client::new(config)?)));
        Ok(())
    })
}

/// Frees a client. NULL is a no-op.
///
/// Thread safety: needs the client to itself.
///
/// # Safety
/// `client` is NULL or live and not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_net_client_free(client: *mut qk_net_client) {
    catch_or((), || unsafe { free_boxed(client) })
}

/// Replicates `command` and stores the state machine's result in
/// `*result_out` (free it with `qk_bytes_free()`), once the command is
/// decided and applied. An error after the command was sent means it may
/// or may not have been applied.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` (the state machine
/// refused the command: its message is the error's);
/// `QK_ERR_BACKEND_UNAVAILABLE` (no leader answered within the timeout);
/// `QK_ERR_CORRUPT` (the cluster runs another kind of state machine).
///
/// Thread safety: may run concurrently with any call on the client except
/// its free (calls take turns).
///
/// # Safety
/// `client` is NULL or live; `command` is NULL (with `len` 0) or points to
/// `command_len` readable bytes; `result_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_net_client_propose(
    client: *const qk_net_client,
    command: *const u8,
    command_len: usize,
    result_out: *mut qk_bytes,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (c, cmd, out) = unsafe {
            (
                arg_ref(client, "client")?,
                arg_slice(command, command_len, "command")?,
                Out::new(result_out, "result_out")?,
            )
        };
        let mut c = c.0.lock().unwrap_or_else(|e| e.into_inner());
        let r = hosted::propose(&mut c, cmd)?;
        out.set(qk_bytes::from_vec(r));
        Ok(())
    })
}

/// Answers `query` from the state on the leader, under its read lease (a
/// linearizable read that is not logged); stores the answer in
/// `*result_out` (free it with `qk_bytes_free()`).
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` (the query callback
/// refused it, or there is none); `QK_ERR_BACKEND_UNAVAILABLE`.
///
/// Thread safety: as `qk_net_client_propose()`.
///
/// # Safety
/// As `qk_net_client_propose()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_net_client_read(
    client: *const qk_net_client,
    query: *const u8,
    query_len: usize,
    result_out: *mut qk_bytes,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let (c, q, out) = unsafe {
            (
                arg_ref(client, "client")?,
                arg_slice(query, query_len, "query")?,
                Out::new(result_out, "result_out")?,
            )
        };
        let mut c = c.0.lock().unwrap_or_else(|e| e.into_inner());
        out.set(qk_bytes::from_vec(c.read(q)?));
        Ok(())
    })
}
