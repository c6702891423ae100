//! The README's Rust quick start, compiled by `cargo test`: `cargo run --example quickstart`.

use quorumkit::ring::{HashRing, KetamaCompat, KetamaRing, KetamaServer, Placement};

fn main() -> Result<(), quorumkit::Error> {
    let mut ring = HashRing::new();
    ring.add_node("cache-a", 1)?;
    ring.add_node("cache-b", 2)?;
    let owner = ring.get_node(b"user:42")?; // &str
    let replicas = ring.get_nodes(b"user:42", 2)?; // distinct, preference order
    let servers = vec![KetamaServer::parse("10.0.0.1:11211", 1)?];
    let mc = KetamaRing::new(servers, KetamaCompat::Libmemcached)?;
    println!("{owner} {replicas:?} {}", mc.get_node(b"session:9")?);
    Ok(())
}
