//! Ecosystem clients other than the `redis` crate: redis-cli and redis-py.

use redis::Commands;
use shoal_tests::{RedisServer, Server};
use std::process::Command;

fn redis_cli(s: &Server, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(s.port.to_string())
        .args(args)
        .output()
        .expect("redis-cli is installed");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_basic_session() {
    let s = Server::start();
    assert_eq!(redis_cli(&s, &["PING"]).trim(), "PONG");
    assert_eq!(redis_cli(&s, &["SET", "a", "1"]).trim(), "OK");
    assert_eq!(redis_cli(&s, &["GET", "a"]).trim(), "1");
    // --no-raw: the formatted view redis-cli shows on a terminal, where a RESP3 map is
    // rendered as numbered key => value lines.
    let hello = redis_cli(&s, &["--no-raw", "-3", "HELLO", "3"]);
    assert!(hello.starts_with("1# \"server\" => \"redis\"\n"), "RESP3 map rendering: {hello}");
    assert!(hello.contains("3# \"proto\" => (integer) 3"), "{hello}");
    assert!(redis_cli(&s, &["INFO", "server"]).contains("redis_version:7.0.15"));
    // redis-cli reads commands from stdin as a script, as operators pipe them.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf 'SET b 2\\nGET b\\nDBSIZE\\n' | redis-cli -p {}", s.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n2\n2\n");
}

#[test]
fn redis_cli_pipe_mode_mass_insert() {
    let s = Server::start();
    let mut proto = String::new();
    for i in 0..10_000 {
        let (k, v) = (format!("mass:{i}"), i.to_string());
        proto.push_str(&format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()));
    }
    let path = s.dir.join("mass.txt");
    std::fs::write(&path, proto).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("redis-cli -p {} --pipe < {}", s.port, path.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("errors: 0, replies: 10000"), "{text}");
    assert_eq!(redis_cli(&s, &["DBSIZE"]).trim(), "10000");
}

#[test]
fn redis_py_plain_pipelined_resp3_and_cluster_clients() {
    let s = Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/compat_redis_py.py");
    let out = Command::new("python3").arg(script).arg(s.port.to_string()).output().expect("python3 is installed");
    assert!(
        out.status.success(),
        "redis-py compatibility failed (is `pip install redis` done?):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the differential script for one command family against a fresh redis-server and a
/// three-shard Shoal: 100,000 commands in RESP2 (two seeds) and 50,000 in RESP3.
fn differential(family: &str) {
    let redis = RedisServer::start();
    let s = Server::start_with(&["--shards", "3"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/differential.py");
    for (count, seed, protocol) in [("50000", "1", "2"), ("50000", "2", "2"), ("50000", "3", "3")] {
        let out = Command::new("python3")
            .args([script, &redis.port.to_string(), &s.port.to_string(), family, count, seed, protocol])
            .output()
            .expect("python3 is installed");
        assert!(
            out.status.success(),
            "{family}, seed {seed}, RESP{protocol}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn strings_and_keys_answer_exactly_like_redis_server() {
    differential("strings");
}

#[test]
fn hashes_answer_exactly_like_redis_server() {
    differential("hashes");
}

#[test]
fn sets_answer_exactly_like_redis_server() {
    differential("sets");
}

#[test]
fn lists_answer_exactly_like_redis_server() {
    differential("lists");
}

#[test]
fn sorted_sets_answer_exactly_like_redis_server() {
    differential("zsets");
}

#[test]
fn streams_answer_exactly_like_redis_server() {
    differential("streams");
}

#[test]
fn bitmaps_answer_exactly_like_redis_server() {
    differential("bitmaps");
}

#[test]
fn sort_answers_exactly_like_redis_server() {
    differential("sort");
}

#[test]
fn hyperloglogs_answer_exactly_like_redis_server() {
    differential("hll");
}

#[test]
fn geo_answers_exactly_like_redis_server() {
    differential("geo");
}

#[test]
fn values_dumped_by_redis_restore_in_shoal() {
    let redis = RedisServer::start();
    let s = Server::start();
    let mut r = redis.redis();
    let mut c = s.redis();
    // Redis 7.0 dumps small values in its compact encodings: listpack hashes and sorted sets,
    // intsets, quicklists of listpacks (and plain nodes for large elements).
    let big = "v".repeat(10_000);
    let setup: &[&[&str]] = &[
        &[
            "HSET",
            "h",
            "f",
            "1",
            "g",
            "-70000",
            "long",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ],
        &["ZADD", "z", "1", "a", "2.5", "b", "-3", "c", "1e20", "d"],
        &["SADD", "si", "1", "2", "300000", "-5"],
        &["SADD", "ss", "x", "y"],
        &["RPUSH", "l", "a", "12", "-100000", "b"],
        &["RPUSH", "lbig", "small", &big],
    ];
    for cmd in setup {
        let _: redis::Value = redis::cmd(cmd[0]).arg(&cmd[1..]).query(&mut r).unwrap();
    }
    for key in ["h", "z", "si", "ss", "l", "lbig"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut r).unwrap();
        let _: () =
            redis::cmd("RESTORE").arg(key).arg(0).arg(payload).query(&mut c).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let hash: std::collections::BTreeMap<String, String> = c.hgetall("h").unwrap();
    let want: std::collections::BTreeMap<String, String> = r.hgetall("h").unwrap();
    assert_eq!(hash, want);
    let z: Vec<(String, f64)> = c.zrange_withscores("z", 0, -1).unwrap();
    assert_eq!(z, r.zrange_withscores::<_, Vec<(String, f64)>>("z", 0, -1).unwrap());
    for key in ["si", "ss"] {
        let mut a: Vec<String> = c.smembers(key).unwrap();
        let mut b: Vec<String> = r.smembers(key).unwrap();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{key}");
    }
    for key in ["l", "lbig"] {
        assert_eq!(
            c.lrange::<_, Vec<String>>(key, 0, -1).unwrap(),
            r.lrange::<_, Vec<String>>(key, 0, -1).unwrap(),
            "{key}"
        );
    }
    // And back: what Shoal dumps, Redis restores.
    for key in ["h", "z", "si", "l"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
        let _: () = redis::cmd("RESTORE").arg(format!("{key}:back")).arg(0).arg(payload).query(&mut r).unwrap();
    }
    let back: std::collections::BTreeMap<String, String> = r.hgetall("h:back").unwrap();
    assert_eq!(back, want);
}
