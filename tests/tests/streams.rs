//! Streams: generated IDs, consumer groups end to end, and blocking reads woken by XADD.

use shoal_proto::Frame;
use shoal_tests::{arr, bulk, int, ok, wait_for, Raw, Server};

fn id_parts(f: &Frame) -> (u64, u64) {
    let Frame::Bulk(b) = f else { panic!("an ID is a bulk string, got {f:?}") };
    let s = std::str::from_utf8(b).unwrap();
    let (ms, seq) = s.split_once('-').expect("ms-seq");
    (ms.parse().unwrap(), seq.parse().unwrap())
}

#[test]
fn generated_ids_grow_and_follow_the_clock() {
    let s = Server::start();
    let mut r = s.raw();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut last = (0, 0);
    for _ in 0..100 {
        let id = id_parts(&r.cmd(&["XADD", "s", "*", "f", "v"]));
        assert!(id > last, "IDs increase: {id:?} after {last:?}");
        last = id;
    }
    assert!(last.0 >= now, "the millisecond part is the server's clock");
    assert_eq!(r.cmd(&["XLEN", "s"]), int(100));
    // An ID far in the future: generated IDs continue after it.
    assert_eq!(r.cmd(&["XADD", "s", "99999999999999-5", "f", "v"]), bulk("99999999999999-5"));
    assert_eq!(r.cmd(&["XADD", "s", "*", "f", "v"]), bulk("99999999999999-6"));
    assert_eq!(r.cmd(&["XADD", "s", "99999999999999-*", "f", "v"]), bulk("99999999999999-7"));
    assert!(matches!(r.cmd(&["XADD", "s", "MAXLEN", "~", "10", "*", "f", "v"]), Frame::Bulk(_)));
    // Approximate trimming removes whole nodes of 100 entries only: 104 entries stay above 10.
    assert_eq!(r.cmd(&["XLEN", "s"]), int(104));
    assert_eq!(r.cmd(&["XTRIM", "s", "MAXLEN", "=", "10"]), int(94));
}

#[test]
fn a_consumer_group_delivers_acks_and_reclaims() {
    let s = Server::start();
    let mut r = s.raw();
    for i in 1..=5 {
        let id = format!("{i}-0");
        assert_eq!(r.cmd(&["XADD", "jobs", &id, "n", &i.to_string()]), bulk(&id));
    }
    assert_eq!(r.cmd(&["XGROUP", "CREATE", "jobs", "workers", "0"]), ok());
    let Frame::Array(first) = r.cmd(&["XREADGROUP", "GROUP", "workers", "w1", "COUNT", "3", "STREAMS", "jobs", ">"])
    else {
        panic!("XREADGROUP answers an array")
    };
    assert_eq!(first.len(), 1);
    let Frame::Array(second) = r.cmd(&["XREADGROUP", "GROUP", "workers", "w2", "STREAMS", "jobs", ">"]) else {
        panic!("XREADGROUP answers an array")
    };
    let Frame::Array(kv) = &second[0] else { panic!("[key, entries]") };
    let Frame::Array(entries) = &kv[1] else { panic!("entries") };
    assert_eq!(entries.len(), 2, "w2 gets what w1 did not");
    assert_eq!(r.cmd(&["XACK", "jobs", "workers", "1-0", "2-0"]), int(2));
    let Frame::Array(summary) = r.cmd(&["XPENDING", "jobs", "workers"]) else { panic!("summary") };
    assert_eq!(summary[0], int(3));
    assert_eq!(summary[1], bulk("3-0"));
    assert_eq!(summary[3], arr(vec![arr(vec![bulk("w1"), bulk("1")]), arr(vec![bulk("w2"), bulk("2")])]));
    // w1's leftover goes to w3.
    assert_eq!(r.cmd(&["XCLAIM", "jobs", "workers", "w3", "0", "3-0", "JUSTID"]), arr(vec![bulk("3-0")]));
    let Frame::Array(auto) = r.cmd(&["XAUTOCLAIM", "jobs", "workers", "w3", "0", "0", "JUSTID"]) else {
        panic!("array")
    };
    assert_eq!(auto[0], bulk("0-0"), "the whole PEL was scanned");
    assert_eq!(auto[1], arr(vec![bulk("3-0"), bulk("4-0"), bulk("5-0")]));
    let Frame::Array(groups) = r.cmd(&["XINFO", "GROUPS", "jobs"]) else { panic!("array") };
    let Frame::Array(g) = &groups[0] else { panic!("group") };
    assert_eq!(g[9], int(5), "entries-read");
    assert_eq!(g[11], int(0), "lag");
}

#[test]
fn blocking_reads_are_woken_by_xadd() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut reader = s.raw();
    reader.send(&Raw::encode(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"a", b"b", b"$", b"$"]));
    wait_for("the reader to block", || s.info_field("blocked_clients") == "1");
    let mut w = s.raw();
    assert_eq!(w.cmd(&["XADD", "b", "7-1", "k", "v"]), bulk("7-1"));
    assert_eq!(
        reader.read(),
        arr(vec![arr(vec![bulk("b"), arr(vec![arr(vec![bulk("7-1"), arr(vec![bulk("k"), bulk("v")])])])])])
    );
    // A group reader blocked on ">" gets the next entry, and it becomes pending.
    assert_eq!(w.cmd(&["XGROUP", "CREATE", "b", "g", "$"]), ok());
    reader.send(&Raw::encode(&[b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"b", b">"]));
    wait_for("the group reader to block", || s.info_field("blocked_clients") == "1");
    assert_eq!(w.cmd(&["XADD", "b", "8-0", "k", "w"]), bulk("8-0"));
    assert_eq!(
        reader.read(),
        arr(vec![arr(vec![bulk("b"), arr(vec![arr(vec![bulk("8-0"), arr(vec![bulk("k"), bulk("w")])])])])])
    );
    let Frame::Array(p) = w.cmd(&["XPENDING", "b", "g"]) else { panic!("summary") };
    assert_eq!(p[0], int(1));
    // A timeout answers null.
    assert_eq!(reader.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "b", "$"]), Frame::Null);
}
