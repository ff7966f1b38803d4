//! String commands through the `redis` crate and exact replies on the wire.

use redis::{Commands, RedisResult, Value};
use shoal_proto::Frame;
use shoal_tests::{bulk, err, int, ok, Server};

#[test]
fn get_set_and_options() {
    let s = Server::start();
    let mut c = s.redis();
    let _: () = c.set("a", "1").unwrap();
    assert_eq!(c.get::<_, String>("a").unwrap(), "1");
    let r: Option<String> = redis::cmd("SET").arg("a").arg("2").arg("NX").query(&mut c).unwrap();
    assert_eq!(r, None);
    let r: Option<String> = redis::cmd("SET").arg("b").arg("2").arg("XX").query(&mut c).unwrap();
    assert_eq!(r, None);
    let old: Option<String> = redis::cmd("SET").arg("a").arg("3").arg("GET").query(&mut c).unwrap();
    assert_eq!(old.as_deref(), Some("1"));
    let _: () = redis::cmd("SET").arg("t").arg("v").arg("EX").arg(100).query(&mut c).unwrap();
    let ttl: i64 = c.ttl("t").unwrap();
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    let _: () = redis::cmd("SET").arg("t").arg("w").arg("KEEPTTL").query(&mut c).unwrap();
    assert!(c.ttl::<_, i64>("t").unwrap() > 0);
    let _: () = c.set("t", "x").unwrap();
    assert_eq!(c.ttl::<_, i64>("t").unwrap(), -1, "plain SET clears the TTL");
}

#[test]
fn set_errors_match_redis() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "k", "v", "NX", "XX"]), err("ERR syntax error"));
    assert_eq!(r.cmd(&["SET", "k", "v", "EX", "10", "PX", "100"]), err("ERR syntax error"));
    assert_eq!(r.cmd(&["SET", "k", "v", "EX", "10", "KEEPTTL"]), err("ERR syntax error"));
    assert_eq!(r.cmd(&["SET", "k", "v", "EX"]), err("ERR syntax error"));
    assert_eq!(r.cmd(&["SET", "k", "v", "EX", "0"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(r.cmd(&["SET", "k", "v", "EX", "-1"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(r.cmd(&["SET", "k", "v", "EX", "x"]), err("ERR value is not an integer or out of range"));
    assert_eq!(r.cmd(&["SET", "k", "v", "EX", "9223372036854775807"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(r.cmd(&["SETEX", "k", "0", "v"]), err("ERR invalid expire time in 'setex' command"));
    assert_eq!(r.cmd(&["SET"]), err("ERR wrong number of arguments for 'set' command"));
    // The connection stays usable after every error.
    assert_eq!(r.cmd(&["PING"]), Frame::Simple("PONG".into()));
}

#[test]
fn counters_reject_non_numeric_values() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "n", "abc"]), ok());
    assert_eq!(r.cmd(&["INCR", "n"]), err("ERR value is not an integer or out of range"));
    assert_eq!(r.cmd(&["INCRBYFLOAT", "n", "1"]), err("ERR value is not a valid float"));
}

#[test]
fn counters() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["INCR", "c"]), int(1));
    assert_eq!(r.cmd(&["INCRBY", "c", "41"]), int(42));
    assert_eq!(r.cmd(&["DECR", "c"]), int(41));
    assert_eq!(r.cmd(&["DECRBY", "c", "1"]), int(40));
    assert_eq!(r.cmd(&["SET", "m", "9223372036854775807"]), ok());
    assert_eq!(r.cmd(&["INCR", "m"]), err("ERR increment or decrement would overflow"));
    assert_eq!(r.cmd(&["DECRBY", "m", "-9223372036854775808"]), err("ERR decrement would overflow"));
    assert_eq!(r.cmd(&["INCRBY", "c", "1.5"]), err("ERR value is not an integer or out of range"));
    assert_eq!(r.cmd(&["SET", "f", "10.50"]), ok());
    assert_eq!(r.cmd(&["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
    assert_eq!(r.cmd(&["INCRBYFLOAT", "f", "-5"]), bulk("5.6"));
    assert_eq!(r.cmd(&["SET", "g", "5.0e3"]), ok());
    assert_eq!(r.cmd(&["INCRBYFLOAT", "g", "2.0e2"]), bulk("5200"));
    assert_eq!(r.cmd(&["INCRBYFLOAT", "g", "inf"]), err("ERR increment would produce NaN or Infinity"));
    // INCR keeps the TTL.
    assert_eq!(r.cmd(&["SET", "e", "1", "EX", "100"]), ok());
    assert_eq!(r.cmd(&["INCR", "e"]), int(2));
    assert!(matches!(r.cmd(&["TTL", "e"]), Frame::Integer(t) if t > 0));
}

#[test]
fn ranges_append_and_lengths() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "s", "Hello World"]), ok());
    assert_eq!(r.cmd(&["GETRANGE", "s", "0", "4"]), bulk("Hello"));
    assert_eq!(r.cmd(&["GETRANGE", "s", "-5", "-1"]), bulk("World"));
    assert_eq!(r.cmd(&["GETRANGE", "s", "5", "3"]), bulk(""));
    assert_eq!(r.cmd(&["GETRANGE", "s", "-1", "-5"]), bulk(""));
    assert_eq!(r.cmd(&["GETRANGE", "s", "0", "100"]), bulk("Hello World"));
    assert_eq!(r.cmd(&["SUBSTR", "nokey", "0", "1"]), bulk(""));
    assert_eq!(r.cmd(&["SETRANGE", "s", "6", "Redis"]), int(11));
    assert_eq!(r.cmd(&["GET", "s"]), bulk("Hello Redis"));
    assert_eq!(r.cmd(&["SETRANGE", "z", "3", "ab"]), int(5));
    assert_eq!(r.cmd(&["GET", "z"]), Frame::Bulk(bytes::Bytes::from_static(b"\0\0\0ab")));
    assert_eq!(r.cmd(&["SETRANGE", "z", "-1", "ab"]), err("ERR offset is out of range"));
    assert_eq!(
        r.cmd(&["SETRANGE", "z", "536870911", "ab"]),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    assert_eq!(r.cmd(&["SETRANGE", "empty", "0", ""]), int(0));
    assert_eq!(r.cmd(&["EXISTS", "empty"]), int(0));
    assert_eq!(r.cmd(&["APPEND", "ap", "foo"]), int(3));
    for _ in 0..1000 {
        r.send(b"*3\r\n$6\r\nAPPEND\r\n$2\r\nap\r\n$3\r\nbar\r\n");
    }
    for i in 0..1000 {
        assert_eq!(r.read(), int(3 + 3 * (i + 1)));
    }
    assert_eq!(r.cmd(&["STRLEN", "ap"]), int(3003));
    assert_eq!(r.cmd(&["STRLEN", "nokey"]), int(0));
    assert_eq!(r.cmd(&["SET", "i", "12345"]), ok());
    assert_eq!(r.cmd(&["APPEND", "i", "6"]), int(6));
    assert_eq!(r.cmd(&["GET", "i"]), bulk("123456"));
}

#[test]
fn multi_key_commands_across_shards_are_atomic_and_complete() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut c = s.redis();
    let pairs: Vec<(String, String)> = (0..200).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let _: () = c.mset(&pairs).unwrap();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let vals: Vec<Option<String>> = c.mget(&keys).unwrap();
    assert!(vals.iter().zip(&pairs).all(|(v, (_, want))| v.as_deref() == Some(want.as_str())));
    let n: i64 = redis::cmd("MSETNX").arg("k1").arg("x").arg("fresh").arg("y").query(&mut c).unwrap();
    assert_eq!(n, 0);
    assert!(!c.exists::<_, bool>("fresh").unwrap(), "MSETNX sets nothing when one key exists");
    let n: i64 = redis::cmd("MSETNX").arg("fresh1").arg("x").arg("fresh2").arg("y").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let deleted: i64 = c.del(&keys).unwrap();
    assert_eq!(deleted, 200);
    let r: RedisResult<Value> = redis::cmd("MSET").arg("a").arg("1").arg("b").query(&mut c);
    assert!(r.unwrap_err().to_string().contains("wrong number of arguments for 'mset' command"));
}

#[test]
fn mset_is_isolated_from_concurrent_readers() {
    // A reader must never see half of an MSET whose keys span shards.
    let s = Server::start_with(&["--shards", "4"]);
    let keys: Vec<String> = (0..8).map(|i| format!("iso{i}")).collect();
    let writer_keys = keys.clone();
    let url = s.url();
    let writer = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        for round in 0..2000 {
            let pairs: Vec<(String, i64)> = writer_keys.iter().map(|k| (k.clone(), round)).collect();
            let _: () = c.mset(&pairs).unwrap();
        }
    });
    let mut c = s.redis();
    while !writer.is_finished() {
        let vals: Vec<Option<i64>> = c.mget(&keys).unwrap();
        if vals[0].is_some() {
            assert!(vals.iter().all(|v| *v == vals[0]), "torn MSET observed: {vals:?}");
        }
    }
    writer.join().unwrap();
}

#[test]
fn getex_getdel_getset() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "g", "v"]), ok());
    assert_eq!(r.cmd(&["GETEX", "g", "EX", "100"]), bulk("v"));
    assert!(matches!(r.cmd(&["TTL", "g"]), Frame::Integer(99..=100)));
    assert_eq!(r.cmd(&["GETEX", "g", "PERSIST"]), bulk("v"));
    assert_eq!(r.cmd(&["TTL", "g"]), int(-1));
    assert_eq!(r.cmd(&["GETEX", "g", "EX", "1", "PERSIST"]), err("ERR syntax error"));
    assert_eq!(r.cmd(&["GETEX", "nokey", "EX", "0"]), Frame::Null);
    assert_eq!(r.cmd(&["GETEX", "g", "EX", "0"]), err("ERR invalid expire time in 'getex' command"));
    assert_eq!(r.cmd(&["GETEX", "g", "PXAT", "1"]), bulk("v"));
    assert_eq!(r.cmd(&["EXISTS", "g"]), int(0));
    assert_eq!(r.cmd(&["GETSET", "gs", "1"]), Frame::Null);
    assert_eq!(r.cmd(&["GETSET", "gs", "2"]), bulk("1"));
    assert_eq!(r.cmd(&["GETDEL", "gs"]), bulk("2"));
    assert_eq!(r.cmd(&["GETDEL", "gs"]), Frame::Null);
    assert_eq!(r.cmd(&["SETNX", "nx", "1"]), int(1));
    assert_eq!(r.cmd(&["SETNX", "nx", "2"]), int(0));
    assert_eq!(r.cmd(&["PSETEX", "px", "100000", "v"]), ok());
    assert!(matches!(r.cmd(&["PTTL", "px"]), Frame::Integer(99_000..=100_000)));
}

#[test]
fn lcs_matches_redis_examples() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["MSET", "key1", "ohmytext", "key2", "mynewtext"]), ok());
    assert_eq!(r.cmd(&["LCS", "key1", "key2"]), bulk("mytext"));
    assert_eq!(r.cmd(&["LCS", "key1", "key2", "LEN"]), int(6));
    let idx = r.cmd(&["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]);
    let want = Frame::Array(vec![
        bulk("matches"),
        Frame::Array(vec![Frame::Array(vec![
            Frame::Array(vec![int(4), int(7)]),
            Frame::Array(vec![int(5), int(8)]),
            int(4),
        ])]),
        bulk("len"),
        int(6),
    ]);
    assert_eq!(idx, want);
    assert_eq!(
        r.cmd(&["LCS", "key1", "key2", "LEN", "IDX"]),
        err("ERR If you want both the length and indexes, please just use IDX.")
    );
}

#[test]
fn concurrent_multi_shard_commands_never_deadlock() {
    // Overlapping key sets from many clients, in every order, over four shards.
    let s = Server::start_with(&["--shards", "4"]);
    let url = s.url();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..300 {
                    let a = format!("dl{}", (w * 7 + i) % 16);
                    let b = format!("dl{}", (w * 3 + i * 5) % 16);
                    let _: () = c.mset(&[(&a, i), (&b, w)]).unwrap();
                    let _: Option<i64> =
                        redis::cmd("COPY").arg(&a).arg(format!("cp{w}")).arg("REPLACE").query(&mut c).unwrap();
                    let _: i64 = c.del(&[format!("cp{w}"), b.clone()]).unwrap();
                }
            })
        })
        .collect();
    let start = std::time::Instant::now();
    for h in workers {
        h.join().unwrap();
    }
    assert!(start.elapsed() < shoal_tests::DEADLINE);
    let mut c = s.redis();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(n <= 16);
}

#[test]
fn pipelines_mixing_single_and_multi_shard_commands_keep_their_order() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut r = s.raw();
    let mut wire = Vec::new();
    let cmds: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["MSET", "a", "2", "b", "2", "c", "2"],
        &["GET", "a"],
        &["SET", "a", "3"],
        &["MGET", "a", "b", "c"],
        &["DEL", "b", "c"],
        &["EXISTS", "a", "b", "c"],
        &["PING"],
        &["GET", "a"],
    ];
    for c in cmds {
        let a: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
        wire.extend(shoal_tests::Raw::encode(&a));
    }
    r.send(&wire);
    assert_eq!(r.read(), ok());
    assert_eq!(r.read(), ok());
    assert_eq!(r.read(), bulk("2"));
    assert_eq!(r.read(), ok());
    assert_eq!(r.read(), Frame::Array(vec![bulk("3"), bulk("2"), bulk("2")]));
    assert_eq!(r.read(), int(2));
    assert_eq!(r.read(), int(1));
    assert_eq!(r.read(), Frame::Simple("PONG".into()));
    assert_eq!(r.read(), bulk("3"));
}
