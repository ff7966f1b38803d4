//! Keyspace notifications (`notify-keyspace-events`): shards publish `__keyspace@<db>__:<key>`
//! and `__keyevent@<db>__:<event>` messages for the writes they apply, with Redis's event
//! names and classes. Disabled (the default) it costs one atomic load per write.

use crate::pubsub::PubSub;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// `A`: every class but key-miss and new.
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Redis's `keyspaceEventsStringToFlags`; `None` for an unknown character.
pub fn parse(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// Redis's `keyspaceEventsFlagsToString`.
pub fn to_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm'), (NEW, 'n')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

pub struct Notifier {
    flags: AtomicU32,
    pubsub: Arc<PubSub>,
}

impl Notifier {
    pub fn new(pubsub: Arc<PubSub>) -> Notifier {
        Notifier { flags: AtomicU32::new(0), pubsub }
    }

    pub fn pubsub(&self) -> Arc<PubSub> {
        self.pubsub.clone()
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Relaxed)
    }

    pub fn set_flags(&self, f: u32) {
        self.flags.store(f, Relaxed)
    }

    /// Whether events of `class` are published at all.
    #[inline]
    pub fn wants(&self, class: u32) -> bool {
        let f = self.flags.load(Relaxed);
        f & class != 0 && f & (KEYSPACE | KEYEVENT) != 0
    }

    /// Redis's `notifyKeyspaceEvent`.
    pub fn notify(&self, class: u32, event: &str, key: &[u8], db: usize) {
        let f = self.flags.load(Relaxed);
        if f & class == 0 {
            return;
        }
        if f & KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.pubsub.publish(&ch, event.as_bytes());
        }
        if f & KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}");
            self.pubsub.publish(ch.as_bytes(), key);
        }
    }
}

/// The event a command's write to a key is announced as: (class, name). `first` tells
/// whether the key is the command's first key (source and destination differ for moves).
pub fn event_for(cmd: &str, first: bool, record: &str) -> Option<(u32, &'static str)> {
    Some(match cmd {
        "set" | "setnx" | "setex" | "psetex" | "getset" | "mset" | "msetnx" => match record {
            "PEXPIREAT" => (GENERIC, "expire"),
            _ => (STRING, "set"),
        },
        "getex" => match record {
            "PERSIST" => (GENERIC, "persist"),
            "DEL" => (GENERIC, "del"),
            _ => (GENERIC, "expire"),
        },
        "setrange" => (STRING, "setrange"),
        "append" => (STRING, "append"),
        // Redis announces every integer counter change as "incrby".
        "incr" | "incrby" | "decr" | "decrby" => (STRING, "incrby"),
        "incrbyfloat" => (STRING, "incrbyfloat"),
        "setbit" | "bitfield" => (STRING, "setbit"),
        "bitop" => (STRING, "set"),
        "pfadd" | "pfmerge" => (STRING, "pfadd"),
        "del" | "unlink" | "getdel" => (GENERIC, "del"),
        "expire" | "pexpire" | "expireat" | "pexpireat" => match record {
            "DEL" => (GENERIC, "del"),
            _ => (GENERIC, "expire"),
        },
        "persist" => (GENERIC, "persist"),
        "rename" | "renamenx" => (GENERIC, if first { "rename_from" } else { "rename_to" }),
        "copy" if !first => (GENERIC, "copy_to"),
        "move" => (GENERIC, if record.is_empty() { "move_to" } else { "move_from" }),
        "restore" => (GENERIC, "restore"),
        "sort" => (LIST, "sortstore"),
        "lpush" | "lpushx" => (LIST, "lpush"),
        "rpush" | "rpushx" => (LIST, "rpush"),
        "lpop" | "blpop" => (LIST, "lpop"),
        "rpop" | "brpop" => (LIST, "rpop"),
        "lmpop" | "blmpop" | "lmove" | "blmove" | "rpoplpush" | "brpoplpush" => match record {
            "LPOP" => (LIST, "lpop"),
            "RPOP" => (LIST, "rpop"),
            "LPUSH" => (LIST, "lpush"),
            _ => (LIST, "rpush"),
        },
        "linsert" => (LIST, "linsert"),
        "lset" => (LIST, "lset"),
        "lrem" => (LIST, "lrem"),
        "ltrim" => (LIST, "ltrim"),
        "hset" | "hsetnx" | "hmset" => (HASH, "hset"),
        "hdel" => (HASH, "hdel"),
        "hincrby" => (HASH, "hincrby"),
        "hincrbyfloat" => (HASH, "hincrbyfloat"),
        "sadd" => (SET, "sadd"),
        "srem" => (SET, "srem"),
        "spop" => (SET, "spop"),
        "smove" => (SET, if first { "srem" } else { "sadd" }),
        "sinterstore" => (SET, "sinterstore"),
        "sunionstore" => (SET, "sunionstore"),
        "sdiffstore" => (SET, "sdiffstore"),
        "zadd" | "geoadd" => (ZSET, if record.starts_with("ZINCR") { "zincr" } else { "zadd" }),
        "zincrby" => (ZSET, "zincr"),
        "zrem" => (ZSET, "zrem"),
        "zremrangebyrank" => (ZSET, "zremrangebyrank"),
        "zremrangebyscore" => (ZSET, "zremrangebyscore"),
        "zremrangebylex" => (ZSET, "zremrangebylex"),
        "zpopmin" | "bzpopmin" => (ZSET, "zpopmin"),
        "zpopmax" | "bzpopmax" => (ZSET, "zpopmax"),
        "zmpop" | "bzmpop" => (ZSET, "zpopmin"),
        "zunionstore" => (ZSET, "zunionstore"),
        "zinterstore" => (ZSET, "zinterstore"),
        "zdiffstore" => (ZSET, "zdiffstore"),
        "zrangestore" => (ZSET, "zrangestore"),
        "georadius" | "georadiusbymember" => (ZSET, "georadiusstore"),
        "geosearchstore" => (ZSET, "geosearchstore"),
        "xadd" => (STREAM, "xadd"),
        "xtrim" => (STREAM, "xtrim"),
        "xdel" => (STREAM, "xdel"),
        "xsetid" => (STREAM, "xsetid"),
        "xgroup|create" => (STREAM, "xgroup-create"),
        "xgroup|setid" => (STREAM, "xgroup-setid"),
        "xgroup|destroy" => (STREAM, "xgroup-destroy"),
        "xgroup|createconsumer" => (STREAM, "xgroup-createconsumer"),
        "xgroup|delconsumer" => (STREAM, "xgroup-delconsumer"),
        "xreadgroup" if record == "XGROUP" => (STREAM, "xgroup-createconsumer"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_as_redis_prints_them() {
        assert_eq!(to_string(parse("KEA").unwrap()), "AKE");
        assert_eq!(to_string(parse("Elg").unwrap()), "glE");
        assert_eq!(parse("Q"), None);
        assert_eq!(to_string(parse("").unwrap()), "");
    }
}
