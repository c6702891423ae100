//! The Lua scripts, one per operation, each `lua/common.lua` followed by the
//! operation's file. redis-rs's `Script` sends `EVALSHA` and, on `NOSCRIPT`
//! (a restarted or flushed server), loads the script and runs it again.

use std::sync::LazyLock;

use redis::{ConnectionLike, RedisResult, Script, Value};

use super::keys::ResourceKeys;
use crate::error::{Error, Result};

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/common.lua"),
                "\n",
                include_str!(concat!("lua/", $file))
            ))
        });
    };
}

script!(ACQUIRE, "acquire.lua");
script!(POLL, "poll.lua");
script!(CANCEL, "cancel.lua");
script!(RENEW, "renew.lua");
script!(RELEASE, "release.lua");
script!(INSPECT, "inspect.lua");

/// The arguments every script takes first (`ARGV[1..3]`).
pub(crate) struct Common {
    pub memory_ms: u64,
    pub delay_ms: u64,
}

/// Runs `script` on `keys` with the common arguments and then `args`.
pub(crate) fn invoke(
    con: &mut dyn ConnectionLike,
    script: &Script,
    keys: &ResourceKeys,
    common: &Common,
    args: &[&[u8]],
) -> RedisResult<Value> {
    let mut inv = script.prepare_invoke();
    for k in &keys.keys {
        inv.key(k.as_str());
    }
    inv.arg(keys.wake_prefix.as_str())
        .arg(common.memory_ms)
        .arg(common.delay_ms);
    for a in args {
        inv.arg(*a);
    }
    inv.invoke(con)
}

/// The usual reply: `{status, a, b, server now in ms}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply {
    pub status: i64,
    pub a: i64,
    pub b: i64,
    pub now_ms: i64,
}

fn bad(v: &Value) -> Error {
    Error::corrupt(format!("redis: unexpected script reply {v:?}"))
}

pub(crate) fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(bad(other)),
    }
}

pub(crate) fn reply(v: &Value) -> Result<Reply> {
    match v {
        Value::Array(items) if items.len() == 4 => Ok(Reply {
            status: int(&items[0])?,
            a: int(&items[1])?,
            b: int(&items[2])?,
            now_ms: int(&items[3])?,
        }),
        other => Err(bad(other)),
    }
}

/// A wake-up entry `"token expiry_ms"`.
pub(crate) fn parse_grant(s: &str) -> Result<(u64, i64)> {
    let mut it = s.split(' ');
    match (
        it.next().and_then(|t| t.parse().ok()),
        it.next().and_then(|e| e.parse().ok()),
    ) {
        (Some(t), Some(e)) => Ok((t, e)),
        _ => Err(Error::corrupt(format!("redis: bad wake-up entry {s:?}"))),
    }
}
