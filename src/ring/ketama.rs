//! Ketama (MD5) consistent hashing, bit-exact with two real implementations.
//!
//! Both compat modes hash a key to the little-endian u32 of the first four
//! bytes of MD5(key), and take four points from each MD5 digest of a
//! "server string" (little-endian u32s at offsets 0, 4, 8, 12). They
//! differ in the server strings, the point counts, ties and the lookup rule:
//!
//! | | libmemcached 1.1.4, `KETAMA_WEIGHTED` | uhashring 2.5, `hash_fn="ketama"` |
//! |---|---|---|
//! | server string | `host-i` on port 11211 (or 0), else `host:port-i` | `name-i` (the node name as given) |
//! | digests per server | `floor(f32(w/W) * 160 / 4 * n + 1e-10)`, float32 | `(40 * n * w) // W`, integers |
//! | equal points | lower server index first | the later server overwrites |
//! | lookup | first point >= hash, wrap | first point > hash (`bisect_right`), wrap |
//!
//! (`w` the server's weight, `W` the sum of weights, `n` the server count.)
//! Read from libmemcached's `libmemcached/hosts.cc` (`update_continuum`,
//! `continuum_item_cmp`) and `libhashkit/md5.cc`, and uhashring's
//! `ring_ketama.py`; verified against both in the tests.
//!
//! Point counts depend on every server's weight, so a membership change
//! recomputes the whole continuum, as both peers do.

use std::collections::HashMap;

use super::{Continuum, Membership, Placement, check_name, check_replicas};
use crate::error::{Error, Result};
use crate::hash::{digest_u32, md5, md5_u32};

/// memcached's default port: libmemcached leaves it out of server strings.
pub const MEMCACHED_DEFAULT_PORT: u16 = 11211;

/// Which implementation to be bit-exact with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KetamaCompat {
    /// libmemcached 1.1.4 with `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`.
    Libmemcached,
    /// uhashring 2.5 `HashRing(nodes, hash_fn="ketama")` (vnodes 40, replicas 4).
    Uhashring,
}

impl KetamaCompat {
    /// Parses `"libmemcached"` or `"uhashring"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "libmemcached" => Ok(KetamaCompat::Libmemcached),
            "uhashring" => Ok(KetamaCompat::Uhashring),
            _ => Err(Error::invalid(format!(
                "unknown ketama compat {s:?}: expected \"libmemcached\" or \"uhashring\""
            ))),
        }
    }

    /// The mode's name as `parse` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            KetamaCompat::Libmemcached => "libmemcached",
            KetamaCompat::Uhashring => "uhashring",
        }
    }
}

/// One memcached server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KetamaServer {
    /// The name lookups return; uhashring mode also hashes it.
    pub name: String,
    /// Host, as libmemcached mode hashes it.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Weight, at least 1.
    pub weight: u32,
}

impl KetamaServer {
    /// A server from its parts; its name is `host:port`.
    pub fn new(host: &str, port: u16, weight: u32) -> Result<Self> {
        let s = KetamaServer {
            name: format!("{host}:{port}"),
            host: host.to_owned(),
            port,
            weight,
        };
        s.validate()?;
        Ok(s)
    }

    /// Parses `"host"`, `"host:port"` or `"[v6addr]:port"`; the name is the
    /// spec as given and the port defaults to 11211.
    pub fn parse(spec: &str, weight: u32) -> Result<Self> {
        let bad = || Error::invalid(format!("bad server spec {spec:?}: expected host[:port]"));
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
            match tail {
                "" => (h, MEMCACHED_DEFAULT_PORT),
                _ => (
                    h,
                    parse_port(tail.strip_prefix(':').ok_or_else(bad)?).ok_or_else(bad)?,
                ),
            }
        } else {
            match spec.rsplit_once(':') {
                // A bare IPv6 address has several colons: no port then.
                Some((h, p)) if !h.contains(':') => (h, parse_port(p).ok_or_else(bad)?),
                // Several colons must be a bare IPv6 address (optionally with
                // a %zone), not e.g. "host:port:x".
                Some(_) if !is_bare_ipv6(spec) => return Err(bad()),
                _ => (spec, MEMCACHED_DEFAULT_PORT),
            }
        };
        let s = KetamaServer {
            name: spec.to_owned(),
            host: host.to_owned(),
            port,
            weight,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        check_name(&self.name)?;
        if self.host.is_empty() {
            return Err(Error::invalid(format!(
                "server {:?} has an empty host",
                self.name
            )));
        }
        if self.weight == 0 {
            return Err(Error::invalid(format!(
                "server {:?}: weight must be at least 1",
                self.name
            )));
        }
        Ok(())
    }
}

fn is_bare_ipv6(s: &str) -> bool {
    let addr = s.split_once('%').map_or(s, |(a, _zone)| a);
    addr.parse::<std::net::Ipv6Addr>().is_ok()
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// A ketama continuum over memcached servers.
#[derive(Debug, Clone)]
pub struct KetamaRing {
    compat: KetamaCompat,
    servers: Vec<KetamaServer>,
    by_name: HashMap<String, usize>,
    /// Points are the 32-bit ketama values shifted into the top half.
    continuum: Continuum,
}

impl KetamaRing {
    /// A ring over `servers` (in this order; order breaks ties).
    pub fn new(servers: Vec<KetamaServer>, compat: KetamaCompat) -> Result<Self> {
        let mut by_name = HashMap::with_capacity(servers.len());
        for (i, s) in servers.iter().enumerate() {
            s.validate()?;
            if by_name.insert(s.name.clone(), i).is_some() {
                return Err(Error::NodeExists(s.name.clone()));
            }
        }
        let mut r = KetamaRing {
            compat,
            servers,
            by_name,
            continuum: Continuum::default(),
        };
        r.rebuild()?;
        Ok(r)
    }

    /// The compat mode.
    pub fn compat(&self) -> KetamaCompat {
        self.compat
    }

    /// The servers in index order.
    pub fn servers(&self) -> &[KetamaServer] {
        &self.servers
    }

    /// ketama's key hash: little-endian u32 of MD5(key)[0..4].
    pub fn key_hash(key: &[u8]) -> u32 {
        md5_u32(key, 0)
    }

    /// Number of points on the continuum.
    pub fn point_count(&self) -> usize {
        self.continuum.len()
    }

    /// Point `i` of the continuum as (32-bit point, server index), in
    /// lookup order; `None` past the end. The element-wise form of [`Self::points`].
    pub fn point(&self, i: usize) -> Option<(u32, usize)> {
        let p = *self.continuum.points().get(i)?;
        Some(((p >> 32) as u32, self.continuum.owners()[i] as usize))
    }

    /// The continuum as (32-bit point, server index), in lookup order.
    pub fn points(&self) -> Vec<(u32, usize)> {
        self.continuum
            .points()
            .iter()
            .zip(self.continuum.owners())
            .map(|(&p, &o)| ((p >> 32) as u32, o as usize))
            .collect()
    }

    /// How many MD5 digests (of four points each) a server of `weight`
    /// gets among `count` servers of total weight `total`.
    pub fn digests_per_server(compat: KetamaCompat, weight: u32, total: u64, count: usize) -> u64 {
        match compat {
            KetamaCompat::Libmemcached => {
                // hosts.cc: floor((float)(pct * 160 / 4 * (float)live_servers
                // + 0.0000000001)) * 4 with pct = (float)w / (float)total.
                // The float32 rounding is the point: 25 equal servers get
                // 156 points each, not 160.
                let pct = weight as f32 / total as f32;
                let x = pct * 160f32 / 4f32 * count as f32;
                let x = (x as f64 + 0.0000000001) as f32;
                x.floor() as u64
            }
            KetamaCompat::Uhashring => (40 * count as u64 * weight as u64) / total,
        }
    }

    fn rebuild(&mut self) -> Result<()> {
        let count = self.servers.len();
        let total: u64 = self.servers.iter().map(|s| s.weight as u64).sum();
        let mut pts: Vec<(u32, u32)> = Vec::new();
        let mut buf = String::new();
        for (idx, s) in self.servers.iter().enumerate() {
            let digests = Self::digests_per_server(self.compat, s.weight, total, count);
            if digests > (1 << 22) {
                return Err(Error::invalid(format!(
                    "server {:?} would get {digests} digests: weights too uneven",
                    s.name
                )));
            }
            for i in 0..digests {
                use std::fmt::Write;
                buf.clear();
                match self.compat {
                    // libmemcached stores port 0 as 11211, so it too leaves the port out.
                    KetamaCompat::Libmemcached
                        if s.port == MEMCACHED_DEFAULT_PORT || s.port == 0 =>
                    {
                        write!(buf, "{}-{i}", s.host)
                    }
                    KetamaCompat::Libmemcached => write!(buf, "{}:{}-{i}", s.host, s.port),
                    KetamaCompat::Uhashring => write!(buf, "{}-{i}", s.name),
                }
                .expect("writing to a String");
                let d = md5(buf.as_bytes());
                for a in 0..4 {
                    pts.push((digest_u32(&d, a), idx as u32));
                }
            }
        }
        match self.compat {
            KetamaCompat::Libmemcached => pts.sort_unstable(),
            KetamaCompat::Uhashring => {
                // The later server overwrites an equal point: keep the last.
                pts.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
                pts.dedup_by_key(|p| p.0);
            }
        }
        let (points, owners) = pts.into_iter().map(|(p, o)| ((p as u64) << 32, o)).unzip();
        self.continuum = Continuum::from_sorted(points, owners);
        Ok(())
    }

    /// The search position for a 32-bit key hash.
    #[inline]
    fn probe(&self, h: u32) -> u64 {
        match self.compat {
            KetamaCompat::Libmemcached => (h as u64) << 32,
            // First point strictly greater than h.
            KetamaCompat::Uhashring => ((h as u64) << 32) | 1,
        }
    }

    /// Index of the server owning a key already hashed with [`Self::key_hash`].
    #[inline]
    pub fn locate_hash(&self, h: u32) -> Result<usize> {
        if self.continuum.is_empty() {
            return Err(Error::EmptyRing);
        }
        Ok(self.continuum.owner_at_or_after(self.probe(h)) as usize)
    }

    /// Adds a server at the end of the order.
    pub fn add_server(&mut self, server: KetamaServer) -> Result<()> {
        server.validate()?;
        if self.by_name.contains_key(&server.name) {
            return Err(Error::NodeExists(server.name));
        }
        self.by_name.insert(server.name.clone(), self.servers.len());
        self.servers.push(server);
        self.rebuild_or_undo(|r| {
            let s = r.servers.pop().expect("just pushed");
            r.by_name.remove(&s.name);
        })
    }

    /// Removes the named server.
    pub fn remove_server(&mut self, name: &str) -> Result<()> {
        let idx = self
            .node_index(name)
            .ok_or_else(|| Error::NodeNotFound(name.to_owned()))?;
        let removed = self.servers.remove(idx);
        self.reindex();
        self.rebuild_or_undo(move |r| {
            r.servers.insert(idx, removed);
            r.reindex();
        })
    }

    /// Changes the named server's weight (its place in the order is kept).
    pub fn set_weight(&mut self, name: &str, weight: u32) -> Result<()> {
        let idx = self
            .node_index(name)
            .ok_or_else(|| Error::NodeNotFound(name.to_owned()))?;
        if weight == 0 {
            return Err(Error::invalid("weight must be at least 1"));
        }
        let old = std::mem::replace(&mut self.servers[idx].weight, weight);
        self.rebuild_or_undo(move |r| r.servers[idx].weight = old)
    }

    fn reindex(&mut self) {
        self.by_name = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
    }

    /// Rebuilds; on failure undoes the membership change so no state is lost.
    fn rebuild_or_undo(&mut self, undo: impl FnOnce(&mut Self)) -> Result<()> {
        match self.rebuild() {
            Ok(()) => Ok(()),
            Err(e) => {
                undo(self);
                self.rebuild()
                    .expect("the previous membership rebuilt before");
                Err(e)
            }
        }
    }
}

impl Membership for KetamaRing {
    type Weight = u32;

    fn remove_node(&mut self, name: &str) -> Result<()> {
        self.remove_server(name)
    }

    fn set_weight(&mut self, name: &str, weight: u32) -> Result<()> {
        KetamaRing::set_weight(self, name, weight)
    }

    fn weight_at(&self, index: usize) -> Option<u32> {
        self.node_weight(index)
    }
}

impl Placement for KetamaRing {
    fn len(&self) -> usize {
        self.servers.len()
    }

    fn node_name(&self, index: usize) -> Option<&str> {
        self.servers.get(index).map(|s| s.name.as_str())
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    fn node_weight(&self, index: usize) -> Option<u32> {
        self.servers.get(index).map(|s| s.weight)
    }

    #[inline]
    fn locate(&self, key: &[u8]) -> Result<usize> {
        self.locate_hash(Self::key_hash(key))
    }

    fn locate_n(&self, key: &[u8], n: usize, out: &mut Vec<usize>) -> Result<()> {
        check_replicas(n, self.servers.len())?;
        let mut owners = Vec::with_capacity(n);
        let h = self.probe(Self::key_hash(key));
        self.continuum
            .distinct_owners(h, n, self.servers.len(), &mut owners);
        out.clear();
        out.extend(owners.into_iter().map(|o| o as usize));
        if out.len() < n {
            // Possible only when a server got no points (tiny weight share).
            return Err(Error::invalid(format!(
                "only {} servers hold points on the continuum",
                out.len()
            )));
        }
        Ok(())
    }

    fn shares(&self) -> Vec<f64> {
        self.continuum.shares(self.servers.len())
    }
}

impl super::Walk for KetamaRing {
    fn walk(&self, key: &[u8], mut stop: impl FnMut(usize) -> bool) -> Option<usize> {
        let h = self.probe(Self::key_hash(key));
        super::bounded::walk_continuum(&self.continuum, h, &mut stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_server_specs() {
        let s = KetamaServer::parse("cache-1:11212", 2).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.weight), ("cache-1", 11212, 2));
        let s = KetamaServer::parse("cache-1", 1).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port),
            ("cache-1", MEMCACHED_DEFAULT_PORT)
        );
        let s = KetamaServer::parse("::1", 1).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", MEMCACHED_DEFAULT_PORT));
        let s = KetamaServer::parse("[::1]:11300", 1).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 11300));
        for bad in [
            "",
            "host:port:x",
            "host:99999",
            "host:",
            "host:x",
            ":11211",
            "[::1",
        ] {
            assert!(KetamaServer::parse(bad, 1).is_err(), "{bad:?}");
        }
    }
}
