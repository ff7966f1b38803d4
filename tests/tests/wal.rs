//! The write-ahead log: what it brings back after a kill (every type, every kind of write,
//! on another shard count), rewrites, turning it on and off live, segment rotation, and what a
//! damaged log does at start-up (a torn tail is cut with a warning; damage elsewhere stops the
//! start with the file and offset).

use redis::Commands;
use shoal_tests::{describe_key, fresh_dir, populate_every_type, wait_for, Server};
use std::path::{Path, PathBuf};

const ALWAYS: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    ALWAYS.iter().chain(extra).copied().collect()
}

fn run(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Every key of every database, described.
fn everything(c: &mut redis::Connection) -> Vec<String> {
    let mut all = Vec::new();
    for db in 0..16 {
        let _: () = redis::cmd("SELECT").arg(db).query(c).unwrap();
        let mut keys: Vec<String> = c.keys("*").unwrap();
        keys.sort();
        for k in keys {
            all.push(format!("{db} {k} {}", describe_key(c, db, &k)));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    all
}

/// The segment files in the log directory, in order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut s: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    s.sort();
    s
}

/// Starts shoal expecting it to fail; returns its stderr.
fn failed_start(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(shoal_tests::shoal_bin())
        .args(["--port", "0", "--bind", "127.0.0.1", "--save=", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run shoal");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "shoal started on a damaged log: {stderr}");
    stderr
}

#[test]
fn every_kind_of_write_comes_back_after_a_kill_on_another_shard_count() {
    let dir = fresh_dir("every");
    let mut s = Server::start_in(&dir, &with(&["--shards", "3"]));
    let mut c = s.redis();
    populate_every_type(&mut c);
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    // Writes whose records differ from the command: pops become removals, relative times
    // absolute, floats their results; and multi-shard ones, which go to the log as one frame.
    for args in [
        &["LPOP", "l:big", "3"][..],
        &["RPOPLPUSH", "l:small", "{x}moved"],
        &["SPOP", "set:big", "5"],
        &["SRANDMEMBER", "set:big"],
        &["ZPOPMIN", "z:big", "2"],
        &["HINCRBYFLOAT", "h:small", "f2", "0.25"],
        &["INCRBYFLOAT", "f", "2.5"],
        &["SET", "ttl-rel", "v", "EX", "1000"],
        &["EXPIRE", "s:short", "5000"],
        &["PERSIST", "s:ttl"],
        &["SETRANGE", "s:short", "2", "XY"],
        &["APPEND", "s:lzf", "tail"],
        &["SETBIT", "bits", "77", "1"],
        &["BITFIELD", "bf", "INCRBY", "u8", "0", "200", "INCRBY", "u8", "0", "100"],
        &["PFADD", "hll", "a", "b", "c"],
        &["GEOADD", "geo", "13.36", "38.11", "palermo"],
        &["MSET", "{a}m1", "1", "{b}m2", "2", "{c}m3", "3"],
        &["RENAME", "{a}m1", "{b}renamed"],
        &["COPY", "h:big", "{zz}h-copy"],
        &["SINTERSTORE", "{q}inter", "set:small", "set:ints"],
        &["ZUNIONSTORE", "{r}union", "2", "z:small", "z:big"],
        &["LMOVE", "l:plain", "{w}dst", "LEFT", "RIGHT"],
        &["SMOVE", "set:small", "{v}smoved", "a"],
        &["XADD", "st", "*", "auto", "id"],
        &["XTRIM", "st", "MAXLEN", "200"],
        &["XCLAIM", "st", "g", "carol", "0", "1000-1"],
        &["XAUTOCLAIM", "st", "g", "dave", "0", "0-0", "COUNT", "1"],
        &["XGROUP", "CREATECONSUMER", "st", "g", "erin"],
        &["GETDEL", "s:int"],
        &["DEL", "set:ints", "{nope}missing"],
        &["MOVE", "s:bin", "4"],
        &["HSET", "h:ttl", "a", "1", "b", "2"],
        &["HPEXPIRE", "h:ttl", "999999", "FIELDS", "1", "a"],
        &["SET", "gone-soon", "v", "PX", "1"],
    ] {
        run(&mut c, args);
    }
    // A transaction across shards, and whole-database commands.
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("{a}tx1")
        .arg("1")
        .cmd("INCR")
        .arg("{b}tx2")
        .cmd("LPUSH")
        .arg("{c}tx3")
        .arg("x")
        .query(&mut c)
        .unwrap();
    for args in [
        &["SELECT", "5"][..],
        &["SET", "in5", "v"],
        &["SELECT", "6"],
        &["SET", "in6", "v"],
        &["FLUSHDB"],
        &["SET", "after-flush", "v"],
        &["SWAPDB", "3", "5"],
        &["SELECT", "0"],
    ] {
        run(&mut c, args);
    }
    let before = everything(&mut c);
    assert!(before.len() > 30, "{before:?}");
    s.signal_and_wait(libc::SIGKILL);

    let s = Server::start_in(&dir, &with(&["--shards", "2"]));
    let mut c = s.redis();
    assert_eq!(everything(&mut c), before, "the log replays to the same keyspace");
    // Hash field TTLs replay too.
    let ttls: Vec<i64> = redis::cmd("HPTTL").arg("h:ttl").arg("FIELDS").arg(2).arg("a").arg("b").query(&mut c).unwrap();
    assert!(ttls[0] > 0 && ttls[1] == -1, "{ttls:?}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_last_write_is_cut_off_with_a_warning() {
    let dir = fresh_dir("torn");
    let mut s = Server::start_in(&dir, &ALWAYS);
    let mut c = s.redis();
    for i in 0..100 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    s.signal_and_wait(libc::SIGKILL);
    // A crash in the middle of a write: a frame header promising more than made it to disk.
    let last = segments(&dir).pop().unwrap();
    let good_len = std::fs::metadata(&last).unwrap().len();
    let mut torn = std::fs::OpenOptions::new().append(true).open(&last).unwrap();
    std::io::Write::write_all(&mut torn, &[200, 0, 0, 0, 1, 2, 3, 4, b'x', b'y']).unwrap();
    drop(torn);

    let mut child = std::process::Command::new(shoal_tests::shoal_bin())
        .args(["--port", "0", "--bind", "127.0.0.1", "--save=", "--log-level", "warn", "--data-dir"])
        .arg(&dir)
        .args(ALWAYS)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The warning comes once the file is cut, before the node is ready; read it, then stop
    // the node.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("truncated a torn write") && line.contains(&last.display().to_string()), "{line}");
    assert!(line.contains(&format!("offset={good_len}")) && line.contains("dropped_bytes=10"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::metadata(&last).unwrap().len(), good_len, "the torn bytes are gone from the file");

    let s = Server::start_in(&dir, &ALWAYS);
    let mut c = s.redis();
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 100, "every complete write is there");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damage_before_the_end_stops_start_up_with_the_file_and_offset() {
    let dir = fresh_dir("damaged");
    let mut s = Server::start_in(&dir, &ALWAYS);
    let mut c = s.redis();
    for i in 0..50 {
        let _: () = c.set(format!("key-{i}"), "v".repeat(100)).unwrap();
    }
    s.signal_and_wait(libc::SIGKILL);
    let seg = segments(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    // Inside a value, halfway through: the frame's checksum no longer matches.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let stderr = failed_start(&dir, &ALWAYS);
    assert!(stderr.contains(&seg.display().to_string()), "{stderr}");
    assert!(stderr.contains("corrupt at offset") && stderr.contains("frame checksum mismatch"), "{stderr}");
    // The frame the damage is in starts at or before it.
    let offset: usize = stderr.split("corrupt at offset ").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
    assert!(offset <= at && at - offset < 200, "offset {offset}, damage at {at}: {stderr}");
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "a refused start changes nothing");

    // A damaged base snapshot stops the start too.
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let base = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("base-"));
    let base = base.unwrap();
    std::fs::write(&base, b"REDIS0010garbage").unwrap();
    let stderr = failed_start(&dir, &ALWAYS);
    assert!(stderr.contains(&base.display().to_string()), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_rewritten(s: &Server, n: u64) {
    wait_for("the log rewrite to finish", || {
        s.info_field("aof_rewrite_in_progress") == "0" && s.info_field("aof_rewrites").parse::<u64>().unwrap() >= n
    });
    assert_eq!(s.info_field("aof_last_bgrewrite_status"), "ok");
}

#[test]
fn bgrewriteaof_starts_the_log_from_a_new_base_and_drops_the_old_segments() {
    let dir = fresh_dir("rewrite");
    let mut s = Server::start_in(&dir, &with(&["--shards", "3"]));
    let mut c = s.redis();
    for i in 0..2000 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    // Overwrites: the new base holds each key once, however often it was written.
    for i in 0..2000 {
        let _: () = c.incr(format!("k{i}"), 1).unwrap();
    }
    let size_before: u64 = s.info_field("aof_current_size").parse().unwrap();
    let old = segments(&dir);
    let reply: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    assert_eq!(reply, "Background append only file rewriting started");
    // Writes during the rewrite land in the new segment.
    for i in 0..500 {
        let _: () = c.set(format!("during{i}"), i).unwrap();
    }
    wait_rewritten(&s, 1);
    for p in &old {
        assert!(!p.exists(), "{} outlived the rewrite", p.display());
    }
    let size_after: u64 = s.info_field("aof_current_size").parse().unwrap();
    assert!(size_after < size_before, "rewrite shrank the log: {size_before} -> {size_after}");
    let _: () = c.set("after", "1").unwrap();
    s.signal_and_wait(libc::SIGKILL);

    let s = Server::start_in(&dir, &ALWAYS);
    let mut c = s.redis();
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 2000 + 500 + 1);
    let v: Vec<u64> = c.mget(&["k0", "k1999", "during499"]).unwrap();
    assert_eq!(v, vec![1, 2000, 499]);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The log's base carries the function libraries, as Redis's AOF preamble does: a data
/// directory that lost `functions.rdb` gets them back from the log.
#[test]
fn the_logs_base_carries_the_function_libraries() {
    let dir = fresh_dir("rewrite-functions");
    let mut s = Server::start_in(&dir, &ALWAYS);
    let mut c = s.redis();
    let lib = "#!lua name=logged\nredis.register_function('logged', function() return 'from the base' end)";
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg(lib).query(&mut c).unwrap();
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    wait_rewritten(&s, 1);
    s.signal_and_wait(libc::SIGKILL);
    std::fs::remove_file(dir.join("functions.rdb")).unwrap();

    let s = Server::start_in(&dir, &ALWAYS);
    let reply: String = redis::cmd("FCALL").arg("logged").arg(0).query(&mut s.redis()).unwrap();
    assert_eq!(reply, "from the base");
    assert!(dir.join("functions.rdb").exists(), "the node keeps them again");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_log_rotates_segments_and_rewrites_itself_as_it_grows() {
    let dir = fresh_dir("grow");
    let args = [
        "--appendonly",
        "yes",
        "--wal-segment-size",
        "1mb",
        "--auto-aof-rewrite-min-size",
        "3mb",
        "--auto-aof-rewrite-percentage",
        "100",
    ];
    let mut s = Server::start_in(&dir, &args);
    let mut c = s.redis();
    let value = "v".repeat(1000);
    // About 2.5 MB: three segments, below the automatic rewrite's minimum size.
    for i in 0..2500 {
        let _: () = c.set(format!("k{}", i % 100), &value).unwrap();
    }
    wait_for("the writer to catch up", || s.info_field("aof_buffer_length") == "0");
    assert!(segments(&dir).len() >= 3, "{:?}", segments(&dir));
    assert_eq!(s.info_field("aof_rewrites"), "0");
    // Past 3 MB the log rewrites itself: 100 keys make a base of about 100 kB.
    for i in 0..1000 {
        let _: () = c.set(format!("k{}", i % 100), &value).unwrap();
    }
    wait_rewritten(&s, 1);
    assert!(segments(&dir).len() <= 2, "{:?}", segments(&dir));
    s.signal_and_wait(libc::SIGKILL);
    let s = Server::start_in(&dir, &args);
    let n: usize = redis::cmd("DBSIZE").query(&mut s.redis()).unwrap();
    assert_eq!(n, 100);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn appendonly_turned_on_live_keeps_what_was_there_and_what_follows() {
    let dir = fresh_dir("live");
    let mut s = Server::start_in(&dir, &[]);
    let mut c = s.redis();
    for i in 0..1000 {
        let _: () = c.set(format!("old{i}"), i).unwrap();
    }
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("yes").query(&mut c).unwrap();
    wait_rewritten(&s, 1);
    assert_eq!(s.info_field("aof_enabled"), "1");
    let _: () = c.set("new", "1").unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("always").query(&mut c).unwrap();
    let f: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("appendfsync").query(&mut c).unwrap();
    assert_eq!(f, vec!["appendfsync", "always"]);
    let _: () = c.set("new2", "1").unwrap();
    s.signal_and_wait(libc::SIGKILL);

    let mut s = Server::start_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.redis();
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1002, "the base has the old keys, the log the new ones");

    // Turned off, the log stops; a later start without it has only what a snapshot saved.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("no").query(&mut c).unwrap();
    wait_for("the log to stop", || s.info_field("aof_enabled") == "0");
    let _: () = c.set("unlogged", "1").unwrap();
    s.signal_and_wait(libc::SIGKILL);
    let s = Server::start_in(&dir, &[]);
    let n: usize = redis::cmd("DBSIZE").query(&mut s.redis()).unwrap();
    assert_eq!(n, 0, "no dump.rdb was ever saved, and the log is off");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgrewriteaof_without_the_log_is_an_error() {
    let s = Server::start();
    let r: redis::RedisResult<String> = redis::cmd("BGREWRITEAOF").query(&mut s.redis());
    let e = r.unwrap_err();
    assert!(e.to_string().contains("appendonly no"), "{e}");
}
