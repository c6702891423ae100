//! A TCP proxy for one directed link between two replicas: it forwards
//! bytes both ways, and the test can make it drop them (a black hole:
//! connections stay open, nothing arrives), delay them, or cut the link
//! (open connections closed, new ones refused at once).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a link does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    Pass,
    /// Bytes are read and thrown away.
    Drop,
    /// Open connections are closed; new ones are closed on accept.
    Cut,
}

struct Shared {
    mode: AtomicU8,
    delay_ms: AtomicU64,
    closed: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// One link's proxy: listens on `addr`, forwards to the target.
pub struct LinkProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

fn mode_of(v: u8) -> LinkMode {
    match v {
        1 => LinkMode::Drop,
        2 => LinkMode::Cut,
        _ => LinkMode::Pass,
    }
}

impl LinkProxy {
    /// A proxy on a free loopback port forwarding to `target`.
    pub fn start(target: SocketAddr) -> LinkProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            mode: AtomicU8::new(0),
            delay_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                if s.closed.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(inbound) = inbound else { continue };
                if mode_of(s.mode.load(Ordering::SeqCst)) == LinkMode::Cut {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_millis(500))
                else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                {
                    let mut conns = s.conns.lock().unwrap();
                    conns.push(inbound.try_clone().unwrap());
                    conns.push(outbound.try_clone().unwrap());
                }
                let (a, b) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                let (s1, s2) = (s.clone(), s.clone());
                std::thread::spawn(move || pump(inbound, outbound, s1));
                std::thread::spawn(move || pump(b, a, s2));
            }
        });
        LinkProxy { addr, shared }
    }

    /// Sets what the link does from now on.
    pub fn set(&self, mode: LinkMode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
        if mode == LinkMode::Cut {
            for c in self.shared.conns.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// Holds every chunk for `ms` before forwarding it (0: none).
    pub fn set_delay(&self, ms: u64) {
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.set(LinkMode::Cut);
        // Wakes the accept loop so it sees `closed`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

/// Copies `from` to `to` as the link's mode says, until either end closes.
fn pump(mut from: TcpStream, mut to: TcpStream, s: Arc<Shared>) {
    let mut buf = vec![0u8; 64 * 1024];
    // Once bytes were dropped the stream is broken (TCP never skips bytes):
    // the connection ends when the link heals, as a long partition's would.
    let mut dropped = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match mode_of(s.mode.load(Ordering::SeqCst)) {
            LinkMode::Pass if dropped => break,
            LinkMode::Pass => {
                let d = s.delay_ms.load(Ordering::SeqCst);
                if d > 0 {
                    std::thread::sleep(Duration::from_millis(d));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            LinkMode::Drop => dropped = true,
            LinkMode::Cut => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
