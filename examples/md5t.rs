fn main() {
    let keys: Vec<String> = (0..20000).map(|i| format!("user:{i}")).collect();
    let mut acc = 0u128;
    let t = std::time::Instant::now();
    for _ in 0..50 {
        for k in &keys {
            acc ^= quorumkit::hash::md5_u128(std::hint::black_box(k.as_bytes()));
        }
    }
    println!(
        "md5 {:.1} ns {}",
        t.elapsed().as_nanos() as f64 / 1e6,
        acc & 1
    );
    use quorumkit::ring::{Md5Ring, Placement};
    let mut r = Md5Ring::new();
    for i in 0..100 {
        r.add_node(&format!("10.0.{}.{}:11211", i / 256, i % 256), 1)
            .unwrap();
    }
    let t = std::time::Instant::now();
    let mut s = 0usize;
    for _ in 0..50 {
        for k in &keys {
            s += r.locate(std::hint::black_box(k.as_bytes())).unwrap();
        }
    }
    println!(
        "locate {:.1} ns {}",
        t.elapsed().as_nanos() as f64 / 1e6,
        s & 1
    );
}
