//! `--import-rdb`: a dump.rdb written by Debian's redis-server, with every type in its small
//! and large encodings, loads into Shoal with the same keys, types, expiries and contents.

use redis::{Commands, Value};
use shoal_tests::{RedisServer, Server};

/// Everything a client can observe about a key, in a comparable form.
fn describe(con: &mut redis::Connection, db: i64, key: &str) -> String {
    let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
    let ty: String = redis::cmd("TYPE").arg(key).query(con).unwrap();
    let expire: i64 = redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap();
    let q = |con: &mut redis::Connection, args: &[&str]| -> Value {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(con).unwrap()
    };
    let body = match ty.as_str() {
        "string" => format!("{:?}", q(con, &["GET", key])),
        "list" => format!("{:?}", q(con, &["LRANGE", key, "0", "-1"])),
        "set" => {
            let mut m: Vec<Vec<u8>> = con.smembers(key).unwrap();
            m.sort();
            format!("{m:?}")
        }
        "hash" => {
            let mut h: Vec<(Vec<u8>, Vec<u8>)> = con.hgetall(key).unwrap();
            h.sort();
            format!("{h:?}")
        }
        "zset" => format!("{:?}", q(con, &["ZRANGE", key, "0", "-1", "WITHSCORES"])),
        "stream" => {
            // radix-tree-nodes counts Redis's internal tree nodes, which depend on how the tree
            // was built, not on the stream's contents.
            let Value::Array(mut info) = q(con, &["XINFO", "STREAM", key]) else { panic!("XINFO STREAM") };
            if let Some(i) = info.iter().position(|v| *v == Value::BulkString(b"radix-tree-nodes".to_vec())) {
                info.drain(i..i + 2);
            }
            format!(
                "{:?} {info:?} {:?} {:?}",
                q(con, &["XRANGE", key, "-", "+"]),
                q(con, &["XINFO", "GROUPS", key]),
                q(con, &["XPENDING", key, "g"]),
            )
        }
        other => panic!("unexpected type {other}"),
    };
    format!("{ty} expire={expire} {body}")
}

fn populate(r: &mut redis::Connection) -> Vec<(i64, String)> {
    let big = "x".repeat(10_000);
    let run = |r: &mut redis::Connection, args: &[&str]| {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        let _: Value = c.query(r).unwrap();
    };
    let mut keys = Vec::new();
    let mut add = |db: i64, k: &str| keys.push((db, k.to_string()));
    // Strings: integer, short, compressible (LZF), binary, and one with a TTL.
    run(r, &["SET", "s:int", "-12345"]);
    run(r, &["SET", "s:short", "hello"]);
    run(r, &["SET", "s:lzf", &"ab".repeat(200)]);
    let _: () = r.set("s:bin", b"\x00\xff\r\n".as_slice()).unwrap();
    run(r, &["SET", "s:ttl", "v", "PXAT", "4102444800123"]);
    for k in ["s:int", "s:short", "s:lzf", "s:bin", "s:ttl"] {
        add(0, k);
    }
    // Lists: one listpack node, many nodes, and a plain node for a 10 kB element.
    run(r, &["RPUSH", "l:small", "a", "1", "-7", "b"]);
    for i in 0..2000 {
        run(r, &["RPUSH", "l:big", &format!("element-{i}")]);
    }
    run(r, &["RPUSH", "l:plain", "x", &big, "y"]);
    // Sets: intset, hashtable.
    run(r, &["SADD", "set:ints", "1", "2", "-300", "70000", "5000000000"]);
    for i in 0..600 {
        run(r, &["SADD", "set:big", &format!("member-{i}")]);
    }
    run(r, &["SADD", "set:small", "a", "b", "c"]);
    // Hashes: listpack and hashtable.
    run(r, &["HSET", "h:small", "f1", "v1", "f2", "2", "f3", "-3"]);
    for i in 0..300 {
        run(r, &["HSET", "h:big", &format!("field-{i}"), &format!("value-{i}")]);
    }
    // Sorted sets: listpack (with inf and fractions) and skiplist.
    run(r, &["ZADD", "z:small", "1.5", "a", "-inf", "b", "+inf", "c", "3", "d"]);
    for i in 0..300 {
        run(r, &["ZADD", "z:big", &format!("{}.25", i), &format!("m{i}")]);
    }
    // A stream with two field layouts, a deleted entry, a group with pending entries.
    for i in 0..250 {
        run(r, &["XADD", "st", &format!("1000-{i}"), "a", &i.to_string(), "b", "x"]);
    }
    run(r, &["XADD", "st", "2000-0", "other", "layout"]);
    run(r, &["XDEL", "st", "1000-5"]);
    run(r, &["XGROUP", "CREATE", "st", "g", "0"]);
    run(r, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "st", ">"]);
    run(r, &["XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "st", ">"]);
    run(r, &["XACK", "st", "g", "1000-0"]);
    for k in [
        "l:small",
        "l:big",
        "l:plain",
        "set:ints",
        "set:big",
        "set:small",
        "h:small",
        "h:big",
        "z:small",
        "z:big",
        "st",
    ] {
        add(0, k);
    }
    // Another database.
    run(r, &["SELECT", "3"]);
    run(r, &["SET", "elsewhere", "db3"]);
    run(r, &["SELECT", "0"]);
    add(3, "elsewhere");
    keys
}

#[test]
fn a_redis_dump_imports_key_by_key() {
    let redis = RedisServer::start();
    let mut r = redis.redis();
    let keys = populate(&mut r);
    let _: () = redis::cmd("SAVE").query(&mut r).unwrap();
    let rdb = redis.dir.join("dump.rdb");
    let s = Server::start_with(&["--import-rdb", rdb.to_str().unwrap()]);
    let mut c = s.redis();
    for (db, key) in &keys {
        let want = describe(&mut r, *db, key);
        let got = describe(&mut c, *db, key);
        assert_eq!(got, want, "key {key} in db {db}");
    }
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut r).unwrap();
    let want_size: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let db3: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!((dbsize, db3), (want_size, 1), "nothing more, nothing less");
}

#[test]
fn a_corrupt_dump_stops_start_up_with_file_and_offset() {
    let redis = RedisServer::start();
    let mut r = redis.redis();
    // Bytes LZF cannot compress, so the middle of the file is inside the value.
    let value: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let _: () = r.set("a", value).unwrap();
    let _: () = redis::cmd("SAVE").query(&mut r).unwrap();
    let rdb = redis.dir.join("dump.rdb");
    let mut bytes = std::fs::read(&rdb).unwrap();
    let bad = redis.dir.join("bad.rdb");
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&bad, &bytes).unwrap();
    let truncated = redis.dir.join("truncated.rdb");
    std::fs::write(&truncated, &bytes[..n / 3]).unwrap();
    for (file, want) in [(&bad, "checksum mismatch"), (&truncated, "offset")] {
        let out = std::process::Command::new(shoal_tests::shoal_bin())
            .args(["--port", "0", "--bind", "127.0.0.1", "--data-dir"])
            .arg(redis.dir.join("shoal-data"))
            .arg("--import-rdb")
            .arg(file)
            .output()
            .expect("run shoal");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a corrupt file must stop the start");
        assert!(stderr.contains(&file.display().to_string()) && stderr.contains(want), "{stderr}");
    }
}
