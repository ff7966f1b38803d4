//! Bad input on the wire: protocol errors close only the offending connection, limits hold
//! without allocating what a client claims, and the node stays up for everyone else.

use rand::{Rng, SeedableRng};
use shoal_proto::Frame;
use shoal_tests::{bulk, err, ok, simple, Raw, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn connected_clients(s: &Server) -> i64 {
    s.info_field("connected_clients").parse().unwrap()
}

/// Waits for `connected_clients` to return to `baseline`; if it does not, fails with CLIENT
/// LIST, so the connection that stayed can be told apart.
fn wait_for_release(s: &Server, baseline: i64, what: &str) {
    shoal_tests::wait_until_or(
        what,
        || (connected_clients(s) == baseline).then_some(()),
        || format!("; clients now: {:?}", s.raw().cmd(&["CLIENT", "LIST"])),
    );
}

fn rss_kb(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn unknown_command_and_arity_errors_keep_the_connection() {
    let s = Server::start();
    let mut r = s.raw();
    assert_eq!(r.cmd(&["FOO", "a", "b"]), err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "));
    assert_eq!(r.cmd(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(r.cmd(&["GET", "a", "b"]), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(r.cmd(&["CONFIG"]), err("ERR wrong number of arguments for 'config' command"));
    assert_eq!(r.cmd(&["CONFIG", "GET"]), err("ERR wrong number of arguments for 'config|get' command"));
    assert_eq!(r.cmd(&["CONFIG", "FOO"]), err("ERR unknown subcommand 'FOO'. Try CONFIG HELP."));
    assert_eq!(r.cmd(&["PING"]), simple("PONG"));
}

#[test]
fn errors_inside_a_pipeline_of_multi_shard_commands_answer_in_order() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut r = s.raw();
    // MSET over several shards opens a locked segment; the arity error after it must still be
    // answered after MSET's reply and before GET's.
    let mut wire = Vec::new();
    for args in [&["MSET", "a", "1", "b", "2", "c", "3"][..], &["EXISTS"], &["FOO"], &["GET", "b"], &["MGET", "a", "c"]]
    {
        let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
        wire.extend(Raw::encode(&a));
    }
    r.send(&wire);
    assert_eq!(r.read(), ok());
    assert_eq!(r.read(), err("ERR wrong number of arguments for 'exists' command"));
    assert_eq!(r.read(), err("ERR unknown command 'FOO', with args beginning with: "));
    assert_eq!(r.read(), bulk("2"));
    assert_eq!(r.read(), shoal_tests::arr(vec![bulk("1"), bulk("3")]));
}

#[test]
fn malformed_frames_get_protocol_errors_and_close() {
    let s = Server::start();
    let cases: [(&[u8], &str); 6] = [
        (b"*1\r\n+PING\r\n", "ERR Protocol error: expected '$', got '+'"),
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "ERR Protocol error: invalid bulk length"),
        (b"SET \"unbalanced\r\n", "ERR Protocol error: unbalanced quotes in request"),
        (b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\nX", "ERR Protocol error: expected '$', got 'X'"),
    ];
    let mut bystander = s.raw();
    for (input, want) in cases {
        let mut r = s.raw();
        r.send(input);
        let mut got = r.read();
        if input.starts_with(b"*2\r\n$3\r\nGET") {
            assert_eq!(got, Frame::Null, "commands before the bad frame still run");
            got = r.read();
        }
        assert_eq!(got, err(want));
        assert!(r.is_closed(), "connection closes after a protocol error");
        assert_eq!(bystander.cmd(&["PING"]), simple("PONG"));
    }
}

#[test]
fn inline_commands_work_like_telnet() {
    let s = Server::start();
    let mut r = s.raw();
    r.send(b"PING\r\n");
    assert_eq!(r.read(), simple("PONG"));
    r.send(b"set k \"a b\"\nget k\n");
    assert_eq!(r.read(), ok());
    assert_eq!(r.read(), bulk("a b"));
}

#[test]
fn a_huge_bulk_header_is_refused_without_allocating_it() {
    let s = Server::start();
    let before = rss_kb(&s);
    let mut r = s.raw();
    // 1 GB claimed: over the 512 MB limit, refused at once.
    r.send(b"*2\r\n$3\r\nGET\r\n$1073741824\r\n");
    assert_eq!(r.read(), err("ERR Protocol error: invalid bulk length"));
    // 400 MB claimed, within the limit: only what arrives is buffered.
    let mut r2 = s.raw();
    r2.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\nabc");
    let mut r3 = s.raw();
    assert_eq!(r3.cmd(&["PING"]), simple("PONG"));
    assert!(rss_kb(&s) < before + 100 * 1024, "a claimed bulk length must not be allocated up front");
}

#[test]
fn pipeline_of_thousands_of_commands_in_one_write() {
    let s = Server::start();
    let mut r = s.raw();
    let mut wire = Vec::new();
    for i in 0..10_000 {
        wire.extend(Raw::encode(&[b"SET", format!("p{i}").as_bytes(), format!("{i}").as_bytes()]));
        wire.extend(Raw::encode(&[b"GET", format!("p{i}").as_bytes()]));
    }
    r.send(&wire);
    for i in 0..10_000 {
        assert_eq!(r.read(), ok());
        assert_eq!(r.read(), bulk(&i.to_string()));
    }
}

#[test]
fn many_connections_opened_and_closed_leave_no_clients_behind() {
    let s = Server::start();
    let baseline = connected_clients(&s);
    for i in 0..10_000 {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        if i % 100 == 0 {
            c.write_all(b"PING\r\n").unwrap();
            let mut buf = [0u8; 7];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"+PONG\r\n");
        }
    }
    wait_for_release(&s, baseline, "connections to be released");
}

#[test]
fn a_client_killed_mid_pipeline_does_not_disturb_the_node() {
    let s = Server::start();
    let baseline = connected_clients(&s);
    for _ in 0..50 {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        let mut wire = Vec::new();
        for i in 0..2000 {
            wire.extend(Raw::encode(&[b"SET", format!("m{i}").as_bytes(), &[b'x'; 100]]));
        }
        // Send half a pipeline, including half a command, then vanish without reading.
        c.write_all(&wire[..wire.len() / 2 + 7]).unwrap();
        drop(c);
    }
    let mut r = s.raw();
    assert_eq!(r.cmd(&["PING"]), simple("PONG"));
    drop(r);
    wait_for_release(&s, baseline, "killed clients to be released");
}

#[test]
fn random_bytes_leave_the_node_up_and_memory_flat() {
    let mut s = Server::start();
    let baseline = connected_clients(&s);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut chunk = vec![0u8; 1 << 20];
    let before = rss_kb(&s);
    // 100 MB of random bytes over many connections: each dies at its first protocol error.
    let mut sent = 0usize;
    while sent < 100 << 20 {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        rng.fill(&mut chunk[..]);
        // Start with a valid-looking prefix half the time so parsing goes deeper.
        if rng.gen_bool(0.5) {
            chunk[..4].copy_from_slice(b"*3\r\n");
        }
        let _ = c.write_all(&chunk);
        sent += chunk.len();
    }
    assert!(s.is_running());
    let mut r = s.raw();
    assert_eq!(r.cmd(&["SET", "still", "here"]), ok());
    assert_eq!(r.cmd(&["GET", "still"]), bulk("here"));
    drop(r);
    wait_for_release(&s, baseline, "fuzz clients to be released");
    let after = rss_kb(&s);
    assert!(after < before + 64 * 1024, "RSS grew from {before} kB to {after} kB");
}

#[test]
fn query_buffer_limit_disconnects_without_a_reply() {
    let s = Server::start_with(&["--client-query-buffer-limit", "1mb"]);
    let mut r = s.raw();
    let mut big = b"*2\r\n$4\r\nECHO\r\n$2000000\r\n".to_vec();
    big.extend(vec![b'a'; 1_100_000]);
    let _ = r.stream.write_all(&big);
    assert!(r.is_closed());
    assert_eq!(s.raw().cmd(&["PING"]), simple("PONG"));
}
