//! MULTI/EXEC/DISCARD/WATCH: queueing, EXECABORT, watches invalidated by writes, expiry and
//! flushes, and atomicity across shards as seen by concurrent clients.

use shoal_proto::Frame;
use shoal_tests::{arr, bulk, err, int, ok, simple, wait_for, Raw, Server};
use std::sync::atomic::{AtomicBool, Ordering};

fn queued() -> Frame {
    simple("QUEUED")
}

#[test]
fn queued_commands_run_in_order_at_exec() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["SET", "a", "1"]), queued());
    assert_eq!(r.cmd(&["INCR", "a"]), queued());
    assert_eq!(r.cmd(&["RPUSH", "b", "x", "y"]), queued());
    assert_eq!(r.cmd(&["SELECT", "2"]), queued());
    assert_eq!(r.cmd(&["GET", "a"]), queued());
    assert_eq!(r.cmd(&["BLPOP", "empty", "0"]), queued());
    assert_eq!(
        r.cmd(&["EXEC"]),
        arr(vec![ok(), int(2), int(2), ok(), Frame::Null, Frame::Null]),
        "BLPOP inside MULTI answers at once; SELECT applies to the commands after it"
    );
    assert_eq!(r.cmd(&["GET", "a"]), Frame::Null, "SELECT inside the transaction stays in effect");
    assert_eq!(r.cmd(&["SELECT", "0"]), ok());
    assert_eq!(r.cmd(&["GET", "a"]), bulk("2"));
}

#[test]
fn errors_while_queueing_abort_and_runtime_errors_do_not() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), err("ERR MULTI calls can not be nested"));
    assert_eq!(r.cmd(&["SET", "a"]), err("ERR wrong number of arguments for 'set' command"));
    assert_eq!(r.cmd(&["SET", "a", "1"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
    assert_eq!(r.cmd(&["GET", "a"]), Frame::Null, "nothing of an aborted transaction ran");
    assert_eq!(r.cmd(&["EXEC"]), err("ERR EXEC without MULTI"));
    assert_eq!(r.cmd(&["DISCARD"]), err("ERR DISCARD without MULTI"));
    assert_eq!(r.cmd(&["SET", "s", "x"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["INCR", "s"]), queued());
    assert_eq!(r.cmd(&["SET", "t", "1"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), arr(vec![err("ERR value is not an integer or out of range"), ok()]));
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["SET", "u", "1"]), queued());
    assert_eq!(r.cmd(&["DISCARD"]), ok());
    assert_eq!(r.cmd(&["GET", "u"]), Frame::Null);
}

#[test]
fn watch_fails_exec_after_a_write_an_expiry_or_a_flush() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut r = s.raw();
    let mut other = s.raw();
    // A write by another client.
    assert_eq!(r.cmd(&["WATCH", "k", "j"]), ok());
    assert_eq!(other.cmd(&["SET", "j", "1"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["SET", "k", "mine"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), Frame::Null);
    assert_eq!(r.cmd(&["GET", "k"]), Frame::Null);
    // Untouched keys: EXEC runs, and the watch ends with it.
    assert_eq!(r.cmd(&["WATCH", "k"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["SET", "k", "mine"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), arr(vec![ok()]));
    assert_eq!(other.cmd(&["SET", "k", "theirs"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["PING"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), arr(vec![simple("PONG")]), "no watch survives EXEC");
    // A key that expires after WATCH.
    assert_eq!(r.cmd(&["SET", "e", "v", "PX", "50"]), ok());
    assert_eq!(r.cmd(&["WATCH", "e"]), ok());
    wait_for("e to expire", || other.cmd(&["EXISTS", "e"]) == int(0));
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["PING"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), Frame::Null);
    // A flush of a watched key's database.
    assert_eq!(r.cmd(&["SET", "f", "v"]), ok());
    assert_eq!(r.cmd(&["WATCH", "f"]), ok());
    assert_eq!(other.cmd(&["FLUSHDB"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["PING"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), Frame::Null);
    // A failed conditional write changes nothing, so it does not fail the watch.
    assert_eq!(r.cmd(&["SET", "n", "v"]), ok());
    assert_eq!(r.cmd(&["WATCH", "n"]), ok());
    assert_eq!(other.cmd(&["SETNX", "n", "other"]), int(0));
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["PING"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), arr(vec![simple("PONG")]));
    // UNWATCH and DISCARD drop watches.
    assert_eq!(r.cmd(&["WATCH", "n"]), ok());
    assert_eq!(r.cmd(&["UNWATCH"]), ok());
    assert_eq!(other.cmd(&["SET", "n", "changed"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["PING"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), arr(vec![simple("PONG")]));
}

#[test]
fn watching_an_already_expired_key_survives_its_deletion() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), ok());
    assert_eq!(r.cmd(&["SET", "stale", "v", "PX", "1"]), ok());
    wait_for("the key to be logically expired", || r.cmd(&["PTTL", "stale"]) == int(-2));
    assert_eq!(r.cmd(&["WATCH", "stale"]), ok());
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["PING"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), arr(vec![simple("PONG")]));
}

#[test]
fn a_transaction_across_shards_is_never_seen_half_done() {
    let s = Server::start_with(&["--shards", "4"]);
    let keys = ["a", "b", "c", "d"];
    let mut setup = s.raw();
    for k in keys {
        assert_eq!(setup.cmd(&["SET", k, "0"]), ok());
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let mut w = s.raw();
            for _ in 0..300 {
                assert_eq!(w.cmd(&["MULTI"]), ok());
                for k in keys {
                    assert_eq!(w.cmd(&["INCR", k]), queued());
                }
                assert!(matches!(w.cmd(&["EXEC"]), Frame::Array(_)));
            }
            stop.store(true, Ordering::SeqCst);
        });
        let mut reader = s.raw();
        let mut reads = 0;
        while !stop.load(Ordering::SeqCst) || reads == 0 {
            let Frame::Array(vals) = reader.cmd(&["MGET", "a", "b", "c", "d"]) else { panic!("MGET answers an array") };
            assert!(vals.windows(2).all(|w| w[0] == w[1]), "a transaction was seen half applied: {vals:?}");
            reads += 1;
        }
    });
    assert_eq!(setup.cmd(&["GET", "d"]), bulk("300"));
}

/// Commands that visit every shard (DBSIZE, KEYS, FLUSHDB) and scripts run inside the
/// transaction too: another client's writes never land between the transaction's own.
#[test]
fn commands_over_every_shard_and_scripts_stay_inside_the_transaction() {
    let s = Server::start_with(&["--shards", "4"]);
    let lib = "#!lua name=t\nredis.register_function('get_a', function() return redis.call('get', 'a') end)";
    assert_eq!(s.raw().cmd(&["FUNCTION", "LOAD", lib]), bulk("t"));
    let get_b = "return redis.call('get', 'b')";
    let Frame::Bulk(sha) = s.raw().cmd(&["SCRIPT", "LOAD", get_b]) else { panic!("SCRIPT LOAD answers a SHA1") };
    let sha = String::from_utf8(sha.to_vec()).unwrap();
    let transactions: [(&[&[&str]], Frame); 2] = [
        (
            &[&["FLUSHDB"], &["SET", "a", "1"], &["SET", "b", "1"], &["DBSIZE"], &["KEYS", "c"]],
            arr(vec![ok(), ok(), ok(), int(2), arr(vec![])]),
        ),
        (
            &[
                &["SET", "a", "1"],
                &["SET", "b", "2"],
                &["FCALL", "get_a", "0"],
                &["EVALSHA", &sha, "0"],
                &["EVAL", get_b, "0"],
            ],
            arr(vec![ok(), ok(), bulk("1"), bulk("2"), bulk("2")]),
        ),
    ];
    for (cmds, inside) in transactions {
        let stop = AtomicBool::new(false);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let mut other = s.raw();
                while !stop.load(Ordering::SeqCst) {
                    assert!(matches!(other.cmd(&["DEL", "a", "b", "c"]), Frame::Integer(_)));
                    assert_eq!(other.cmd(&["SET", "c", "1"]), ok());
                }
            });
            let mut t = s.raw();
            let seen: Vec<Frame> = (0..300)
                .filter_map(|_| {
                    t.cmd(&["MULTI"]);
                    for cmd in cmds {
                        t.cmd(cmd);
                    }
                    let replies = t.cmd(&["EXEC"]);
                    (replies != inside).then_some(replies)
                })
                .collect();
            // (Asserted once the other client stops: a panic here would leave it running.)
            stop.store(true, Ordering::SeqCst);
            assert!(seen.is_empty(), "another client's write landed inside {} of {cmds:?}: {:?}", seen.len(), seen[0]);
        });
    }
}

/// SCRIPT and FUNCTION commands in a transaction with scripts: each sees what came before.
#[test]
fn script_management_inside_a_transaction_runs_in_order() {
    let s = Server::start();
    let mut t = s.raw();
    let code = "return 'loaded'";
    let sha = "b534286061d4b9e4026607613b95c06c06015ae8";
    let lib = "#!lua name=m\nredis.register_function('m', function() return 'm' end)";
    t.cmd(&["MULTI"]);
    for cmd in [
        &["EVAL", "return 1", "0"][..],
        &["SCRIPT", "LOAD", code],
        &["EVALSHA", sha, "0"],
        &["FUNCTION", "LOAD", lib],
        &["FCALL", "m", "0"],
        &["SCRIPT", "FLUSH"],
        &["EVALSHA", sha, "0"],
    ] {
        assert_eq!(t.cmd(cmd), queued());
    }
    assert_eq!(
        t.cmd(&["EXEC"]),
        arr(vec![
            int(1),
            bulk(sha),
            bulk("loaded"),
            bulk("m"),
            bulk("m"),
            ok(),
            err("NOSCRIPT No matching script. Please use EVAL.")
        ])
    );
}

#[test]
fn a_push_inside_a_transaction_wakes_a_blocked_client() {
    let s = Server::start();
    let mut w = s.raw();
    w.send(&Raw::encode(&[b"BLPOP", b"q", b"0"]));
    wait_for("the client to block", || s.info_field("blocked_clients") == "1");
    let mut r = s.raw();
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(r.cmd(&["RPUSH", "q", "a", "b"]), queued());
    assert_eq!(r.cmd(&["LLEN", "q"]), queued());
    assert_eq!(r.cmd(&["EXEC"]), arr(vec![int(2), int(2)]), "the waiter is served after EXEC, not inside it");
    assert_eq!(w.read(), arr(vec![bulk("q"), bulk("a")]));
    assert_eq!(r.cmd(&["LRANGE", "q", "0", "-1"]), arr(vec![bulk("b")]));
}
