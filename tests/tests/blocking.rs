//! Blocking list and sorted-set commands: FIFO wake-ups, timeouts, cross-shard waits, waits
//! ended by a push from another command's write, and no element lost or delivered twice.

use shoal_proto::Frame;
use shoal_tests::{arr, bulk, err, int, ok, simple, wait_for, Raw, Server};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn blocked_clients(s: &Server) -> usize {
    s.info_field("blocked_clients").parse().unwrap()
}

fn send(r: &mut Raw, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
    r.send(&Raw::encode(&a));
}

#[test]
fn a_thousand_blocked_clients_each_get_exactly_one_element() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut waiters: Vec<Raw> = (0..1000).map(|_| s.raw()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", &format!("queue:{}", i % 100), "0"]);
    }
    wait_for("1000 blocked clients", || blocked_clients(&s) == 1000);
    let mut pusher = s.raw();
    let mut wire = Vec::new();
    for i in 0..1000 {
        let (key, elem) = (format!("queue:{}", i % 100), format!("job:{i}"));
        wire.extend(Raw::encode(&[b"RPUSH", key.as_bytes(), elem.as_bytes()]));
    }
    pusher.send(&wire);
    for _ in 0..1000 {
        assert!(matches!(pusher.read(), Frame::Integer(_)));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, w) in waiters.iter_mut().enumerate() {
        let Frame::Array(items) = w.read() else { panic!("BLPOP answers an array") };
        let (Frame::Bulk(k), Frame::Bulk(v)) = (&items[0], &items[1]) else { panic!("[key, element]") };
        assert_eq!(std::str::from_utf8(k).unwrap(), format!("queue:{}", i % 100), "served from its own key");
        *seen.entry(String::from_utf8(v.to_vec()).unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 1000, "every element delivered");
    assert!(seen.values().all(|&n| n == 1), "no element delivered twice");
    for q in 0..100 {
        assert_eq!(pusher.cmd(&["LLEN", &format!("queue:{q}")]), int(0), "nothing left behind");
    }
    assert_eq!(blocked_clients(&s), 0);
}

#[test]
fn waiters_are_served_in_the_order_they_blocked() {
    let s = Server::start();
    let mut ws: Vec<Raw> = (0..5).map(|_| s.raw()).collect();
    for (i, w) in ws.iter_mut().enumerate() {
        send(w, &["BRPOP", "q", "0"]);
        wait_for("the client to block", || blocked_clients(&s) == i + 1);
    }
    let mut p = s.raw();
    assert_eq!(p.cmd(&["LPUSH", "q", "a", "b", "c", "d", "e"]), int(5));
    // BRPOP takes from the tail: the first to block gets "a".
    for (w, want) in ws.iter_mut().zip(["a", "b", "c", "d", "e"]) {
        assert_eq!(w.read(), arr(vec![bulk("q"), bulk(want)]));
    }
}

#[test]
fn a_waiter_is_served_between_two_commands_of_a_pipeline() {
    let s = Server::start();
    let mut w = s.raw();
    send(&mut w, &["BLPOP", "q", "0"]);
    wait_for("the client to block", || blocked_clients(&s) == 1);
    let mut p = s.raw();
    let mut wire = Raw::encode(&[b"RPUSH", b"q", b"x"]);
    wire.extend(Raw::encode(&[b"LPOP", b"q"]));
    p.send(&wire);
    assert_eq!(p.read(), int(1));
    assert_eq!(p.read(), Frame::Null, "the blocked client took the element first, as in Redis");
    assert_eq!(w.read(), arr(vec![bulk("q"), bulk("x")]));
}

#[test]
fn timeouts_answer_null_and_zero_waits_for_ever() {
    let s = Server::start();
    let mut r = s.raw();
    let started = Instant::now();
    assert_eq!(r.cmd(&["BLPOP", "nothing", "0.2"]), Frame::Null);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(r.cmd(&["BLMOVE", "nothing", "dst", "LEFT", "RIGHT", "0.1"]), Frame::Null);
    assert_eq!(r.cmd(&["BZPOPMIN", "nothing", "0.1"]), Frame::Null);
    assert_eq!(r.cmd(&["BLPOP", "q", "-1"]), err("ERR timeout is negative"));
    assert_eq!(r.cmd(&["BLPOP", "q", "abc"]), err("ERR timeout is not a float or out of range"));
    assert_eq!(r.cmd(&["SET", "str", "v"]), ok());
    assert_eq!(r.cmd(&["BLPOP", "str", "0"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    // The connection stays usable after a timeout, and RESP3 gets its null type.
    assert!(matches!(r.cmd(&["HELLO", "3"]), Frame::Map(_)));
    assert_eq!(r.cmd(&["BRPOP", "nothing", "0.05"]), Frame::Null);
    assert_eq!(blocked_clients(&s), 0);
}

#[test]
fn waits_across_shards_and_moves_between_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut w = s.raw();
    // Keys chosen to land on different shards of four.
    send(&mut w, &["BLPOP", "a", "b", "c", "d", "0"]);
    wait_for("the client to block", || blocked_clients(&s) == 1);
    let mut p = s.raw();
    assert_eq!(p.cmd(&["RPUSH", "c", "1"]), int(1));
    assert_eq!(w.read(), arr(vec![bulk("c"), bulk("1")]));
    // The other keys' registrations are gone: a later push stays in its list.
    assert_eq!(p.cmd(&["RPUSH", "a", "2"]), int(1));
    wait_for("registrations cleared", || blocked_clients(&s) == 0);
    assert_eq!(p.cmd(&["LLEN", "a"]), int(1));
    for dst in ["e", "f", "g", "h"] {
        send(&mut w, &["BLMOVE", "src", dst, "LEFT", "RIGHT", "0"]);
        wait_for("the client to block", || blocked_clients(&s) == 1);
        assert_eq!(p.cmd(&["RPUSH", "src", dst]), int(1));
        assert_eq!(w.read(), bulk(dst));
        assert_eq!(p.cmd(&["LRANGE", dst, "0", "-1"]), arr(vec![bulk(dst)]));
    }
}

#[test]
fn sorted_set_waits_and_multi_pops() {
    let s = Server::start();
    let mut w = s.raw();
    send(&mut w, &["BZPOPMAX", "z1", "z2", "0"]);
    wait_for("the client to block", || blocked_clients(&s) == 1);
    let mut p = s.raw();
    assert_eq!(p.cmd(&["ZADD", "z2", "1", "a", "2", "b"]), int(2));
    assert_eq!(w.read(), arr(vec![bulk("z2"), bulk("b"), bulk("2")]));
    send(&mut w, &["BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "2"]);
    wait_for("the client to block", || blocked_clients(&s) == 1);
    assert_eq!(p.cmd(&["RPUSH", "l2", "x", "y", "z"]), int(3));
    assert_eq!(w.read(), arr(vec![bulk("l2"), arr(vec![bulk("z"), bulk("y")])]));
    send(&mut w, &["BZMPOP", "0", "1", "z3", "MIN"]);
    wait_for("the client to block", || blocked_clients(&s) == 1);
    assert_eq!(p.cmd(&["ZADD", "z3", "7", "m"]), int(1));
    assert_eq!(w.read(), arr(vec![bulk("z3"), arr(vec![arr(vec![bulk("m"), bulk("7")])])]));
}

#[test]
fn a_client_that_leaves_while_blocked_is_forgotten() {
    let s = Server::start();
    {
        let mut w = s.raw();
        send(&mut w, &["BLPOP", "q", "0"]);
        wait_for("the client to block", || blocked_clients(&s) == 1);
    }
    wait_for("the departed client to be dropped", || blocked_clients(&s) == 0);
    let mut p = s.raw();
    assert_eq!(p.cmd(&["RPUSH", "q", "kept"]), int(1));
    assert_eq!(p.cmd(&["LRANGE", "q", "0", "-1"]), arr(vec![bulk("kept")]), "no element goes to a departed client");
}

/// `id`'s line of CLIENT LIST, asked on `r`.
fn client_line(r: &mut Raw, id: i64) -> String {
    let Frame::Bulk(list) = r.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]) else {
        panic!("CLIENT LIST answers a bulk")
    };
    String::from_utf8(list.to_vec()).unwrap()
}

/// Sends `blocking` on `w` (whose id is `id`), waits until CLIENT LIST shows it blocked in
/// `cmd`, ends the wait with CLIENT UNBLOCK `how` from another connection, and returns the
/// reply's bytes as the blocked client got them.
fn unblocked_reply(s: &Server, w: &mut Raw, id: i64, blocking: &[&str], cmd: &str, how: &[&str]) -> Vec<u8> {
    let addr = s.addr();
    let (cmd, how) = (cmd.to_string(), how.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    let unblocker = std::thread::spawn(move || {
        let mut c = Raw::connect(addr);
        wait_for("the client to block", || {
            let line = client_line(&mut c, id);
            line.contains(" flags=b ") && line.contains(&format!(" cmd={cmd} "))
        });
        let mut args = vec!["CLIENT".to_string(), "UNBLOCK".into(), id.to_string()];
        args.extend(how);
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        c.cmd(&args)
    });
    let a: Vec<&[u8]> = blocking.iter().map(|x| x.as_bytes()).collect();
    let reply = w.cmd_bytes_raw(&a);
    assert_eq!(unblocker.join().unwrap(), int(1), "CLIENT UNBLOCK found {blocking:?} waiting");
    reply
}

#[test]
fn client_unblock_ends_a_wait_as_its_timeout_would_or_with_an_error() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut w = s.raw();
    let Frame::Integer(id) = w.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID answers an integer") };
    let waits: [(&[&str], &str); 5] = [
        (&["BLPOP", "q1", "q2", "0"], "blpop"),
        // Redis answers a null array when any wait ends unserved, BLMOVE's and BRPOPLPUSH's
        // too (only their non-blocking form in MULTI answers a null bulk).
        (&["BLMOVE", "q1", "dst", "LEFT", "RIGHT", "0"], "blmove"),
        (&["BRPOPLPUSH", "q1", "dst", "100"], "brpoplpush"),
        (&["BZPOPMIN", "z", "0"], "bzpopmin"),
        (&["XREAD", "BLOCK", "0", "STREAMS", "stream", "$"], "xread"),
    ];
    for (blocking, cmd) in waits {
        for how in [&[][..], &["TIMEOUT"], &["timeout"]] {
            assert_eq!(unblocked_reply(&s, &mut w, id, blocking, cmd, how), b"*-1\r\n", "{blocking:?} {how:?}");
        }
        assert_eq!(
            unblocked_reply(&s, &mut w, id, blocking, cmd, &["ERROR"]),
            b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
            "{blocking:?}"
        );
    }
    // An ordinary timeout answers the same way.
    assert_eq!(w.cmd_bytes_raw(&[b"BLMOVE", b"q1", b"dst", b"LEFT", b"RIGHT", b"0.01"]), b"*-1\r\n");
    assert_eq!(w.cmd_bytes_raw(&[b"BRPOPLPUSH", b"q1", b"dst", b"0.01"]), b"*-1\r\n");

    // The wait is over: a later push stays in its list, and the client is no longer blocked.
    let mut p = s.raw();
    assert_eq!(p.cmd(&["RPUSH", "q1", "kept"]), int(1));
    assert_eq!(p.cmd(&["LRANGE", "q1", "0", "-1"]), arr(vec![bulk("kept")]));
    assert!(client_line(&mut p, id).contains(" flags=N "));
    assert_eq!(p.cmd(&["CLIENT", "UNBLOCK", &id.to_string()]), int(0), "a client not blocked");
    assert_eq!(w.cmd(&["PING"]), simple("PONG"));
    assert_eq!(blocked_clients(&s), 0);

    // RESP3's null, and the error counted as Redis counts it.
    assert!(matches!(w.cmd(&["HELLO", "3"]), Frame::Map(_)));
    assert_eq!(unblocked_reply(&s, &mut w, id, &["BLPOP", "q9", "0"], "blpop", &[]), b"_\r\n");
    let errors = s.info_field("errorstat_UNBLOCKED");
    assert_eq!(errors, "count=5");
    let blpop = s.info_field("cmdstat_blpop");
    assert!(blpop.contains("calls=5,") && blpop.ends_with("failed_calls=1"), "{blpop}");
}

#[test]
fn client_unblock_checks_its_arguments_and_leaves_paused_clients_alone() {
    let s = Server::start();
    let mut r = s.raw();
    let Frame::Integer(me) = r.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID answers an integer") };
    let me = me.to_string();
    let reason = err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    // The reason is checked before the id, as in Redis.
    assert_eq!(r.cmd(&["CLIENT", "UNBLOCK", "abc", "LATER"]), reason);
    assert_eq!(r.cmd(&["CLIENT", "UNBLOCK", &me, "LATER"]), reason);
    assert_eq!(r.cmd(&["CLIENT", "UNBLOCK", "abc"]), err("ERR value is not an integer or out of range"));
    assert_eq!(
        r.cmd(&["CLIENT", "UNBLOCK", &me, "ERROR", "x"]),
        err("ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.")
    );
    // The subcommand as typed, as Redis echoes it.
    assert_eq!(
        r.cmd(&["client", "unBlock", &me, "error", "x"]),
        err("ERR unknown subcommand or wrong number of arguments for 'unBlock'. Try CLIENT HELP.")
    );
    assert_eq!(r.cmd(&["CLIENT", "UNBLOCK"]), err("ERR wrong number of arguments for 'client|unblock' command"));
    for id in ["-1", "0", "999999", me.as_str()] {
        assert_eq!(r.cmd(&["CLIENT", "UNBLOCK", id]), int(0), "{id}");
    }

    // A client held by CLIENT PAUSE counts as blocked, as in Redis, but no command's timeout
    // ends its wait: UNBLOCK leaves it waiting for the pause (Redis 7.0 crashes here; later
    // versions answer 0).
    let mut w = s.raw();
    let Frame::Integer(id) = w.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID answers an integer") };
    assert_eq!(r.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), ok());
    send(&mut w, &["SET", "k", "v"]);
    wait_for("the write to be held", || client_line(&mut r, id).contains(" flags=b "));
    assert!(client_line(&mut r, id).contains(" cmd=set "));
    assert_eq!(blocked_clients(&s), 1);
    assert_eq!(r.cmd(&["CLIENT", "UNBLOCK", &id.to_string(), "ERROR"]), int(0));
    assert_eq!(r.cmd(&["GET", "k"]), Frame::Null, "the write still waits for the pause");
    assert_eq!(r.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(w.read(), ok());
    assert!(client_line(&mut r, id).contains(" flags=N "));
    assert_eq!(blocked_clients(&s), 0);
}
