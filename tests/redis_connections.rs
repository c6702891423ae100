//! How a RedisLeaseTable reaches its server: a unix socket, a database
//! number, and TLS (feature `redis-tls`) against a redis-server this test
//! starts with a self-signed certificate made by `openssl`.
#![cfg(feature = "redis")]

mod redis_server;

#[cfg(feature = "redis-tls")]
use std::path::Path;
#[cfg(feature = "redis-tls")]
use std::process::Command;
use std::time::Duration;

use quorumkit::Error;
use quorumkit::lease::Mode;
use quorumkit::lease::redis::{RedisConfig, RedisLeaseTable};

const SEC: Duration = Duration::from_secs(1);

fn quick() -> RedisConfig {
    RedisConfig {
        connect_timeout: SEC,
        command_timeout: SEC,
        ..RedisConfig::default()
    }
}

/// A grant, a busy answer to another owner, a release: the table works.
fn round_trip(t: &RedisLeaseTable) {
    let l = t
        .acquire("res", "a", 10 * SEC, Mode::Exclusive, None)
        .unwrap();
    assert!(matches!(
        t.try_acquire("res", "b", SEC, Mode::Exclusive),
        Err(Error::Busy { .. })
    ));
    t.release(&l).unwrap();
    let l2 = t.try_acquire("res", "b", SEC, Mode::Exclusive).unwrap();
    assert!(l2.token > l.token);
    t.release(&l2).unwrap();
}

#[test]
fn a_unix_socket_and_a_database_number() {
    let dir = std::env::temp_dir().join(format!("qk-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("redis.sock");
    let sock_s = sock.to_str().unwrap().to_owned();
    let Some(srv) = redis_server::start_with(&["--unixsocket", &sock_s, "--unixsocketperm", "700"])
    else {
        return;
    };
    for url in [
        format!("redis+unix://{sock_s}"),
        format!("unix://{sock_s}?db=2"),
    ] {
        round_trip(&RedisLeaseTable::open(&url, quick()).unwrap());
    }
    // Database 5 over TCP: the table's keys live there, not in database 0.
    let t = RedisLeaseTable::open(&format!("{}/5", srv.url()), quick()).unwrap();
    let l = t
        .acquire("in-db5", "a", 10 * SEC, Mode::Exclusive, None)
        .unwrap();
    let mut c = srv.conn();
    let in0: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert!(in0.is_empty(), "{in0:?}");
    let _: () = redis::cmd("SELECT").arg(5).query(&mut c).unwrap();
    let in5: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert!(in5.iter().any(|k| k.contains("in-db5")), "{in5:?}");
    t.release(&l).unwrap();
    // A socket path where nothing listens: unavailable, not a hang.
    let t = RedisLeaseTable::open(
        &format!("redis+unix://{}", dir.join("nobody.sock").display()),
        quick(),
    )
    .unwrap();
    assert!(matches!(t.ping(), Err(Error::BackendUnavailable(_))));
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A self-signed certificate for 127.0.0.1 in `dir` (cert.pem, key.pem).
#[cfg(feature = "redis-tls")]
fn self_signed(dir: &Path) -> bool {
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: openssl could not make a test certificate");
    }
    ok
}

#[cfg(feature = "redis-tls")]
#[test]
fn tls_with_a_self_signed_server() {
    let dir = std::env::temp_dir().join(format!("qk-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if !self_signed(&dir) {
        return;
    }
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let Some(_srv) = redis_server::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--tls-ca-cert-file",
        cert,
        "--tls-auth-clients",
        "no",
    ]) else {
        return;
    };
    // Certificates are checked by default: a self-signed one is refused.
    let strict = RedisLeaseTable::open(&format!("rediss://127.0.0.1:{tls_port}"), quick()).unwrap();
    match strict.ping() {
        Err(Error::BackendUnavailable(m)) => assert!(m.to_lowercase().contains("cert"), "{m}"),
        other => panic!("a self-signed certificate was accepted: {other:?}"),
    }
    // `#insecure` skips the check: the whole table works over TLS.
    let t = RedisLeaseTable::open(&format!("rediss://127.0.0.1:{tls_port}/#insecure"), quick())
        .unwrap();
    round_trip(&t);
    // Plain text to the TLS port: an error within the timeout, not a hang.
    let plain = RedisLeaseTable::open(&format!("redis://127.0.0.1:{tls_port}"), quick()).unwrap();
    let start = std::time::Instant::now();
    assert!(plain.ping().is_err());
    assert!(start.elapsed() < 3 * SEC);
    let _ = std::fs::remove_dir_all(&dir);
}
