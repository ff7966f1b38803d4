//! Snapshots: SAVE writes dump.rdb in the data directory, a restart loads it, shutdown saves
//! (unless told not to), and a damaged snapshot stops the start with a clear error.

use redis::Commands;
use shoal_tests::{describe_key, populate_every_type, Server};
use std::path::PathBuf;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-persist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

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
    let restart = |s: &mut Server| {
        s.signal_and_wait(libc::SIGTERM);
        Server::start_in(&dir, &[])
    };
    let mut s = Server::start_in(&dir, &[]);
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
        Server::start_in(&dir, &[])
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
