//! The handshake that opens every connection: both ends prove that they
//! hold the cluster secret, without sending it, and agree on the cluster.
//!
//! Each side sends `HELLO` (magic, cluster id, role, replica id, a fresh
//! 16-byte nonce), then `AUTH`: HMAC-SHA256 under the secret of the other
//! side's nonce and its own `HELLO`. A side that sees another cluster id, a
//! bad magic or a wrong MAC closes the connection. Fresh nonces on both
//! sides make a recorded handshake useless for a replay. The traffic after
//! it is not encrypted: run over loopback or a private network (or a TLS
//! tunnel) when the link is not trusted.

use std::io::{Read, Write};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::frame::{Reader, read_frame, write_frame};
use crate::error::{Error, Result};

const MAGIC: &[u8; 6] = b"QKNET\x01";
const KIND_HELLO: u8 = 1;
const KIND_AUTH: u8 = 2;
const DOMAIN: &[u8] = b"quorumkit-net-v1";
/// The shortest secret accepted: a few bytes are guessable.
pub const MIN_SECRET_LEN: usize = 16;

/// Who is at an end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A replica, with its id.
    Replica(u32),
    /// A client.
    Client,
}

/// What one side knows of itself for the handshake.
#[derive(Clone)]
pub struct Identity {
    /// The cluster both ends must belong to.
    pub cluster_id: u64,
    /// This end.
    pub role: Role,
    /// The shared secret (at least [`MIN_SECRET_LEN`] bytes).
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cluster_id", &self.cluster_id)
            .field("role", &self.role)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl Identity {
    /// Checks the secret's length.
    pub fn validate(&self) -> Result<()> {
        if self.secret.len() < MIN_SECRET_LEN {
            return Err(Error::invalid(format!(
                "net: the cluster secret must be at least {MIN_SECRET_LEN} bytes, got {}",
                self.secret.len()
            )));
        }
        Ok(())
    }
}

fn hello_payload(me: &Identity, nonce: &[u8; 16]) -> Vec<u8> {
    let mut p = Vec::with_capacity(35);
    p.extend_from_slice(MAGIC);
    p.extend_from_slice(&me.cluster_id.to_be_bytes());
    match me.role {
        Role::Replica(id) => {
            p.push(1);
            p.extend_from_slice(&id.to_be_bytes());
        }
        Role::Client => {
            p.push(2);
            p.extend_from_slice(&0u32.to_be_bytes());
        }
    }
    p.extend_from_slice(nonce);
    p
}

fn mac(secret: &[u8], their_nonce: &[u8; 16], my_hello: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    m.update(DOMAIN);
    m.update(their_nonce);
    m.update(my_hello);
    m
}

/// Runs the handshake on a fresh connection; returns the other end's role.
/// Errors: `Corrupt` (not a quorumkit peer), `InvalidArgument` (another
/// cluster), `NotHolder`-free `BackendUnavailable` for I/O, and
/// `InvalidArgument` for a wrong secret.
pub fn handshake(conn: &mut (impl Read + Write), me: &Identity) -> Result<Role> {
    let nonce = fresh_nonce();
    let my_hello = hello_payload(me, &nonce);
    write_frame(conn, KIND_HELLO, &my_hello).map_err(|e| super::frame::io_error("handshake", e))?;
    let (kind, their_hello) = read_frame(conn, 64)?
        .ok_or_else(|| Error::unavailable("net: the connection closed during the handshake"))?;
    if kind != KIND_HELLO {
        return Err(Error::corrupt("net: the first frame is not a handshake"));
    }
    let mut r = Reader::new(&their_hello);
    if &r.fixed::<6>()? != MAGIC {
        return Err(Error::corrupt(
            "net: not a quorumkit connection (bad magic)",
        ));
    }
    let cluster = r.u64()?;
    let role = match (r.u8()?, r.u32()?) {
        (1, id) => Role::Replica(id),
        (2, _) => Role::Client,
        (k, _) => {
            return Err(Error::corrupt(format!(
                "net: unknown role {k} in the handshake"
            )));
        }
    };
    let their_nonce = r.fixed::<16>()?;
    r.finish()?;
    if cluster != me.cluster_id {
        return Err(Error::invalid(format!(
            "net: the other end belongs to cluster {cluster:#x}, this one to {:#x}",
            me.cluster_id
        )));
    }
    let tag = mac(&me.secret, &their_nonce, &my_hello)
        .finalize()
        .into_bytes();
    write_frame(conn, KIND_AUTH, &tag).map_err(|e| super::frame::io_error("handshake", e))?;
    let (kind, their_tag) = read_frame(conn, 64)?.ok_or_else(|| {
        Error::invalid("net: the other end closed the handshake (wrong cluster secret?)")
    })?;
    if kind != KIND_AUTH {
        return Err(Error::corrupt("net: expected the handshake's AUTH frame"));
    }
    mac(&me.secret, &nonce, &their_hello)
        .verify_slice(&their_tag)
        .map_err(|_| Error::invalid("net: the other end does not hold the cluster secret"))?;
    Ok(role)
}

/// 16 bytes that never repeat: from the kernel's generator, else from a
/// hash of the time, the process and a counter (a nonce needs uniqueness,
/// not secrecy).
fn fresh_nonce() -> [u8; 16] {
    let mut n = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut n))
        .is_ok()
    {
        return n;
    }
    use sha2::Digest;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    n.copy_from_slice(&h.finalize()[..16]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn id(cluster: u64, role: Role, secret: &[u8]) -> Identity {
        Identity {
            cluster_id: cluster,
            role,
            secret: secret.to_vec(),
        }
    }

    fn pair(a: Identity, b: Identity) -> (Result<Role>, Result<Role>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let r = handshake(&mut s, &b);
            drop(s);
            r
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let ra = handshake(&mut c, &a);
        drop(c);
        (ra, t.join().unwrap())
    }

    const S: &[u8] = b"0123456789abcdef-secret";

    #[test]
    fn both_ends_learn_the_other_role() {
        let (a, b) = pair(id(7, Role::Client, S), id(7, Role::Replica(3), S));
        assert_eq!(a.unwrap(), Role::Replica(3));
        assert_eq!(b.unwrap(), Role::Client);
    }

    #[test]
    fn a_wrong_secret_or_cluster_is_refused_by_both_ends() {
        let (a, b) = pair(
            id(7, Role::Client, b"another-secret-of-16"),
            id(7, Role::Replica(1), S),
        );
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
        let (a, b) = pair(id(8, Role::Replica(2), S), id(7, Role::Replica(1), S));
        assert!(matches!(a, Err(Error::InvalidArgument(_))), "{a:?}");
        assert!(matches!(b, Err(Error::InvalidArgument(_))), "{b:?}");
    }

    /// Reads from `input`, writes into `output`: one end of a fake connection.
    struct Duplex<'a> {
        input: &'a [u8],
        output: Vec<u8>,
    }

    impl Read for Duplex<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn garbage_is_not_a_handshake() {
        for input in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[0, 0, 0, 3, KIND_HELLO, 1, 2],
            &[0xff; 64],
        ] {
            let mut conn = Duplex {
                input,
                output: Vec::new(),
            };
            assert!(handshake(&mut conn, &id(1, Role::Replica(1), S)).is_err());
        }
        assert!(id(1, Role::Client, b"short").validate().is_err());
    }
}
