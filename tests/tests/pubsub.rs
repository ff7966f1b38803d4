//! Pub/Sub: channel, pattern and shard-channel delivery in RESP2 and RESP3 (push messages),
//! the subscribed context's limits, introspection, and a slow subscriber cut off at its
//! output-buffer limit without slowing the publisher.

use shoal_proto::Frame;
use shoal_tests::{arr, bulk, err, int, ok, wait_for, Server};
use std::time::{Duration, Instant};

fn push(items: Vec<Frame>) -> Frame {
    Frame::Push(items)
}

#[test]
fn messages_reach_channel_and_pattern_subscribers() {
    let s = Server::start();
    let mut sub = s.raw();
    assert_eq!(sub.cmd(&["SUBSCRIBE", "news", "sport"]), arr(vec![bulk("subscribe"), bulk("news"), int(1)]));
    assert_eq!(sub.read(), arr(vec![bulk("subscribe"), bulk("sport"), int(2)]));
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "n*"]), arr(vec![bulk("psubscribe"), bulk("n*"), int(3)]));
    let mut p = s.raw();
    assert_eq!(p.cmd(&["PUBLISH", "news", "hello"]), int(2), "one channel and one pattern subscriber");
    assert_eq!(sub.read(), arr(vec![bulk("message"), bulk("news"), bulk("hello")]));
    assert_eq!(sub.read(), arr(vec![bulk("pmessage"), bulk("n*"), bulk("news"), bulk("hello")]));
    assert_eq!(p.cmd(&["PUBLISH", "nobody", "x"]), int(1));
    assert_eq!(sub.read(), arr(vec![bulk("pmessage"), bulk("n*"), bulk("nobody"), bulk("x")]));
    assert_eq!(p.cmd(&["PUBSUB", "NUMSUB", "news", "none"]), arr(vec![bulk("news"), int(1), bulk("none"), int(0)]));
    assert_eq!(p.cmd(&["PUBSUB", "NUMPAT"]), int(1));
    assert_eq!(p.cmd(&["PUBSUB", "CHANNELS", "s*"]), arr(vec![bulk("sport")]));
    assert_eq!(s.info_field("pubsub_channels"), "2");
    assert_eq!(s.info_field("pubsub_patterns"), "1");
    let Frame::Bulk(list) = p.cmd(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    let list = String::from_utf8_lossy(&list).into_owned();
    assert!(list.contains("flags=P db=0 sub=2 psub=1 ssub=0"), "{list}");
    // The subscribed context of RESP2.
    assert_eq!(
        sub.cmd(&["GET", "k"]),
        err("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
    );
    assert_eq!(sub.cmd(&["PING"]), arr(vec![bulk("pong"), bulk("")]));
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), arr(vec![bulk("unsubscribe"), bulk("news"), int(2)]));
    assert_eq!(sub.read(), arr(vec![bulk("unsubscribe"), bulk("sport"), int(1)]));
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), arr(vec![bulk("punsubscribe"), bulk("n*"), int(0)]));
    assert_eq!(sub.cmd(&["GET", "k"]), Frame::Null, "back to normal once nothing is subscribed");
    assert_eq!(p.cmd(&["PUBLISH", "news", "late"]), int(0));
}

#[test]
fn resp3_subscribers_get_push_messages_between_replies() {
    let s = Server::start();
    let mut sub = s.raw();
    assert!(matches!(sub.cmd(&["HELLO", "3"]), Frame::Map(_)));
    assert_eq!(sub.cmd(&["SSUBSCRIBE", "orders"]), push(vec![bulk("ssubscribe"), bulk("orders"), int(1)]));
    assert_eq!(sub.cmd(&["SET", "k", "v"]), ok(), "RESP3 subscribers may run any command");
    let mut p = s.raw();
    assert_eq!(p.cmd(&["SPUBLISH", "orders", "o1"]), int(1));
    assert_eq!(sub.read(), push(vec![bulk("smessage"), bulk("orders"), bulk("o1")]));
    assert_eq!(p.cmd(&["PUBSUB", "SHARDCHANNELS"]), arr(vec![bulk("orders")]));
    assert_eq!(p.cmd(&["PUBSUB", "SHARDNUMSUB", "orders"]), arr(vec![bulk("orders"), int(1)]));
    assert_eq!(sub.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(sub.cmd(&["SUNSUBSCRIBE"]), push(vec![bulk("sunsubscribe"), bulk("orders"), int(0)]));
}

#[test]
fn a_slow_subscriber_is_cut_off_and_never_slows_the_publisher() {
    let s = Server::start();
    // INFO's own connection is counted too: measure before anyone else connects.
    let baseline: usize = s.info_field("connected_clients").parse().unwrap();
    let mut slow = s.raw();
    assert_eq!(slow.cmd(&["SUBSCRIBE", "firehose"]), arr(vec![bulk("subscribe"), bulk("firehose"), int(1)]));
    // The slow subscriber never reads again. 64 MB of messages go out: past the 32 MB limit.
    let payload = "x".repeat(64 * 1024);
    let mut p = s.raw();
    let started = Instant::now();
    let mut delivered_to = Vec::new();
    for _ in 0..1024 {
        match p.cmd(&["PUBLISH", "firehose", &payload]) {
            Frame::Integer(n) => delivered_to.push(n),
            other => panic!("PUBLISH answered {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60), "the publisher was held up");
    assert_eq!(delivered_to.last(), Some(&0), "the subscriber was dropped once over its limit");
    wait_for("the slow subscriber's connection to close", || {
        s.info_field("connected_clients") == (baseline + 1).to_string()
    });
    let mut fresh = s.raw();
    assert_eq!(fresh.cmd(&["PUBSUB", "NUMSUB", "firehose"]), arr(vec![bulk("firehose"), int(0)]));
    drop(slow);
}

#[test]
fn keyspace_notifications_announce_writes_and_expiry_like_redis() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]), ok());
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        arr(vec![bulk("notify-keyspace-events"), bulk("AKE")])
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Q"]),
        err("ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    );
    let mut sub = s.raw();
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]),
        arr(vec![bulk("psubscribe"), bulk("__keyevent@0__:*"), int(1)])
    );
    let mut w = s.raw();
    let event = |name: &str, key: &str| {
        arr(vec![bulk("pmessage"), bulk("__keyevent@0__:*"), bulk(&format!("__keyevent@0__:{name}")), bulk(key)])
    };
    assert_eq!(w.cmd(&["SET", "a", "1", "PX", "100000"]), ok());
    assert_eq!(sub.read(), event("set", "a"));
    assert_eq!(sub.read(), event("expire", "a"));
    assert_eq!(w.cmd(&["RPUSH", "src", "x"]), int(1));
    assert_eq!(sub.read(), event("rpush", "src"));
    assert_eq!(w.cmd(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]), bulk("x"));
    assert_eq!(sub.read(), event("rpush", "dst"), "the push is announced first, as in Redis");
    assert_eq!(sub.read(), event("lpop", "src"));
    assert_eq!(sub.read(), event("del", "src"), "an emptied list is deleted");
    assert_eq!(w.cmd(&["RENAME", "dst", "moved"]), ok());
    assert_eq!(sub.read(), event("rename_from", "dst"));
    assert_eq!(sub.read(), event("rename_to", "moved"));
    assert_eq!(w.cmd(&["SET", "gone", "v", "PX", "1"]), ok());
    assert_eq!(sub.read(), event("set", "gone"));
    assert_eq!(sub.read(), event("expire", "gone"));
    assert_eq!(sub.read(), event("expired", "gone"), "active expiry announces the key");
}

#[test]
fn new_key_events_announce_only_keys_that_did_not_exist() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut admin = s.raw();
    // `A` leaves out `n`, as in Redis: "new" events are sent only when asked for by name.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]), ok());
    let mut sub = s.raw();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "__keyevent@0__:new"]),
        arr(vec![bulk("subscribe"), bulk("__keyevent@0__:new"), int(1)])
    );
    let mut w = s.raw();
    assert_eq!(w.cmd(&["SET", "quiet", "1"]), ok());
    assert_eq!(admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "En"]), ok());
    let new = |key: &str| arr(vec![bulk("message"), bulk("__keyevent@0__:new"), bulk(key)]);
    assert_eq!(w.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(sub.read(), new("a"));
    // Overwrites and additions to existing keys are not new; the next event proves none came.
    assert_eq!(w.cmd(&["SET", "a", "2"]), ok());
    assert_eq!(w.cmd(&["SET", "quiet", "2"]), ok());
    assert_eq!(w.cmd(&["SADD", "s", "m"]), int(1));
    assert_eq!(sub.read(), new("s"));
    assert_eq!(w.cmd(&["SADD", "s", "n"]), int(1));
    assert_eq!(w.cmd(&["SMOVE", "s", "t", "m"]), int(1));
    assert_eq!(sub.read(), new("t"));
    assert_eq!(w.cmd(&["RENAME", "t", "u"]), ok());
    assert_eq!(sub.read(), new("u"));
    assert_eq!(w.cmd(&["COPY", "u", "v", "DB", "0"]), int(1));
    assert_eq!(sub.read(), new("v"));
    assert_eq!(w.cmd(&["XADD", "st", "1-1", "f", "v"]), bulk("1-1"));
    assert_eq!(sub.read(), new("st"));
}

#[test]
fn client_tracking_invalidates_cached_keys() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut a = s.raw();
    assert!(matches!(a.cmd(&["HELLO", "3"]), Frame::Map(_)));
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "ON"]), ok());
    assert_eq!(a.cmd(&["GET", "k"]), Frame::Null);
    assert_eq!(a.cmd(&["MGET", "x", "y"]), arr(vec![Frame::Null, Frame::Null]));
    let mut w = s.raw();
    assert_eq!(w.cmd(&["SET", "k", "1"]), ok());
    assert_eq!(a.read(), push(vec![bulk("invalidate"), arr(vec![bulk("k")])]));
    assert_eq!(w.cmd(&["SET", "y", "1"]), ok());
    assert_eq!(a.read(), push(vec![bulk("invalidate"), arr(vec![bulk("y")])]));
    // One invalidation per read: a second write is not announced until the key is read again.
    assert_eq!(w.cmd(&["SET", "k", "2"]), ok());
    assert_eq!(a.cmd(&["GET", "k"]), bulk("2"), "no stale push arrives before this reply");
    assert_eq!(w.cmd(&["DEL", "k"]), int(1));
    assert_eq!(a.read(), push(vec![bulk("invalidate"), arr(vec![bulk("k")])]));
    // FLUSHALL invalidates everything with a null key list.
    assert_eq!(w.cmd(&["FLUSHALL"]), ok());
    assert_eq!(a.read(), push(vec![bulk("invalidate"), Frame::Null]));
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "OFF"]), ok());

    // BCAST with a prefix, delivered to a RESP2 client subscribed for a redirect.
    let mut r = s.raw();
    let Frame::Integer(rid) = r.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    assert_eq!(
        r.cmd(&["SUBSCRIBE", "__redis__:invalidate"]),
        arr(vec![bulk("subscribe"), bulk("__redis__:invalidate"), int(1)])
    );
    let mut b = s.raw();
    assert_eq!(b.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "REDIRECT", &rid.to_string()]), ok());
    assert_eq!(b.cmd(&["CLIENT", "GETREDIR"]), int(rid));
    assert_eq!(w.cmd(&["SET", "user:1", "x"]), ok());
    assert_eq!(w.cmd(&["SET", "other", "x"]), ok());
    assert_eq!(
        r.read(),
        arr(vec![bulk("message"), bulk("__redis__:invalidate"), arr(vec![bulk("user:1")])]),
        "only keys under the prefix are announced"
    );
    assert_eq!(
        b.cmd(&["CLIENT", "TRACKING", "ON", "PREFIX", "x"]),
        err("ERR PREFIX option requires BCAST mode to be enabled")
    );
}

#[test]
fn key_misses_are_announced_when_asked() {
    let s = Server::start();
    let mut admin = s.raw();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Em"]), ok());
    let mut sub = s.raw();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "__keyevent@0__:keymiss"]),
        arr(vec![bulk("subscribe"), bulk("__keyevent@0__:keymiss"), int(1)])
    );
    let mut w = s.raw();
    let miss = |key: &str| arr(vec![bulk("message"), bulk("__keyevent@0__:keymiss"), bulk(key)]);
    assert_eq!(w.cmd(&["SET", "here", "1"]), ok());
    assert_eq!(w.cmd(&["GET", "here"]), bulk("1"));
    assert_eq!(w.cmd(&["GET", "absent"]), Frame::Null);
    assert_eq!(sub.read(), miss("absent"), "a hit is not announced, a miss is");
    // Writes that find no key are not misses (Redis's LOOKUP_WRITE).
    assert_eq!(w.cmd(&["DEL", "nothing"]), int(0));
    assert_eq!(w.cmd(&["LLEN", "nolist"]), int(0));
    assert_eq!(sub.read(), miss("nolist"));
}

#[test]
fn output_buffer_limits_follow_config_set_per_class() {
    let s = Server::start();
    let mut admin = s.raw();
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]),
        arr(vec![
            bulk("client-output-buffer-limit"),
            bulk("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
        ])
    );
    assert_eq!(admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 100kb 0 0 pubsub 1mb 0 0"]), ok());
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb"]),
        err("ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration.")
    );
    assert_eq!(admin.cmd(&["SET", "big", &"v".repeat(200 * 1024)]), ok());
    // A normal client whose replies would pass the hard limit is disconnected unanswered.
    let mut reader = s.raw();
    reader.send(&shoal_tests::Raw::encode(&[b"GET", b"big"]));
    wait_for("the over-limit client to be closed", || reader.is_closed());
    assert_eq!(admin.cmd(&["STRLEN", "big"]), int(200 * 1024));
    // A subscriber that stops reading is cut off at the new pubsub limit, 1 MB instead of 32:
    // 16 MB published fill the sockets' kernel buffers (a few MB on loopback, not counted, as
    // in Redis) and then the outbox.
    let mut slow = s.raw();
    assert_eq!(slow.cmd(&["SUBSCRIBE", "feed"]), arr(vec![bulk("subscribe"), bulk("feed"), int(1)]));
    let payload = "x".repeat(64 * 1024);
    let mut delivered = Vec::new();
    for _ in 0..256 {
        let Frame::Integer(n) = admin.cmd(&["PUBLISH", "feed", &payload]) else { panic!("PUBLISH") };
        delivered.push(n);
    }
    let dropped_after = delivered.iter().position(|&n| n == 0).expect("the subscriber was dropped");
    assert!(dropped_after < 160, "dropped only after {dropped_after} messages of 64 kB");
    assert_eq!(delivered.last(), Some(&0));
}
