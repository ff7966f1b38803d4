//! `--import-rdb` and DEBUG RELOAD: a dump.rdb written by Debian's redis-server, with every
//! type in its small and large encodings, loads into Shoal with the same keys, types, expiries
//! and contents.

use redis::Commands;
use shoal_proto::Frame;
use shoal_tests::{bulk, describe_key, fresh_dir, populate_every_type, RedisServer, Server};

#[test]
fn a_redis_dump_imports_key_by_key() {
    let redis = RedisServer::start();
    let mut r = redis.redis();
    let keys = populate_every_type(&mut r);
    let _: () = redis::cmd("SAVE").query(&mut r).unwrap();
    let rdb = redis.dir.join("dump.rdb");
    let s = Server::start_with(&["--import-rdb", rdb.to_str().unwrap()]);
    let mut c = s.redis();
    for (db, key) in &keys {
        let want = describe_key(&mut r, *db, key);
        let got = describe_key(&mut c, *db, key);
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

#[test]
fn debug_reload_nosave_loads_a_redis_dump_into_a_running_node() {
    let redis = RedisServer::start();
    let mut r = redis.redis();
    let keys = populate_every_type(&mut r);
    let _: () = redis::cmd("SAVE").query(&mut r).unwrap();
    let dir = std::env::temp_dir().join(format!("shoal-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut s = Server::start_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.redis();
    let _: () = c.set("here-before", "1").unwrap();
    // A damaged file is refused and the data stays as it was.
    std::fs::write(s.dir.join("dump.rdb"), b"REDIS0010garbage").unwrap();
    let e = redis::cmd("DEBUG").arg("RELOAD").arg("NOSAVE").query::<()>(&mut c).unwrap_err();
    assert!(e.to_string().contains("Error trying to load the RDB dump"), "{e}");
    assert!(c.exists::<_, bool>("here-before").unwrap());

    std::fs::copy(redis.dir.join("dump.rdb"), s.dir.join("dump.rdb")).unwrap();
    let _: () = redis::cmd("DEBUG").arg("RELOAD").arg("NOSAVE").query(&mut c).unwrap();
    for (db, key) in &keys {
        assert_eq!(describe_key(&mut c, *db, key), describe_key(&mut r, *db, key), "key {key} in db {db}");
    }
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    assert!(!c.exists::<_, bool>("here-before").unwrap(), "all data is replaced");
    // DEBUG RELOAD saves first, then loads what it saved: nothing changes.
    let _: () = c.set("saved-then-reloaded", "1").unwrap();
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert!(c.exists::<_, bool>("saved-then-reloaded").unwrap());
    // The reloaded data became the write-ahead log's base: a crash comes back to it.
    let _: () = c.set("after-reload", "1").unwrap();
    s.signal_and_wait(libc::SIGKILL);
    let s = Server::start_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.redis();
    for (db, key) in &keys {
        assert_eq!(describe_key(&mut c, *db, key), describe_key(&mut r, *db, key), "key {key} in db {db}");
    }
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    let back: Vec<bool> =
        ["saved-then-reloaded", "after-reload", "here-before"].iter().map(|k| c.exists(k).unwrap()).collect();
    assert_eq!(back, vec![true, true, false]);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Function libraries travel in RDB files both ways, where Redis puts them: a Redis dump's load
/// into a node that keeps none of its own (and it keeps them from then on), and Shoal's
/// snapshot loads into redis-server with its libraries.
#[test]
fn function_libraries_travel_in_rdb_files_both_ways() {
    let lib = |name: &str| {
        format!("#!lua name={name}\nredis.register_function('{name}', function(keys) return redis.call('get', keys[1]) end)")
    };
    let redis = RedisServer::start();
    let mut r = redis.raw();
    assert_eq!(r.cmd(&["FUNCTION", "LOAD", &lib("from_redis")]), bulk("from_redis"));
    r.cmd(&["SET", "k", "v"]);
    r.cmd(&["SAVE"]);
    let rdb = redis.dir.join("dump.rdb");

    let dir = fresh_dir("rdb-functions");
    let import = ["--import-rdb", rdb.to_str().unwrap()];
    let s = Server::start_in(&dir, &import);
    assert_eq!(s.raw().cmd(&["FCALL", "from_redis", "1", "k"]), bulk("v"));
    assert_eq!(s.raw().cmd(&["FUNCTION", "LOAD", &lib("from_shoal")]), bulk("from_shoal"));
    assert_eq!(s.raw().cmd(&["FUNCTION", "DELETE", "from_redis"]), shoal_tests::ok());
    s.raw().cmd(&["SAVE"]);
    drop(s);
    // Its own libraries now win over a loaded file's.
    let s = Server::start_in(&dir, &import);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["FCALL", "from_shoal", "1", "k"]), bulk("v"));
    assert_eq!(c.cmd(&["FCALL", "from_redis", "1", "k"]), shoal_tests::err("ERR Function not found"));
    drop(s);

    let back = RedisServer::start_loading(Some(&std::fs::read(dir.join("dump.rdb")).unwrap()));
    let mut r = back.raw();
    assert_eq!(r.cmd(&["FCALL", "from_shoal", "1", "k"]), bulk("v"));
    assert!(matches!(r.cmd(&["FUNCTION", "LIST"]), Frame::Array(libs) if libs.len() == 1));
    let _ = std::fs::remove_dir_all(&dir);
}
