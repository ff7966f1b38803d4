//! maxmemory and eviction: -OOM under noeviction, the eviction policies, MEMORY and INFO.

use redis::Commands;
use shoal_proto::Frame;
use shoal_tests::{err, int, ok, Server};

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn info_u64(s: &Server, field: &str) -> u64 {
    s.info_field(field).parse().unwrap_or_else(|_| panic!("{field} is not a number"))
}

/// Writes `n` keys `prefix:i` of `size` bytes in pipelines; returns the error replies.
fn fill(s: &Server, prefix: &str, n: usize, size: usize, ttl: Option<u64>) -> Vec<String> {
    let value = "x".repeat(size);
    let ttl = ttl.map(|t| t.to_string());
    let mut r = s.raw();
    let mut errors = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut batch = Vec::new();
        for i in chunk {
            let key = format!("{prefix}:{i}");
            let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), value.as_bytes()];
            if let Some(t) = &ttl {
                args.extend([b"EX".as_slice(), t.as_bytes()]);
            }
            batch.extend(shoal_tests::Raw::encode(&args));
        }
        r.send(&batch);
        for _ in chunk {
            if let Frame::Error(e) = r.read() {
                errors.push(String::from_utf8_lossy(&e).into_owned());
            }
        }
    }
    errors
}

#[test]
fn noeviction_refuses_denyoom_commands_with_redis_error() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "before", "1"]), ok());
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "1"]), ok());
    assert_eq!(r.cmd(&["SET", "k", "v"]), err(OOM));
    assert_eq!(r.cmd(&["LPUSH", "l", "a"]), err(OOM));
    assert_eq!(r.cmd(&["MSET", "a", "1", "b", "2"]), err(OOM));
    // Reads and commands that free memory still run, as in Redis.
    assert_eq!(r.cmd(&["GET", "before"]), Frame::Bulk("1".into()));
    assert_eq!(r.cmd(&["EXPIRE", "before", "100"]), int(1));
    assert_eq!(r.cmd(&["DEL", "before"]), int(1));
    // Queueing in MULTI is refused at the limit and the transaction fails.
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["GET", "x"]), err(OOM));
    assert_eq!(r.cmd(&["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
    // A transaction queued before the limit is refused whole at EXEC if it would add data.
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["SET", "t", "1"]), Frame::Simple("QUEUED".into()));
    let mut other = s.raw();
    assert_eq!(other.cmd(&["CONFIG", "SET", "maxmemory", "1"]), ok());
    assert_eq!(r.cmd(&["EXEC"]), err(&format!("EXECABORT Transaction discarded because of: {OOM}")));
    assert!(s.info_field("errorstat_OOM").starts_with("count="), "OOM errors are counted");
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
    assert_eq!(r.cmd(&["SET", "k", "v"]), ok(), "writes resume when the limit is lifted");
}

#[test]
fn eviction_policies_keep_used_memory_at_maxmemory() {
    for policy in ["cache", "allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        let s = Server::start_with(&["--maxmemory-policy", policy]);
        let mut con = s.redis();
        let limit = info_u64(&s, "used_memory") + (4 << 20);
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut con).unwrap();
        // About 24 MB of values into a 4 MB allowance.
        let errors = fill(&s, "k", 100_000, 200, None);
        assert!(errors.is_empty(), "{policy}: writes refused: {:?}", &errors[..errors.len().min(3)]);
        let peak = info_u64(&s, "used_memory_peak");
        // Lift the limit so ticks stop evicting while the counts are read.
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut con).unwrap();
        let evicted = info_u64(&s, "evicted_keys");
        let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert!(evicted > 50_000, "{policy}: only {evicted} keys evicted");
        assert_eq!(keys + evicted, 100_000, "{policy}: every key is either there or evicted");
        assert!(
            peak as f64 <= limit as f64 * 1.05,
            "{policy}: used_memory_peak {peak} is more than 5% over maxmemory {limit}"
        );
        assert_eq!(s.info_field("maxmemory_policy"), policy);
    }
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl_then_refuse() {
    let s = Server::start_with(&["--maxmemory-policy", "volatile-lru"]);
    let mut con = s.redis();
    assert!(fill(&s, "keep", 2_000, 100, None).is_empty());
    let limit = info_u64(&s, "used_memory") + (2 << 20);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut con).unwrap();
    let errors = fill(&s, "tmp", 40_000, 200, Some(10_000));
    assert!(errors.is_empty(), "volatile keys make room for each other: {:?}", &errors[..errors.len().min(3)]);
    assert!(info_u64(&s, "evicted_keys") > 10_000);
    for i in 0..2_000 {
        let there: bool = con.exists(format!("keep:{i}")).unwrap();
        assert!(there, "keep:{i} has no TTL and must not be evicted");
    }
    // Once nothing with a TTL is left, writes that add data are refused.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("volatile-ttl").query(&mut con).unwrap();
    let errors = fill(&s, "more", 60_000, 200, None);
    assert!(errors.iter().any(|e| e.starts_with("OOM")), "writes past the limit with nothing to evict get -OOM");
    for i in 0..2_000 {
        let there: bool = con.exists(format!("keep:{i}")).unwrap();
        assert!(there, "keep:{i} survived");
    }
}

#[test]
fn memory_commands_and_info_report_usage() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "big", &"x".repeat(1000)]), ok());
    let Frame::Integer(n) = r.cmd(&["MEMORY", "USAGE", "big"]) else { panic!("MEMORY USAGE is an integer") };
    assert!((1000..1200).contains(&n), "a 1000-byte string costs {n}");
    assert_eq!(r.cmd(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]), int(n));
    assert_eq!(r.cmd(&["MEMORY", "USAGE", "missing"]), Frame::Null);
    assert_eq!(r.cmd(&["MEMORY", "USAGE", "big", "SAMPLES"]), err("ERR syntax error"));
    assert_eq!(r.cmd(&["MEMORY", "USAGE", "big", "SAMPLES", "x"]), err("ERR value is not an integer or out of range"));
    let Frame::Array(stats) = r.cmd(&["MEMORY", "STATS"]) else { panic!("MEMORY STATS is a map") };
    let keys_at = stats.iter().position(|f| *f == Frame::Bulk("keys.count".into())).expect("keys.count");
    assert_eq!(stats[keys_at + 1], int(1));
    let Frame::Bulk(doctor) = r.cmd(&["MEMORY", "DOCTOR"]) else { panic!("MEMORY DOCTOR is text") };
    assert!(String::from_utf8_lossy(&doctor).starts_with("Hi Sam"));
    assert_eq!(r.cmd(&["MEMORY", "PURGE"]), ok());
    for field in ["used_memory", "used_memory_rss", "used_memory_peak", "maxmemory"] {
        assert!(info_u64(&s, field) > 0 || field == "maxmemory", "INFO {field}");
    }
    let frag: f64 = s.info_field("mem_fragmentation_ratio").parse().unwrap();
    assert!(frag > 0.0);
}

#[test]
fn maxmemory_settings_take_redis_units_and_policy_names() {
    let s = Server::start_with(&["--maxmemory", "100mb", "--maxmemory-policy", "cache"]);
    let mut r = s.raw();
    let get = |r: &mut shoal_tests::Raw, name: &str| match r.cmd(&["CONFIG", "GET", name]) {
        Frame::Array(v) => v[1].clone(),
        other => panic!("CONFIG GET {other:?}"),
    };
    assert_eq!(get(&mut r, "maxmemory"), Frame::Bulk((100u64 << 20).to_string().into()));
    assert_eq!(get(&mut r, "maxmemory-policy"), Frame::Bulk("cache".into()));
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "4gb"]), ok());
    assert_eq!(get(&mut r, "maxmemory"), Frame::Bulk((4u64 << 30).to_string().into()));
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LFU"]), ok());
    assert_eq!(get(&mut r, "maxmemory-policy"), Frame::Bulk("allkeys-lfu".into()));
    assert!(matches!(r.cmd(&["CONFIG", "SET", "maxmemory-policy", "lru"]), Frame::Error(_)));
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory-samples", "10"]), ok());
    assert_eq!(get(&mut r, "maxmemory-samples"), Frame::Bulk("10".into()));
    // Under an LFU policy OBJECT FREQ reports Redis's counter, which starts at 5.
    assert_eq!(r.cmd(&["SET", "f", "1"]), ok());
    assert_eq!(r.cmd(&["OBJECT", "FREQ", "f"]), int(5));
    assert!(matches!(r.cmd(&["OBJECT", "IDLETIME", "f"]), Frame::Error(_)));
}
