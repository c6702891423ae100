//! `qk_txn_*`: two-phase commit coordinators and participants as sans-IO
//! handles, the byte encoding of their messages, and an in-process
//! simulation of two-phase commit and Paxos Commit under crashes.
//!
//! Messages cross the ABI as bytes (`src/txn/wire.rs`); times are u64
//! nanoseconds of a monotonic clock the caller owns. A machine's records
//! live in memory inside its handle; `qk_txn_*_restart()` recovers from
//! them as after a crash.

use super::args::{
    Out, arg_flag, arg_mut, arg_ref, arg_slice, arg_slice_mut, free_boxed, hand_out,
};
use super::boundary::qk_error;
use super::boundary::{Failure, FfiResult, boundary, catch_or};
use super::status::{QK_ERR_BUFFER_TOO_SMALL, qk_status};
use crate::sim::txn::{CommitSim, Protocol, SimConfig};
use crate::txn::{Coordinator, MemoryTxnStorage, Output, Participant, TxnConfig, wire};

/// `qk_txn_output.kind`: the machine persisted `records` records; the
/// messages after it may now be sent.
pub const QK_TXN_OUTPUT_PERSISTED: u32 = 1;
/// `qk_txn_output.kind`: send the `message_len` bytes written to the
/// buffer to process `to`.
pub const QK_TXN_OUTPUT_SEND: u32 = 2;
/// `qk_txn_output.kind`: a participant asks its application for a vote on
/// `txn` (answer with `qk_txn_participant_vote()`).
pub const QK_TXN_OUTPUT_VOTE_REQUESTED: u32 = 3;
/// `qk_txn_output.kind`: `txn` is decided; `commit` says how.
pub const QK_TXN_OUTPUT_OUTCOME: u32 = 4;

/// Transaction states (`qk_txn_participant_state()`, `qk_txn_sim_state()`):
/// never heard of.
pub const QK_TXN_UNKNOWN: u32 = 0;
/// Asked to prepare, not voted yet.
pub const QK_TXN_AWAITING_VOTE: u32 = 1;
/// Voted yes, outcome unknown (in doubt).
pub const QK_TXN_PREPARED: u32 = 2;
/// Committed.
pub const QK_TXN_COMMITTED: u32 = 3;
/// Aborted.
pub const QK_TXN_ABORTED: u32 = 4;

/// `qk_txn_coordinator_decision()`: not decided yet.
pub const QK_TXN_UNDECIDED: i32 = -1;

/// `qk_txn_sim_new()` protocol: two-phase commit.
pub const QK_TXN_PROTOCOL_2PC: u32 = 0;
/// `qk_txn_sim_new()` protocol: Paxos Commit.
pub const QK_TXN_PROTOCOL_PAXOS_COMMIT: u32 = 1;

/// One output of a coordinator or participant (see `QK_TXN_OUTPUT_*`);
/// fields that do not apply to `kind` are 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct qk_txn_output {
    /// One of `QK_TXN_OUTPUT_*`.
    pub kind: u32,
    /// SEND: the receiver.
    pub to: u32,
    /// VOTE_REQUESTED, OUTCOME, SEND: the transaction.
    pub txn: u64,
    /// PERSISTED: how many records.
    pub records: u32,
    /// OUTCOME: commit (true) or abort (false).
    pub commit: u8,
    /// SEND: how many bytes of the message were written to the buffer.
    pub message_len: usize,
}

/// Timing of a coordinator or participant, in nanoseconds.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct qk_txn_config {
    /// A coordinator aborts a transaction without all votes after this
    /// long; a participant in doubt starts asking after it.
    pub vote_timeout_ns: u64,
    /// How often unanswered requests are repeated.
    pub retry_interval_ns: u64,
    /// Whether a participant in doubt also asks its peers.
    pub cooperative: u8,
}

impl qk_txn_config {
    fn to_core(self) -> FfiResult<TxnConfig> {
        let c = self;
        Ok(TxnConfig {
            vote_timeout: c.vote_timeout_ns,
            retry_interval: c.retry_interval_ns,
            cooperative: arg_flag(c.cooperative, "config.cooperative")?,
        })
    }
}

/// A two-phase commit coordinator (docs/transactions.md).
///
/// Thread safety: none inside; calls on one handle must not overlap.
/// Create with `qk_txn_coordinator_new()`, destroy with
/// `qk_txn_coordinator_free()`.
#[allow(non_camel_case_types)]
pub struct qk_txn_coordinator {
    id: u32,
    config: TxnConfig,
    machine: Option<Coordinator<MemoryTxnStorage>>,
}

/// A two-phase commit participant.
///
/// Thread safety: none inside; calls on one handle must not overlap.
/// Create with `qk_txn_participant_new()`, destroy with
/// `qk_txn_participant_free()`.
#[allow(non_camel_case_types)]
pub struct qk_txn_participant {
    id: u32,
    config: TxnConfig,
    machine: Option<Participant<MemoryTxnStorage>>,
}

fn gone() -> Failure {
    Failure::invalid("the machine failed to restart; free it")
}

/// Writes the next output into `*output_out` and, for SEND, the message
/// bytes into `buf`; a message larger than `buf_len` is left queued.
fn poll_into(
    peeked: Option<&Output>,
    buf: &mut [u8],
    output_out: Out<qk_txn_output>,
    has_output_out: Out<u8>,
) -> FfiResult<bool> {
    let Some(o) = peeked else {
        has_output_out.set_flag(false);
        return Ok(false);
    };
    let mut c = qk_txn_output::default();
    match o {
        Output::Persisted { records } => {
            c.kind = QK_TXN_OUTPUT_PERSISTED;
            c.records = *records as u32;
        }
        Output::Send { to, message } => {
            let bytes = wire::encode(message);
            if bytes.len() > buf.len() {
                return Err(Failure::new(
                    QK_ERR_BUFFER_TOO_SMALL,
                    format!(
                        "the message needs {} bytes, buf_len is {}",
                        bytes.len(),
                        buf.len()
                    ),
                ));
            }
            buf[..bytes.len()].copy_from_slice(&bytes);
            c.kind = QK_TXN_OUTPUT_SEND;
            c.to = *to;
            c.txn = message.txn();
            c.message_len = bytes.len();
        }
        Output::VoteRequested { txn } => {
            c.kind = QK_TXN_OUTPUT_VOTE_REQUESTED;
            c.txn = *txn;
        }
        Output::Outcome { txn, commit } => {
            c.kind = QK_TXN_OUTPUT_OUTCOME;
            c.txn = *txn;
            c.commit = u8::from(*commit);
        }
    }
    output_out.set(c);
    has_output_out.set_flag(true);
    Ok(true)
}

/// Creates a coordinator `id` with `config` and stores it in
/// `*coordinator_out`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` if a time in `config` is 0.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `config` is NULL or readable; `coordinator_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_new(
    id: u32,
    config: *const qk_txn_config,
    now_ns: u64,
    coordinator_out: *mut *mut qk_txn_coordinator,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let config = unsafe { arg_ref(config, "config") }?.to_core()?;
        let out = unsafe { Out::new(coordinator_out, "coordinator_out") }?;
        let m = Coordinator::new(id, config, MemoryTxnStorage::new(), now_ns)?;
        hand_out(
            out,
            qk_txn_coordinator {
                id,
                config,
                machine: Some(m),
            },
        );
        Ok(())
    })
}

/// Frees a coordinator. NULL is a no-op.
///
/// Thread safety: needs the `qk_txn_coordinator` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `coordinator` is NULL or a live coordinator that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_free(coordinator: *mut qk_txn_coordinator) {
    catch_or((), || unsafe { free_boxed(coordinator) })
}

/// Begins `txn` among the `participants_len` participants at
/// `participants`: records it, then queues a Prepare to each (poll them).
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for an empty list,
/// duplicate ids, the coordinator's own id, or a transaction id in use.
///
/// Thread safety: none inside; no other call on the same `qk_txn_coordinator` may overlap.
///
/// # Safety
/// `coordinator` is NULL or live; `participants` is NULL or points to
/// `participants_len` ids.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_begin(
    coordinator: *mut qk_txn_coordinator,
    txn: u64,
    participants: *const u32,
    participants_len: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_mut(coordinator, "coordinator") }?;
        let ps = unsafe { arg_slice(participants, participants_len, "participants") }?;
        let m = c.machine.as_mut().ok_or_else(gone)?;
        Ok(m.begin(txn, ps.to_vec(), now_ns)?)
    })
}

/// Hands the coordinator the message of `message_len` bytes at `message`
/// from process `from`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_CORRUPT` or
/// `QK_ERR_UNSUPPORTED_VERSION` for bytes that are not a message (nothing
/// changes).
///
/// Thread safety: none inside; no other call on the same `qk_txn_coordinator` may overlap.
///
/// # Safety
/// `coordinator` is NULL or live; `message` is NULL or points to
/// `message_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_step(
    coordinator: *mut qk_txn_coordinator,
    from: u32,
    message: *const u8,
    message_len: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_mut(coordinator, "coordinator") }?;
        let bytes = unsafe { arg_slice(message, message_len, "message") }?;
        let msg = wire::decode(bytes)?;
        let m = c.machine.as_mut().ok_or_else(gone)?;
        Ok(m.step(from, msg, now_ns)?)
    })
}

/// Advances the coordinator's time to `now_ns`: aborts transactions whose
/// vote timeout passed and repeats unanswered Prepares.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_coordinator` may overlap.
///
/// # Safety
/// `coordinator` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_tick(
    coordinator: *mut qk_txn_coordinator,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_mut(coordinator, "coordinator") }?;
        let m = c.machine.as_mut().ok_or_else(gone)?;
        Ok(m.tick(now_ns)?)
    })
}

/// Takes the coordinator's next output: `*has_output_out` is false when
/// there is none; otherwise `*output_out` describes it and, for
/// `QK_TXN_OUTPUT_SEND`, the message's bytes are in `buf`. 64 bytes plus 4
/// per participant always suffice.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_BUFFER_TOO_SMALL` if the message does
/// not fit in `buf_len` bytes (the output stays queued; the message says
/// the size needed).
///
/// Thread safety: none inside; no other call on the same `qk_txn_coordinator` may overlap.
///
/// # Safety
/// `coordinator` is NULL or live; `buf` is NULL or points to `buf_len`
/// writable bytes; the out-parameters are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_poll(
    coordinator: *mut qk_txn_coordinator,
    buf: *mut u8,
    buf_len: usize,
    output_out: *mut qk_txn_output,
    has_output_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_mut(coordinator, "coordinator") }?;
        let buf = unsafe { arg_slice_mut(buf, buf_len, "buf") }?;
        let out = unsafe { Out::new(output_out, "output_out") }?;
        let has = unsafe { Out::new(has_output_out, "has_output_out") }?;
        let m = c.machine.as_mut().ok_or_else(gone)?;
        if poll_into(m.peek(), buf, out, has)? {
            m.poll();
        }
        Ok(())
    })
}

/// Stores the decision on `txn` in `*decision_out`: 1 commit, 0 abort,
/// `QK_TXN_UNDECIDED` (-1) while votes are awaited.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for a transaction this
/// coordinator does not know.
///
/// Thread safety: none inside; no other call on the same `qk_txn_coordinator` may overlap.
///
/// # Safety
/// `coordinator` is NULL or live; `decision_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_decision(
    coordinator: *const qk_txn_coordinator,
    txn: u64,
    decision_out: *mut i32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_ref(coordinator, "coordinator") }?;
        let out = unsafe { Out::new(decision_out, "decision_out") }?;
        let m = c.machine.as_ref().ok_or_else(gone)?;
        out.set(match m.decision(txn)? {
            None => QK_TXN_UNDECIDED,
            Some(c) => c as i32,
        });
        Ok(())
    })
}

/// Stores in `*deadline_out` the earliest time `qk_txn_coordinator_tick()`
/// has work to do, and in `*has_deadline_out` whether there is one.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_coordinator` may overlap.
///
/// # Safety
/// `coordinator` is NULL or live; the out-parameters are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_next_deadline(
    coordinator: *const qk_txn_coordinator,
    deadline_out: *mut u64,
    has_deadline_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_ref(coordinator, "coordinator") }?;
        let out = unsafe { Out::new(deadline_out, "deadline_out") }?;
        let has = unsafe { Out::new(has_deadline_out, "has_deadline_out") }?;
        let d = c.machine.as_ref().ok_or_else(gone)?.next_deadline();
        out.set(d.unwrap_or(0));
        has.set_flag(d.is_some());
        Ok(())
    })
}

/// Crashes and restarts the coordinator from its records at `now_ns`:
/// queued outputs are lost, undecided transactions are aborted.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_coordinator` may overlap.
///
/// # Safety
/// `coordinator` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_coordinator_restart(
    coordinator: *mut qk_txn_coordinator,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let c = unsafe { arg_mut(coordinator, "coordinator") }?;
        let mut disk = c.machine.take().ok_or_else(gone)?.into_storage();
        disk.crash();
        c.machine = Some(Coordinator::new(c.id, c.config, disk, now_ns)?);
        Ok(())
    })
}

/// Creates a participant `id` with `config` and stores it in
/// `*participant_out`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` if a time in `config` is 0.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `config` is NULL or readable; `participant_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_new(
    id: u32,
    config: *const qk_txn_config,
    now_ns: u64,
    participant_out: *mut *mut qk_txn_participant,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let config = unsafe { arg_ref(config, "config") }?.to_core()?;
        let out = unsafe { Out::new(participant_out, "participant_out") }?;
        let m = Participant::new(id, config, MemoryTxnStorage::new(), now_ns)?;
        hand_out(
            out,
            qk_txn_participant {
                id,
                config,
                machine: Some(m),
            },
        );
        Ok(())
    })
}

/// Frees a participant. NULL is a no-op.
///
/// Thread safety: needs the `qk_txn_participant` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `participant` is NULL or a live participant that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_free(participant: *mut qk_txn_participant) {
    catch_or((), || unsafe { free_boxed(participant) })
}

/// Hands the participant the message of `message_len` bytes at `message`
/// from process `from`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_CORRUPT` or
/// `QK_ERR_UNSUPPORTED_VERSION` for bytes that are not a message.
///
/// Thread safety: none inside; no other call on the same `qk_txn_participant` may overlap.
///
/// # Safety
/// As `qk_txn_coordinator_step()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_step(
    participant: *mut qk_txn_participant,
    from: u32,
    message: *const u8,
    message_len: usize,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let p = unsafe { arg_mut(participant, "participant") }?;
        let bytes = unsafe { arg_slice(message, message_len, "message") }?;
        let msg = wire::decode(bytes)?;
        let m = p.machine.as_mut().ok_or_else(gone)?;
        Ok(m.step(from, msg, now_ns)?)
    })
}

/// Votes on `txn`, which must be awaiting a vote (after a
/// `QK_TXN_OUTPUT_VOTE_REQUESTED`). Yes records the vote and queues it;
/// the participant is then in doubt until it learns the outcome. No
/// aborts at once.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` if `txn` is not
/// awaiting a vote.
///
/// Thread safety: none inside; no other call on the same `qk_txn_participant` may overlap.
///
/// # Safety
/// `participant` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_vote(
    participant: *mut qk_txn_participant,
    txn: u64,
    yes: u8,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let p = unsafe { arg_mut(participant, "participant") }?;
        let m = p.machine.as_mut().ok_or_else(gone)?;
        Ok(m.vote(txn, arg_flag(yes, "yes")?, now_ns)?)
    })
}

/// Advances the participant's time to `now_ns`: transactions in doubt ask
/// for the outcome.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_participant` may overlap.
///
/// # Safety
/// `participant` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_tick(
    participant: *mut qk_txn_participant,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let p = unsafe { arg_mut(participant, "participant") }?;
        let m = p.machine.as_mut().ok_or_else(gone)?;
        Ok(m.tick(now_ns)?)
    })
}

/// Takes the participant's next output, as `qk_txn_coordinator_poll()`.
///
/// Errors: `QK_ERR_NULL_ARG`, `QK_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_participant` may overlap.
///
/// # Safety
/// As `qk_txn_coordinator_poll()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_poll(
    participant: *mut qk_txn_participant,
    buf: *mut u8,
    buf_len: usize,
    output_out: *mut qk_txn_output,
    has_output_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let p = unsafe { arg_mut(participant, "participant") }?;
        let buf = unsafe { arg_slice_mut(buf, buf_len, "buf") }?;
        let out = unsafe { Out::new(output_out, "output_out") }?;
        let has = unsafe { Out::new(has_output_out, "has_output_out") }?;
        let m = p.machine.as_mut().ok_or_else(gone)?;
        if poll_into(m.peek(), buf, out, has)? {
            m.poll();
        }
        Ok(())
    })
}

/// Stores where the participant stands on `txn` in `*state_out` (one of
/// `QK_TXN_UNKNOWN` .. `QK_TXN_ABORTED`).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_participant` may overlap.
///
/// # Safety
/// `participant` is NULL or live; `state_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_state(
    participant: *const qk_txn_participant,
    txn: u64,
    state_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let p = unsafe { arg_ref(participant, "participant") }?;
        let out = unsafe { Out::new(state_out, "state_out") }?;
        out.set(p.machine.as_ref().ok_or_else(gone)?.state(txn).code());
        Ok(())
    })
}

/// Stores in `*deadline_out` the earliest time `qk_txn_participant_tick()`
/// has work to do, and in `*has_deadline_out` whether there is one.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_participant` may overlap.
///
/// # Safety
/// `participant` is NULL or live; the out-parameters are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_next_deadline(
    participant: *const qk_txn_participant,
    deadline_out: *mut u64,
    has_deadline_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let p = unsafe { arg_ref(participant, "participant") }?;
        let out = unsafe { Out::new(deadline_out, "deadline_out") }?;
        let has = unsafe { Out::new(has_deadline_out, "has_deadline_out") }?;
        let d = p.machine.as_ref().ok_or_else(gone)?.next_deadline();
        out.set(d.unwrap_or(0));
        has.set_flag(d.is_some());
        Ok(())
    })
}

/// Crashes and restarts the participant from its records at `now_ns`:
/// queued outputs and unvoted requests are lost; a yes vote without a
/// known outcome is in doubt again.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_participant` may overlap.
///
/// # Safety
/// `participant` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_participant_restart(
    participant: *mut qk_txn_participant,
    now_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let p = unsafe { arg_mut(participant, "participant") }?;
        let mut disk = p.machine.take().ok_or_else(gone)?.into_storage();
        disk.crash();
        p.machine = Some(Participant::new(p.id, p.config, disk, now_ns)?);
        Ok(())
    })
}

/// An in-process simulation of one coordinator (process 0), participants
/// 1..=n and, for Paxos Commit, acceptors n+1..=n+2F+1, on a seeded
/// network.
///
/// Thread safety: none inside. Create with `qk_txn_sim_new()`, destroy
/// with `qk_txn_sim_free()`.
#[allow(non_camel_case_types)]
pub struct qk_txn_sim(CommitSim);

/// What a simulation injected and decided.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct qk_txn_stats {
    /// Process crashes.
    pub crashes: u64,
    /// Process restarts.
    pub restarts: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages lost (at random or with a crashed process).
    pub lost: u64,
    /// Messages duplicated.
    pub duplicated: u64,
    /// Transactions committed.
    pub committed: u64,
    /// Transactions aborted.
    pub aborted: u64,
}

/// Creates a simulation of `protocol` (`QK_TXN_PROTOCOL_2PC` or
/// `QK_TXN_PROTOCOL_PAXOS_COMMIT`, which uses 2`f`+1 acceptors; `f` is
/// ignored for 2PC) with `participants` participants on a reliable network
/// with 1–5 ms delays, and stores it in `*sim_out`.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for an unknown
/// protocol, participants outside 1..=64 or `f` above 3.
///
/// Thread safety: thread-safe (uses no shared handle).
///
/// # Safety
/// `sim_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_new(
    protocol: u32,
    participants: usize,
    f: usize,
    seed: u64,
    sim_out: *mut *mut qk_txn_sim,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let out = unsafe { Out::new(sim_out, "sim_out") }?;
        let protocol = match protocol {
            QK_TXN_PROTOCOL_2PC => Protocol::TwoPhaseCommit,
            QK_TXN_PROTOCOL_PAXOS_COMMIT => Protocol::PaxosCommit { f },
            p => return Err(Failure::invalid(format!("unknown protocol {p}"))),
        };
        let sim = CommitSim::new(SimConfig::new(protocol, participants), seed)?;
        hand_out(out, qk_txn_sim(sim));
        Ok(())
    })
}

/// Frees a simulation. NULL is a no-op.
///
/// Thread safety: needs the `qk_txn_sim` to itself: no other call on it may overlap or follow.
///
/// # Safety
/// `sim` is NULL or a live simulation that is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_free(sim: *mut qk_txn_sim) {
    catch_or((), || unsafe { free_boxed(sim) })
}

/// Begins `txn`; participant `i` + 1 will vote `votes[i]` (one per
/// participant).
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for the wrong number of
/// votes, a transaction id in use, or a crashed coordinator.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live; `votes` is NULL or points to `votes_len` flags (0 or 1; anything else is QK_ERR_INVALID_ARG).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_begin(
    sim: *mut qk_txn_sim,
    txn: u64,
    votes: *const u8,
    votes_len: usize,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_mut(sim, "sim") }?;
        let votes = unsafe { arg_slice(votes, votes_len, "votes") }?;
        let votes = votes
            .iter()
            .map(|&v| arg_flag(v, "votes[i]"))
            .collect::<FfiResult<Vec<bool>>>()?;
        Ok(s.0.begin(txn, &votes)?)
    })
}

/// Crashes process `id` (its synced records survive).
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for an unknown or
/// crashed process.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_crash(
    sim: *mut qk_txn_sim,
    id: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_mut(sim, "sim") }?;
        Ok(s.0.crash(id)?)
    })
}

/// Restarts crashed process `id` from its records.
///
/// Errors: `QK_ERR_NULL_ARG`; `QK_ERR_INVALID_ARG` for an unknown or
/// running process.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_restart(
    sim: *mut qk_txn_sim,
    id: u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_mut(sim, "sim") }?;
        Ok(s.0.restart(id)?)
    })
}

/// Crash the coordinator for good the moment every participant of a
/// transaction has voted yes (the classic blocking case of 2PC).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_crash_coordinator_after_votes(
    sim: *mut qk_txn_sim,
    on: u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_mut(sim, "sim") }?;
        s.0.crash_coordinator_after_votes(arg_flag(on, "on")?);
        Ok(())
    })
}

/// Runs the simulation for `duration_ns` of simulated time.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_run(
    sim: *mut qk_txn_sim,
    duration_ns: u64,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_mut(sim, "sim") }?;
        s.0.run_for(duration_ns);
        Ok(())
    })
}

/// Stores where participant `id` stands on `txn` in `*state_out`
/// (`QK_TXN_UNKNOWN` for a crashed process or a non-participant).
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live; `state_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_state(
    sim: *const qk_txn_sim,
    id: u32,
    txn: u64,
    state_out: *mut u32,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_ref(sim, "sim") }?;
        let out = unsafe { Out::new(state_out, "state_out") }?;
        out.set(s.0.state(id, txn).code());
        Ok(())
    })
}

/// Stores in `*safe_out` whether every safety property (atomicity,
/// validity, Paxos agreement) held so far in the run.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live; `safe_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_check(
    sim: *const qk_txn_sim,
    safe_out: *mut u8,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_ref(sim, "sim") }?;
        let out = unsafe { Out::new(safe_out, "safe_out") }?;
        out.set_flag(s.0.check().is_ok());
        Ok(())
    })
}

/// Stores what the simulation injected and decided in `*stats_out`.
///
/// Errors: `QK_ERR_NULL_ARG`.
///
/// Thread safety: none inside; no other call on the same `qk_txn_sim` may overlap.
///
/// # Safety
/// `sim` is NULL or live; `stats_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qk_txn_sim_stats(
    sim: *const qk_txn_sim,
    stats_out: *mut qk_txn_stats,
    err: *mut qk_error,
) -> qk_status {
    boundary(err, || {
        let s = unsafe { arg_ref(sim, "sim") }?;
        let out = unsafe { Out::new(stats_out, "stats_out") }?;
        let st = s.0.stats();
        let (committed, aborted) = s.0.tally();
        out.set(qk_txn_stats {
            crashes: st.crashes,
            restarts: st.restarts,
            sent: st.net.sent,
            delivered: st.net.delivered,
            lost: st.net.lost + st.to_crashed,
            duplicated: st.net.duplicated,
            committed,
            aborted,
        });
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;
    use crate::txn::TxnState;

    #[test]
    fn state_codes_match() {
        assert_eq!(TxnState::Unknown.code(), QK_TXN_UNKNOWN);
        assert_eq!(TxnState::AwaitingVote.code(), QK_TXN_AWAITING_VOTE);
        assert_eq!(TxnState::Prepared.code(), QK_TXN_PREPARED);
        assert_eq!(TxnState::Committed.code(), QK_TXN_COMMITTED);
        assert_eq!(TxnState::Aborted.code(), QK_TXN_ABORTED);
    }

    #[test]
    fn garbage_bytes_are_corrupt() {
        let cfg = qk_txn_config {
            vote_timeout_ns: 10,
            retry_interval_ns: 5,
            cooperative: 1,
        };
        let mut c = std::ptr::null_mut();
        unsafe {
            assert_eq!(
                qk_txn_coordinator_new(0, &cfg, 0, &mut c, std::ptr::null_mut()),
                QK_OK
            );
            let junk = [1u8, 200, 0];
            assert_eq!(
                qk_txn_coordinator_step(c, 1, junk.as_ptr(), junk.len(), 0, std::ptr::null_mut()),
                QK_ERR_CORRUPT
            );
            qk_txn_coordinator_free(c);
        }
    }
}
