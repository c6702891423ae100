//! The client of a replica cluster: finds the leader, follows redirects,
//! and retries a request (with the same session and request id, so the
//! cluster applies it once) until it is answered or the timeout passes.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::auth::{Identity, Role, handshake};
use super::frame::{DEFAULT_MAX_FRAME, io_error, read_frame, write_frame};
use super::proto::{AdminOp, ErrorCode, Request, Response, Status};
use crate::error::{Error, Result};

/// How a client reaches its cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Addresses of the replicas (any subset that includes a live one).
    pub addrs: Vec<SocketAddr>,
    /// The cluster's id.
    pub cluster_id: u64,
    /// The cluster secret.
    pub secret: Vec<u8>,
    /// How long one call may take in all, retries included.
    pub timeout: Duration,
    /// How long one attempt waits for its answer before trying elsewhere.
    pub attempt_timeout: Duration,
}

impl ClientConfig {
    /// Defaults: 10 s per call, 2 s per attempt.
    pub fn new(addrs: Vec<SocketAddr>, cluster_id: u64, secret: impl Into<Vec<u8>>) -> Self {
        ClientConfig {
            addrs,
            cluster_id,
            secret: secret.into(),
            timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(2),
        }
    }
}

/// Parses a replica list: `HOST:PORT` entries (or `ID=HOST:PORT`, the
/// form `--peers` takes; the id is ignored) separated by commas.
///
/// Errors: `InvalidArgument` for an empty list or an entry that does not
/// resolve.
pub fn parse_addrs(list: &str) -> Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr = item.split_once('=').map_or(item, |(_, a)| a);
        let resolved = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .ok()
            .and_then(|mut it| it.next())
            .ok_or_else(|| {
                Error::invalid(format!("net client: {item:?} is not a HOST:PORT address"))
            })?;
        out.push(resolved);
    }
    if out.is_empty() {
        return Err(Error::invalid("net client: no replica address"));
    }
    Ok(out)
}

/// A connection to a cluster, one call at a time (use one client per
/// thread). Each client is its own session: its request ids increase.
pub struct Client {
    config: ClientConfig,
    identity: Identity,
    conn: Option<(SocketAddr, TcpStream)>,
    /// The address to try next (a redirect's, else the next in turn).
    target: SocketAddr,
    turn: usize,
    session: u64,
    next_request: u64,
}

impl Client {
    /// A client of the cluster at `config.addrs`. No connection is made
    /// until the first call.
    ///
    /// Errors: `InvalidArgument` for no address or a short secret.
    pub fn new(config: ClientConfig) -> Result<Client> {
        if config.addrs.is_empty() {
            return Err(Error::invalid("net client: no replica address"));
        }
        let identity = Identity {
            cluster_id: config.cluster_id,
            role: Role::Client,
            secret: config.secret.clone(),
        };
        identity.validate()?;
        let session = session_id();
        Ok(Client {
            target: config.addrs[0],
            config,
            identity,
            conn: None,
            turn: 0,
            session,
            next_request: 1,
        })
    }

    /// Changes how long one call may take in all.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.config.timeout = timeout;
    }

    /// Replicates `command` and returns the state machine's result. An
    /// error after a send means the command may or may not have been
    /// applied (a retried call is applied once within one client).
    ///
    /// Errors: `BackendUnavailable` when no leader answered in time;
    /// `InvalidArgument` when the cluster refused the request.
    pub fn propose(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        self.propose_waiting(command, Some(Duration::ZERO))
    }

    /// Like [`propose`](Self::propose) for a command whose answer may come
    /// only after a wait in the state machine (a queued lease request): the
    /// call may last the timeout plus `wait` (`None`: without end) while a
    /// leader holds the request, but still fails within the timeout when no
    /// replica can be reached.
    pub fn propose_waiting(&mut self, command: &[u8], wait: Option<Duration>) -> Result<Vec<u8>> {
        let request = self.next_request;
        self.next_request += 1;
        let req = Request::Propose {
            client: self.session,
            request,
            command: command.to_vec(),
        };
        self.call(&req, request, wait)
    }

    /// Answers `query` on the leader under its read lease (linearizable).
    pub fn read(&mut self, query: &[u8]) -> Result<Vec<u8>> {
        let request = self.next_request;
        self.next_request += 1;
        self.call(
            &Request::Read {
                request,
                query: query.to_vec(),
            },
            request,
            Some(Duration::ZERO),
        )
    }

    /// Sends an administrative request to the leader (following
    /// redirects) and returns its answer: a membership change or a
    /// leadership transfer (see [`AdminOp`]).
    ///
    /// Errors: `BackendUnavailable` when no leader answered in time;
    /// `InvalidArgument` when the cluster refused it (with the reason).
    pub fn admin(&mut self, op: AdminOp) -> Result<Vec<u8>> {
        let request = self.next_request;
        self.next_request += 1;
        self.call(
            &Request::Admin { request, op },
            request,
            Some(Duration::ZERO),
        )
    }

    /// Sends an administrative request to the replica at `addr` itself (no
    /// redirect): [`AdminOp::AddPeer`] and [`AdminOp::Membership`] are
    /// answered by any replica.
    pub fn admin_at(&mut self, addr: SocketAddr, op: AdminOp) -> Result<Vec<u8>> {
        let request = self.next_request;
        self.next_request += 1;
        let deadline = Instant::now() + self.config.attempt_timeout.min(self.config.timeout);
        match self.attempt(addr, &Request::Admin { request, op }, request, deadline)? {
            Some(Response::Ok { result, .. }) => Ok(result),
            Some(Response::Error { message, .. }) => Err(Error::invalid(format!(
                "net: replica at {addr} refused the request: {message}"
            ))),
            None => Err(Error::unavailable(format!(
                "net client: {addr} did not answer in time"
            ))),
            Some(other) => Err(Error::invalid(format!(
                "net: replica at {addr} does not answer this itself: {other:?}"
            ))),
        }
    }

    /// The status of the replica at `addr` (no redirect).
    pub fn status_of(&mut self, addr: SocketAddr) -> Result<Status> {
        let request = self.next_request;
        self.next_request += 1;
        let deadline = Instant::now() + self.config.attempt_timeout.min(self.config.timeout);
        match self.attempt(addr, &Request::Status { request }, request, deadline)? {
            Some(Response::Ok { result, .. }) => Status::decode(&result),
            None => Err(Error::unavailable(format!(
                "net client: {addr} did not answer in time"
            ))),
            other => Err(Error::corrupt(format!(
                "net client: unexpected answer to status: {other:?}"
            ))),
        }
    }

    fn call(&mut self, req: &Request, request: u64, wait: Option<Duration>) -> Result<Vec<u8>> {
        let start = Instant::now();
        let deadline = wait.and_then(|w| start.checked_add(self.config.timeout.saturating_add(w)));
        let deadline =
            deadline.unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600));
        // The last time a replica held the request without refusing it: a
        // call with no such contact for the timeout gives up even when the
        // answer may legitimately take longer.
        let mut contact = start;
        let mut backoff = Duration::from_millis(10);
        let mut last = String::from("no replica answered");
        loop {
            let now = Instant::now();
            if now >= deadline || now.duration_since(contact) >= self.config.timeout {
                return Err(Error::unavailable(format!(
                    "net client: no leader answered within {:?} ({last})",
                    self.config.timeout
                )));
            }
            let target = self.target;
            let until = deadline.min(now + self.config.attempt_timeout);
            match self.attempt(target, req, request, until) {
                Ok(Some(Response::Ok { result, .. })) => return Ok(result),
                Ok(Some(Response::Redirect { leader, addr, .. })) => {
                    last = format!("redirected to replica {leader}");
                    match addr.parse() {
                        Ok(a) if a != target => {
                            self.target = a;
                            continue;
                        }
                        _ => self.rotate(),
                    }
                }
                Ok(Some(Response::Error {
                    code: ErrorCode::Invalid | ErrorCode::Rejected,
                    message,
                    ..
                })) => {
                    return Err(Error::invalid(format!(
                        "net: the cluster refused the request: {message}"
                    )));
                }
                Ok(Some(Response::Error { message, .. })) => {
                    last = message;
                    self.rotate();
                }
                Ok(None) => {
                    // Held by a live replica that has not answered yet (a
                    // queued request): ask again, same request id.
                    contact = Instant::now();
                    continue;
                }
                Err(e) => {
                    last = format!("{target}: {e}");
                    self.conn = None;
                    self.rotate();
                }
            }
            std::thread::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())));
            // Short: during an election a retry finds the new leader soon after
            // it wins, and a refusal costs one loopback or LAN round trip.
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
    }

    fn rotate(&mut self) {
        self.turn = (self.turn + 1) % self.config.addrs.len();
        self.target = self.config.addrs[self.turn];
    }

    /// Sends `req` to `addr` and waits for its answer until `until`;
    /// `None` when the replica took the request and did not answer in time.
    fn attempt(
        &mut self,
        addr: SocketAddr,
        req: &Request,
        request: u64,
        until: Instant,
    ) -> Result<Option<Response>> {
        let io = |e: std::io::Error| io_error("client", e);
        if self.conn.as_ref().is_none_or(|(a, _)| *a != addr) {
            self.conn = None;
            let wait = until
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let mut s = TcpStream::connect_timeout(&addr, wait).map_err(io)?;
            s.set_nodelay(true).map_err(io)?;
            s.set_read_timeout(Some(wait)).map_err(io)?;
            s.set_write_timeout(Some(wait)).map_err(io)?;
            handshake(&mut s, &self.identity)?;
            self.conn = Some((addr, s));
        }
        let (_, s) = self.conn.as_mut().expect("connected above");
        let (kind, payload) = req.encode();
        write_frame(s, kind, &payload).map_err(io)?;
        loop {
            let wait = until.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                self.conn = None;
                return Ok(None);
            }
            s.set_read_timeout(Some(wait)).map_err(io)?;
            let frame = match read_frame(s, DEFAULT_MAX_FRAME) {
                Ok(f) => f,
                // A read cut by the timeout (the stream may be mid-frame: drop it).
                Err(_) if Instant::now() + Duration::from_millis(5) >= until => {
                    self.conn = None;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let Some((kind, payload)) = frame else {
                self.conn = None;
                return Err(Error::unavailable(
                    "net client: the replica closed the connection",
                ));
            };
            let resp = Response::decode(kind, &payload)?;
            if resp.request() == request {
                return Ok(Some(resp));
            } // else a late answer to an earlier attempt: skip it
        }
    }
}

/// A session id that no other client picks: random, from the kernel.
fn session_id() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_be_bytes(b) | 1;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)) | 1
}
