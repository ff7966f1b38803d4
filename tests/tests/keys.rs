//! Keyspace commands: expiry, TTLs, renames, copies, SCAN, DUMP/RESTORE, OBJECT.

use redis::Commands;
use shoal_proto::Frame;
use shoal_tests::{bulk, err, int, ok, simple, wait_for, Server};
use std::collections::HashSet;

#[test]
fn expire_family_with_flags() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["EXPIRE", "none", "10"]), int(0));
    assert_eq!(r.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(r.cmd(&["EXPIRE", "k", "100", "XX"]), int(0));
    assert_eq!(r.cmd(&["EXPIRE", "k", "100", "GT"]), int(0), "no TTL counts as infinite for GT");
    assert_eq!(r.cmd(&["EXPIRE", "k", "100", "NX"]), int(1));
    assert_eq!(r.cmd(&["EXPIRE", "k", "50", "NX"]), int(0));
    assert_eq!(r.cmd(&["EXPIRE", "k", "200", "LT"]), int(0));
    assert_eq!(r.cmd(&["EXPIRE", "k", "50", "LT"]), int(1));
    assert_eq!(r.cmd(&["EXPIRE", "k", "500", "GT"]), int(1));
    assert!(matches!(r.cmd(&["TTL", "k"]), Frame::Integer(499..=500)));
    assert_eq!(
        r.cmd(&["EXPIRE", "k", "1", "NX", "XX"]),
        err("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(
        r.cmd(&["EXPIRE", "k", "1", "GT", "LT"]),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(r.cmd(&["EXPIRE", "k", "1", "FOO"]), err("ERR Unsupported option FOO"));
    assert_eq!(r.cmd(&["EXPIRE", "k", "9223372036854775807"]), err("ERR invalid expire time in 'expire' command"));
    assert_eq!(r.cmd(&["PERSIST", "k"]), int(1));
    assert_eq!(r.cmd(&["PERSIST", "k"]), int(0));
    assert_eq!(r.cmd(&["TTL", "k"]), int(-1));
    assert_eq!(r.cmd(&["TTL", "missing"]), int(-2));
    assert_eq!(r.cmd(&["PEXPIREAT", "k", "4102444800000"]), int(1));
    assert_eq!(r.cmd(&["PEXPIRETIME", "k"]), int(4102444800000));
    assert_eq!(r.cmd(&["EXPIRETIME", "k"]), int(4102444800));
    assert_eq!(r.cmd(&["EXPIRE", "k", "-1"]), int(1), "a past expiry deletes the key");
    assert_eq!(r.cmd(&["EXISTS", "k"]), int(0));
}

#[test]
fn keys_expire_lazily_and_actively() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "lazy", "v", "PX", "30"]), ok());
    for i in 0..200 {
        assert_eq!(r.cmd(&["SET", &format!("active{i}"), "v", "PX", "30"]), ok());
    }
    assert_eq!(r.cmd(&["SET", "stay", "v"]), ok());
    // Active expiry removes keys nobody reads: DBSIZE counts keys still in memory.
    wait_for("active expiry", || matches!(r.cmd(&["DBSIZE"]), Frame::Integer(n) if n <= 2));
    assert_eq!(r.cmd(&["GET", "lazy"]), Frame::Null);
    assert_eq!(r.cmd(&["DBSIZE"]), int(1));
    let expired: u64 = s.info_field("expired_keys").parse().unwrap();
    assert_eq!(expired, 201);
}

#[test]
fn debug_set_active_expire_turns_background_expiry_off() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), ok());
    assert_eq!(r.cmd(&["SET", "k", "v", "PX", "1"]), ok());
    assert_eq!(r.cmd(&["SET", "probe", "v"]), ok());
    // The shards' periodic tick advances the access clock every second: once the probe has
    // been idle a second, about ten ticks have run, any of which would have expired `k`.
    wait_for("a second of ticks", || matches!(r.cmd(&["OBJECT", "IDLETIME", "probe"]), Frame::Integer(n) if n >= 1));
    assert_eq!(r.cmd(&["DBSIZE"]), int(2), "with active expiry off the key stays until touched");
    assert_eq!(r.cmd(&["EXISTS", "k"]), int(0));
    assert_eq!(r.cmd(&["DBSIZE"]), int(1));
}

#[test]
fn rename_copy_move() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["RENAME", "nokey", "x"]), err("ERR no such key"));
    assert_eq!(r.cmd(&["SET", "src", "v", "EX", "100"]), ok());
    assert_eq!(r.cmd(&["RENAME", "src", "src"]), ok());
    assert_eq!(r.cmd(&["RENAME", "src", "dst"]), ok());
    assert_eq!(r.cmd(&["EXISTS", "src"]), int(0));
    assert_eq!(r.cmd(&["GET", "dst"]), bulk("v"));
    assert!(matches!(r.cmd(&["TTL", "dst"]), Frame::Integer(1..=100)), "RENAME keeps the TTL");
    assert_eq!(r.cmd(&["SET", "other", "o"]), ok());
    assert_eq!(r.cmd(&["RENAMENX", "dst", "other"]), int(0));
    assert_eq!(r.cmd(&["RENAMENX", "dst", "fresh"]), int(1));
    assert_eq!(r.cmd(&["COPY", "fresh", "fresh"]), err("ERR source and destination objects are the same"));
    assert_eq!(r.cmd(&["COPY", "fresh", "c1"]), int(1));
    assert_eq!(r.cmd(&["COPY", "fresh", "c1"]), int(0));
    assert_eq!(r.cmd(&["COPY", "other", "c1", "REPLACE"]), int(1));
    assert_eq!(r.cmd(&["GET", "c1"]), bulk("o"));
    assert_eq!(r.cmd(&["COPY", "fresh", "c1", "DB", "3"]), int(1));
    assert_eq!(r.cmd(&["COPY", "fresh", "c1", "DB", "16"]), err("ERR DB index is out of range"));
    assert_eq!(r.cmd(&["MOVE", "fresh", "0"]), err("ERR source and destination objects are the same"));
    assert_eq!(r.cmd(&["MOVE", "fresh", "2"]), int(1));
    assert_eq!(r.cmd(&["MOVE", "fresh", "2"]), int(0));
    assert_eq!(r.cmd(&["SELECT", "2"]), ok());
    assert_eq!(r.cmd(&["GET", "fresh"]), bulk("v"));
    assert_eq!(r.cmd(&["SELECT", "3"]), ok());
    assert_eq!(r.cmd(&["GET", "c1"]), bulk("v"));
}

#[test]
fn del_exists_touch_type_count_keys() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]), ok());
    assert_eq!(r.cmd(&["EXISTS", "a", "a", "b", "nope"]), int(3));
    assert_eq!(r.cmd(&["TOUCH", "a", "b", "nope"]), int(2));
    assert_eq!(r.cmd(&["TYPE", "a"]), simple("string"));
    assert_eq!(r.cmd(&["TYPE", "nope"]), simple("none"));
    assert_eq!(r.cmd(&["DEL", "a", "b", "nope"]), int(2));
    assert_eq!(r.cmd(&["UNLINK", "c"]), int(1));
    assert_eq!(r.cmd(&["DBSIZE"]), int(0));
}

#[test]
fn scan_visits_every_key_exactly_as_a_cursor_should() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.redis();
    for i in 0..1000 {
        let _: () = c.set(format!("key:{i}"), i).unwrap();
    }
    let _: () = c.set("other", 1).unwrap();
    let mut seen = HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg("key:*").arg("COUNT").arg(50).query(&mut c).unwrap();
        seen.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    let via_iter: HashSet<String> = c.scan_match("key:1*").unwrap().collect();
    assert_eq!(via_iter.len(), 111);
    let mut keys: Vec<String> = c.keys("key:99*").unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "key:99", "key:990", "key:991", "key:992", "key:993", "key:994", "key:995", "key:996", "key:997",
            "key:998", "key:999"
        ]
    );
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SCAN", "abc"]), err("ERR invalid cursor"));
    assert_eq!(r.cmd(&["SCAN", "0", "COUNT", "0"]), err("ERR syntax error"));
    for (kind, want) in [("string", 1001), ("list", 0)] {
        let (mut cursor, mut n) = (0u64, 0);
        loop {
            let (next, keys): (u64, Vec<String>) =
                redis::cmd("SCAN").arg(cursor).arg("TYPE").arg(kind).query(&mut c).unwrap();
            n += keys.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(n, want, "SCAN TYPE {kind}");
    }
    let rk = r.cmd(&["RANDOMKEY"]);
    assert!(matches!(rk, Frame::Bulk(_)));
}

#[test]
fn dump_restore_round_trip_and_errors() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "d", "hello"]), ok());
    let Frame::Bulk(payload) = r.cmd(&["DUMP", "d"]) else { panic!("DUMP") };
    assert_eq!(&payload[..9], b"\x00\x05hello\x0a\x00", "Redis 7.0 payload layout");
    assert_eq!(r.cmd_bytes(&[b"RESTORE", b"d", b"0", &payload]), err("BUSYKEY Target key name already exists."));
    assert_eq!(r.cmd_bytes(&[b"RESTORE", b"d2", b"0", &payload]), ok());
    assert_eq!(r.cmd(&["GET", "d2"]), bulk("hello"));
    assert_eq!(r.cmd_bytes(&[b"RESTORE", b"d", b"100000", &payload, b"REPLACE"]), ok());
    assert!(matches!(r.cmd(&["PTTL", "d"]), Frame::Integer(1..=100000)));
    let mut bad = payload.to_vec();
    bad[2] ^= 0xff;
    assert_eq!(r.cmd_bytes(&[b"RESTORE", b"d3", b"0", &bad]), err("ERR DUMP payload version or checksum are wrong"));
    assert_eq!(r.cmd_bytes(&[b"RESTORE", b"d3", b"-1", &payload]), err("ERR Invalid TTL value, must be >= 0"));
    assert_eq!(r.cmd(&["DUMP", "missing"]), Frame::Null);
}

#[test]
fn object_and_debug_object() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "i", "12"]), ok());
    assert_eq!(r.cmd(&["SET", "e", "hello"]), ok());
    assert_eq!(r.cmd(&["SET", "big", &"x".repeat(100)]), ok());
    assert_eq!(r.cmd(&["OBJECT", "ENCODING", "i"]), bulk("int"));
    assert_eq!(r.cmd(&["OBJECT", "ENCODING", "e"]), bulk("embstr"));
    assert_eq!(r.cmd(&["OBJECT", "ENCODING", "big"]), bulk("raw"));
    assert_eq!(r.cmd(&["OBJECT", "ENCODING", "missing"]), Frame::Null);
    assert_eq!(r.cmd(&["OBJECT", "REFCOUNT", "i"]), int(i32::MAX as i64));
    assert_eq!(r.cmd(&["OBJECT", "REFCOUNT", "e"]), int(1));
    assert!(matches!(r.cmd(&["OBJECT", "IDLETIME", "e"]), Frame::Integer(0..=2)));
    assert!(
        matches!(r.cmd(&["OBJECT", "FREQ", "e"]), Frame::Error(e) if e.starts_with(b"ERR An LFU maxmemory policy is not selected"))
    );
    assert_eq!(r.cmd(&["OBJECT", "FOO", "e"]), err("ERR unknown subcommand 'FOO'. Try OBJECT HELP."));
    assert!(matches!(r.cmd(&["OBJECT", "HELP"]), Frame::Array(_)));
    let Frame::Simple(line) = r.cmd(&["DEBUG", "OBJECT", "e"]) else { panic!("DEBUG OBJECT") };
    assert!(String::from_utf8_lossy(&line).contains("encoding:embstr serializedlength:6"));
    assert_eq!(r.cmd(&["DEBUG", "OBJECT", "missing"]), err("ERR no such key"));
}

#[test]
fn databases_are_separate_and_swappable() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "k", "db0"]), ok());
    assert_eq!(r.cmd(&["SELECT", "1"]), ok());
    assert_eq!(r.cmd(&["GET", "k"]), Frame::Null);
    assert_eq!(r.cmd(&["SET", "k", "db1"]), ok());
    assert_eq!(r.cmd(&["SWAPDB", "0", "1"]), ok());
    assert_eq!(r.cmd(&["GET", "k"]), bulk("db0"));
    assert_eq!(r.cmd(&["SELECT", "16"]), err("ERR DB index is out of range"));
    assert_eq!(r.cmd(&["SELECT", "x"]), err("ERR value is not an integer or out of range"));
    assert_eq!(r.cmd(&["SWAPDB", "x", "1"]), err("ERR invalid first DB index"));
    assert_eq!(r.cmd(&["SWAPDB", "0", "99"]), err("ERR DB index is out of range"));
    assert_eq!(r.cmd(&["FLUSHDB"]), ok());
    assert_eq!(r.cmd(&["DBSIZE"]), int(0));
    assert_eq!(r.cmd(&["SELECT", "0"]), ok());
    assert_eq!(r.cmd(&["GET", "k"]), bulk("db1"));
    assert_eq!(r.cmd(&["FLUSHALL", "ASYNC"]), ok());
    assert_eq!(r.cmd(&["DBSIZE"]), int(0));
    assert_eq!(r.cmd(&["FLUSHALL", "LATER"]), err("ERR syntax error"));
}

#[test]
fn database_index_errors_distinguish_non_integers_from_out_of_range() {
    let s = Server::start();
    let mut r = s.raw();
    let range = "ERR value is out of range, value must between -2147483648 and 2147483647";
    assert_eq!(r.cmd(&["SELECT", "99999999999"]), err(range));
    assert_eq!(r.cmd(&["SELECT", "abc"]), err("ERR value is not an integer or out of range"));
    assert_eq!(r.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(r.cmd(&["MOVE", "a", "99999999999"]), err(range));
    assert_eq!(r.cmd(&["COPY", "a", "b", "DB", "99999999999"]), err(range));
    assert_eq!(r.cmd(&["SWAPDB", "99999999999", "1"]), err("ERR invalid first DB index"));
    assert_eq!(
        r.cmd(&["COMMAND", "GETKEYS", "SET"]),
        err("ERR wrong number of arguments for 'command|getkeys' command")
    );
}
