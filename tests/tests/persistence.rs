//! Snapshots: SAVE writes dump.rdb in the data directory, a restart loads it, shutdown saves
//! (unless told not to), and a damaged snapshot stops the start with a clear error.

use redis::Commands;
use shoal_tests::{describe_key, fresh_dir, populate_every_type, Server};

#[test]
fn save_then_restart_keeps_every_type() {
    let dir = fresh_dir("save");
    let mut s = Server::start_in(&dir, &["--shards", "3"]);
    let mut c = s.redis();
    let keys = populate_every_type(&mut c);
    let before: Vec<String> = keys.iter().map(|(db, k)| describe_key(&mut c, *db, k)).collect();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    assert_ne!(s.info_field("rdb_changes_since_last_save"), "0");
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    assert_eq!(s.info_field("rdb_changes_since_last_save"), "0");
    assert_eq!(s.info_field("rdb_saves"), "1");
    let lastsave: u64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    assert_eq!(lastsave.to_string(), s.info_field("rdb_last_save_time"));
    assert!(dir.join("dump.rdb").exists());
    // SIGKILL: no shutdown save, so what comes back is what SAVE wrote.
    s.signal_and_wait(libc::SIGKILL);
    let s = Server::start_in(&dir, &["--shards", "2"]);
    let mut c = s.redis();
    let after: Vec<String> = keys.iter().map(|(db, k)| describe_key(&mut c, *db, k)).collect();
    assert_eq!(after, before, "every key comes back as it was saved, on a different shard count");
    assert_eq!(s.info_field("rdb_last_load_keys_loaded"), keys.len().to_string());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_saves_unless_told_not_to() {
    let dir = fresh_dir("shutdown");
    // Redis's default save points, as a node started without --save has them.
    let points = ["--save", "3600 1 300 100 60 10000"];
    let restart = |s: &mut Server| {
        s.signal_and_wait(libc::SIGTERM);
        Server::start_in(&dir, &points)
    };
    let mut s = Server::start_in(&dir, &points);
    let _: () = s.redis().set("by-sigterm", "1").unwrap();
    let s = restart(&mut s);
    let got: Option<String> = s.redis().get("by-sigterm").unwrap();
    assert_eq!(got.as_deref(), Some("1"), "SIGTERM saves, as Redis does with save points set");

    let mut c = s.redis();
    let _: () = c.set("not-saved", "1").unwrap();
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut c);
    let mut s = {
        let mut old = s;
        shoal_tests::wait_for("SHUTDOWN NOSAVE to stop the node", || !old.is_running());
        Server::start_in(&dir, &points)
    };
    let mut c = s.redis();
    let gone: Option<String> = c.get("not-saved").unwrap();
    assert_eq!(gone, None, "SHUTDOWN NOSAVE writes nothing");
    let kept: Option<String> = c.get("by-sigterm").unwrap();
    assert_eq!(kept.as_deref(), Some("1"));

    // With no save points, stopping does not save, but SHUTDOWN SAVE does.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("save").arg("").query(&mut c).unwrap();
    let _: () = c.set("no-points", "1").unwrap();
    let mut s = restart(&mut s);
    let mut c = s.redis();
    let none: Option<String> = c.get("no-points").unwrap();
    assert_eq!(none, None);
    let _: () = c.set("forced", "1").unwrap();
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("SAVE").query(&mut c);
    shoal_tests::wait_for("SHUTDOWN SAVE to stop the node", || !s.is_running());
    let s = Server::start_in(&dir, &[]);
    let forced: Option<String> = s.redis().get("forced").unwrap();
    assert_eq!(forced.as_deref(), Some("1"));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_snapshot_stops_start_up() {
    let dir = fresh_dir("damaged");
    let mut s = Server::start_in(&dir, &[]);
    let value: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let _: () = s.redis().set("k", value).unwrap();
    let _: () = redis::cmd("SAVE").query(&mut s.redis()).unwrap();
    s.signal_and_wait(libc::SIGKILL);
    let path = dir.join("dump.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new(shoal_tests::shoal_bin())
        .args(["--port", "0", "--bind", "127.0.0.1", "--data-dir"])
        .arg(&dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run shoal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a damaged snapshot must stop the start");
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains("checksum mismatch"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_saved(s: &Server) {
    shoal_tests::wait_for("the background save to finish", || s.info_field("rdb_bgsave_in_progress") == "0");
    assert_eq!(s.info_field("rdb_last_bgsave_status"), "ok");
}

#[test]
fn bgsave_is_a_point_in_time_across_shards_under_writes() {
    let dir = fresh_dir("bgsave-pit");
    let mut s = Server::start_in(&dir, &["--shards", "4"]);
    let mut c = s.redis();
    let filler = "f".repeat(100);
    let mut p = redis::pipe();
    for i in 0..50_000 {
        p.set(format!("k:{i}"), &filler).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    // Counters in many slots, always written together in one transaction: any consistent
    // snapshot has them all equal.
    let counters: Vec<String> = (0..16).map(|i| format!("c:{i}")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (stop, url, counters) = (stop.clone(), s.url(), counters.clone());
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut round = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    round += 1;
                    if w == 0 {
                        let mut t = redis::pipe();
                        t.atomic();
                        for k in &counters {
                            t.incr(k, 1).ignore();
                        }
                        let _: () = t.query(&mut c).unwrap();
                    } else {
                        // Churn: overwrite, delete and create keys the walk has not reached.
                        let i = (round * 7919) % 50_000;
                        let _: () = c.set(format!("k:{i}"), round.to_string()).unwrap();
                        let _: () = c.del(format!("k:{}", (i + 1) % 50_000)).unwrap();
                        let _: () = c.set(format!("new:{round}"), "x").unwrap();
                    }
                }
            })
        })
        .collect();
    shoal_tests::wait_for("writers to get going", || {
        let v: Option<u64> = c.get("c:0").unwrap();
        v.unwrap_or(0) > 100
    });
    let reply: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(reply, "Background saving started");
    let again: redis::RedisResult<String> = redis::cmd("BGSAVE").query(&mut c);
    assert!(again.is_err() || s.info_field("rdb_bgsave_in_progress") == "0", "one save at a time");
    wait_saved(&s);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    s.signal_and_wait(libc::SIGKILL);
    let s = Server::start_in(&dir, &[]);
    let mut c = s.redis();
    let values: Vec<Option<u64>> = counters.iter().map(|k| c.get(k).unwrap()).collect();
    assert!(values[0].is_some_and(|v| v > 100), "the counters were saved: {values:?}");
    assert!(values.iter().all(|v| *v == values[0]), "a torn snapshot: {values:?}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_keeps_what_was_there_when_it_started() {
    let dir = fresh_dir("bgsave-flush");
    let mut s = Server::start_in(&dir, &["--shards", "2"]);
    let mut c = s.redis();
    let mut p = redis::pipe();
    for i in 0..30_000 {
        p.set(format!("k:{i}"), i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let _: () = redis::cmd("SELECT").arg(1).query(&mut c).unwrap();
    let _: () = c.set("in-db1", "1").unwrap();
    // Pipelined right behind BGSAVE, before the walk can have got far.
    let mut p = redis::pipe();
    p.cmd("BGSAVE").ignore().cmd("SWAPDB").arg(0).arg(1).ignore().cmd("FLUSHDB").ignore().set("after", "1").ignore();
    let _: () = p.query(&mut c).unwrap();
    wait_saved(&s);
    s.signal_and_wait(libc::SIGKILL);
    let s = Server::start_in(&dir, &[]);
    let mut c = s.redis();
    let n: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 30_000, "db 0 as it was when BGSAVE started");
    let v: Option<u64> = c.get("k:29999").unwrap();
    assert_eq!(v, Some(29999));
    let _: () = redis::cmd("SELECT").arg(1).query(&mut c).unwrap();
    let keys: Vec<String> = c.keys("*").unwrap();
    assert_eq!(keys, vec!["in-db1".to_string()], "db 1 as it was, without later writes");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_bgsave_reports_err_and_the_node_carries_on() {
    let dir = fresh_dir("bgsave-fail");
    let s = Server::start_in(&dir, &[]);
    let mut c = s.redis();
    let mut p = redis::pipe();
    for i in 0..20_000 {
        p.set(format!("k:{i}"), i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    // The temporary file's name is taken by a directory: the save cannot be written.
    std::fs::create_dir_all(dir.join(format!("dump.tmp-{}", s.pid()))).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    shoal_tests::wait_for("the failed save to end", || s.info_field("rdb_bgsave_in_progress") == "0");
    assert_eq!(s.info_field("rdb_last_bgsave_status"), "err");
    // Writes go on, and the shards are not left walking a dead snapshot.
    let _: () = c.set("after", "1").unwrap();
    std::fs::remove_dir_all(dir.join(format!("dump.tmp-{}", s.pid()))).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    shoal_tests::wait_for("the next save to end", || s.info_field("rdb_bgsave_in_progress") == "0");
    assert_eq!(s.info_field("rdb_last_bgsave_status"), "ok");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
