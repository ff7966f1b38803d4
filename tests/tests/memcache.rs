//! The Memcached gateway, through real clients: memcapable's text and binary suites,
//! pymemcache, and raw bytes for what clients do not send (malformed lines, meta pipelines,
//! base64 keys), with RESP reading and writing the same keys.

use shoal_tests::{free_port, wait_until, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// A node with the Memcached gateway on a free port.
fn start(extra: &[&str]) -> (Server, u16) {
    let mc = free_port();
    (launch(None, mc, extra), mc)
}

/// Starts a node on `dir` with the Memcached gateway on `mc` and the given flags.
fn start_in(dir: &std::path::Path, mc: u16, extra: &[&str]) -> Server {
    launch(Some(dir), mc, extra)
}

/// Starts a node (on `dir`, or a fresh one) and waits for its Memcached port `mc`.
fn launch(dir: Option<&std::path::Path>, mc: u16, extra: &[&str]) -> Server {
    let port = mc.to_string();
    let mut args = vec!["--memcached-port", port.as_str()];
    args.extend_from_slice(extra);
    let s = match dir {
        Some(d) => Server::start_in(d, &args),
        None => Server::start_with(&args),
    };
    wait_until("the memcached port to accept connections", || TcpStream::connect(("127.0.0.1", mc)).ok());
    s
}

/// A node with --memcached-auth and an ACL user `app` (password `secret`) allowed everything.
fn start_with_app_user() -> (Server, u16) {
    let (s, mc) = start(&["--memcached-auth"]);
    let rules = ["app", "on", ">secret", "~*", "+@all"];
    let _: () = redis::cmd("ACL").arg("SETUSER").arg(&rules[..]).query(&mut s.redis()).unwrap();
    (s, mc)
}

/// A raw Memcached connection that sends bytes and reads replies until they end as expected.
struct Mc(TcpStream);

impl Mc {
    fn connect(port: u16) -> Mc {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Mc(s)
    }

    /// Sends `req` and reads until the reply ends with `until`.
    fn call(&mut self, req: &[u8], until: &[u8]) -> String {
        self.0.write_all(req).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(until) {
            let n = self.0.read(&mut buf).expect("a reply before the timeout");
            assert!(n > 0, "connection closed; got {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

#[test]
fn memcapable_passes_every_text_and_binary_test() {
    let (_s, mc) = start(&[]);
    let out = Command::new("memccapable")
        .args(["-h", "127.0.0.1", "-p", &mc.to_string(), "-t", "10"])
        .output()
        .expect("memccapable is installed (libmemcached-tools)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("All tests passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ascii cas") && text.contains("binary getkq"), "both suites ran: {text}");
}

#[test]
fn pymemcache_client() {
    let (s, mc) = start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/compat_pymemcache.py");
    let out = Command::new("python3").arg(script).arg(mc.to_string()).arg(s.port.to_string()).output().unwrap();
    assert!(
        out.status.success(),
        "pymemcache compatibility failed (is `pip install pymemcache` done?):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn memjs_binary_protocol_with_sasl() {
    let (_s, mc) = start_with_app_user();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/compat");
    let out = Command::new("node")
        .current_dir(dir)
        .args(["memjs-workload.mjs", &mc.to_string(), "app", "secret"])
        .output()
        .expect("node is installed");
    assert!(
        out.status.success(),
        "memjs failed (are tests/compat's packages installed?):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_lines_get_client_errors_and_the_connection_stays() {
    let (_s, port) = start(&[]);
    let mut c = Mc::connect(port);
    assert_eq!(c.call(b"bogus\r\n", b"\r\n"), "ERROR\r\n");
    let long = format!("get {}\r\n", "k".repeat(251));
    assert_eq!(c.call(long.as_bytes(), b"\r\n"), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(c.call(b"set k abc 0 1\r\nx\r\n", b"\r\n"), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(c.call(b"incr k notanumber\r\n", b"\r\n"), "CLIENT_ERROR invalid numeric delta argument\r\n");
    // A value over the item size limit is read and thrown away: what follows still parses.
    // As in memcached, the item the refused set would have replaced is gone.
    assert_eq!(c.call(b"set big 0 0 3\r\nold\r\n", b"\r\n"), "STORED\r\n");
    let big = format!("set big 0 0 {}\r\n{}\r\nget big\r\n", 2 << 20, "x".repeat(2 << 20));
    assert_eq!(c.call(big.as_bytes(), b"END\r\n"), "SERVER_ERROR object too large for cache\r\nEND\r\n");
    assert_eq!(c.call(b"set k 0 0 2\r\nab\r\nget k\r\n", b"END\r\n"), "STORED\r\nVALUE k 0 2\r\nab\r\nEND\r\n");
}

/// Peak resident memory of process `pid`, in bytes (Linux's VmHWM).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn gets_of_large_items_are_answered_in_bounded_memory() {
    // 500 MB of replies to gets that arrive together: one get of 400 keys, then 100 more
    // gets in the same write. Answered all at once, they would sit in the node's memory.
    const ITEM: usize = 1 << 20;
    let (s, port) = start(&[]);
    let mut c = Mc::connect(port);
    let set = format!("set big 7 0 {ITEM}\r\n{}\r\n", "x".repeat(ITEM));
    assert_eq!(c.call(set.as_bytes(), b"\r\n"), "STORED\r\n");
    let before = peak_rss(s.pid());
    let mut req = format!("get{}\r\n", " big".repeat(400));
    req.push_str(&"get big\r\n".repeat(100));
    c.0.write_all(req.as_bytes()).unwrap();

    let header = format!("VALUE big 7 {ITEM}\r\n");
    let mut head = vec![0u8; header.len()];
    let mut data = vec![0u8; ITEM + 2];
    let want = format!("{}\r\n", "x".repeat(ITEM));
    let mut end = [0u8; 5];
    for items in std::iter::once(400).chain(std::iter::repeat_n(1, 100)) {
        for _ in 0..items {
            c.0.read_exact(&mut head).unwrap();
            assert_eq!(String::from_utf8_lossy(&head), header);
            c.0.read_exact(&mut data).unwrap();
            assert!(data == want.as_bytes(), "the item's bytes");
        }
        c.0.read_exact(&mut end).unwrap();
        assert_eq!(&end, b"END\r\n");
    }
    let grew = peak_rss(s.pid()).saturating_sub(before);
    assert!(grew < 300 << 20, "the node's peak memory grew by {} MB answering 500 MB of gets", grew >> 20);
    assert_eq!(c.call(b"version\r\n", b"\r\n").split(' ').next(), Some("VERSION"));
}

#[test]
fn flush_all_with_a_delay_flushes_later() {
    let (_s, port) = start(&[]);
    let mut c = Mc::connect(port);
    assert_eq!(c.call(b"set k 0 0 1\r\nv\r\nflush_all 1\r\n", b"OK\r\n"), "STORED\r\nOK\r\n");
    assert_eq!(c.call(b"get k\r\n", b"END\r\n"), "VALUE k 0 1\r\nv\r\nEND\r\n", "not yet");
    wait_until("the delayed flush", || (c.call(b"get k\r\n", b"END\r\n") == "END\r\n").then_some(()));
    assert_eq!(c.call(b"flush_all noreply\r\nmn\r\n", b"MN\r\n"), "MN\r\n");
}

#[test]
fn the_item_size_limit_holds_for_sets_and_appends() {
    let (_s, port) = start(&["--memcached-max-item-size", "100"]);
    let mut c = Mc::connect(port);
    let sixty = "x".repeat(60);
    let set = format!("set k 0 0 60\r\n{sixty}\r\n");
    assert_eq!(c.call(set.as_bytes(), b"\r\n"), "STORED\r\n");
    let append = format!("append k 0 0 60\r\n{sixty}\r\n");
    assert_eq!(c.call(append.as_bytes(), b"\r\n"), "SERVER_ERROR out of memory storing object\r\n");
    let big = format!("set k2 0 0 101\r\n{}\r\n", "y".repeat(101));
    assert_eq!(c.call(big.as_bytes(), b"\r\n"), "SERVER_ERROR object too large for cache\r\n");
    assert_eq!(c.call(b"get k\r\n", b"END\r\n"), format!("VALUE k 0 60\r\n{sixty}\r\nEND\r\n"));
}

#[test]
fn meta_quiet_pipelines_base64_keys_and_stale_while_revalidate() {
    let (_s, port) = start(&[]);
    let mut c = Mc::connect(port);
    // Quiet mode: misses and successes say nothing; mn marks the end of the pipeline.
    let reply = c.call(b"ms a 1 q\r\n1\r\nmg a v q k\r\nmg missing v q\r\nmd missing q\r\nmn\r\n", b"MN\r\n");
    assert_eq!(reply, "VA 1 ka\r\n1\r\nNF\r\nMN\r\n");
    // A binary key travels base64-encoded and comes back the same way.
    assert_eq!(c.call(b"ms AAEC 2 b F5\r\nhi\r\n", b"\r\n"), "HD\r\n");
    assert_eq!(c.call(b"mg AAEC b k f v O99\r\n", b"hi\r\n"), "VA 2 kAAEC b f5 O99\r\nhi\r\n");
    // Invalidation: the first reader wins the recache, the next sees it taken.
    assert_eq!(c.call(b"md a I\r\n", b"\r\n"), "HD\r\n");
    assert!(c.call(b"mg a v\r\n", b"1\r\n").starts_with("VA 1 X W\r\n"));
    assert_eq!(c.call(b"mg a\r\n", b"\r\n"), "HD Z X\r\n");
    // Counters with auto-create.
    assert_eq!(c.call(b"ma cnt N0 J10 v\r\n", b"10\r\n"), "VA 2\r\n10\r\n");
    assert_eq!(c.call(b"ma cnt D5 v\r\n", b"15\r\n"), "VA 2\r\n15\r\n");
}

#[test]
fn cas_changes_on_every_write_from_either_protocol() {
    let (s, port) = start(&[]);
    let mut c = Mc::connect(port);
    let mut r = s.redis();
    c.call(b"set k 3 0 1\r\na\r\n", b"\r\n");
    let cas = |c: &mut Mc| c.call(b"gets k\r\n", b"END\r\n").split_whitespace().nth(4).unwrap().to_string();
    let first = cas(&mut c);
    assert_eq!(first, cas(&mut c), "reading does not change it");
    let _: () = redis::cmd("APPEND").arg("k").arg("b").query(&mut r).unwrap();
    let second = cas(&mut c);
    assert_ne!(first, second, "a RESP write changes it");
    let stale = format!("cas k 3 0 1 {first}\r\nz\r\n");
    assert_eq!(c.call(stale.as_bytes(), b"\r\n"), "EXISTS\r\n");
    let fresh = format!("cas k 3 0 1 {second}\r\nz\r\n");
    assert_eq!(c.call(fresh.as_bytes(), b"\r\n"), "STORED\r\n");
    let v: String = redis::cmd("GET").arg("k").query(&mut r).unwrap();
    assert_eq!(v, "z");
    // Flags survive an in-place RESP write and go with a RESP overwrite.
    assert!(c.call(b"get k\r\n", b"END\r\n").starts_with("VALUE k 3 1"));
    let _: () = redis::cmd("SET").arg("k").arg("new").query(&mut r).unwrap();
    assert!(c.call(b"get k\r\n", b"END\r\n").starts_with("VALUE k 0 3"));
}

#[test]
fn a_public_memcached_port_without_auth_is_refused() {
    let dir = shoal_tests::fresh_dir("mc-public");
    let out = Command::new(shoal_tests::shoal_bin())
        .args(["--save=", "--data-dir"])
        .arg(&dir)
        .args(["--bind", "0.0.0.0", "--port", &free_port().to_string(), "--tls-port", &free_port().to_string()])
        .args(["--tls-self-signed", "--memcached-port", &free_port().to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must not start");
    assert!(
        stderr.contains("refusing to serve Memcached clients on public address") && stderr.contains("--memcached-auth"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn authentication_with_sasl_and_the_text_protocol() {
    let (s, port) = start_with_app_user();
    let mut r = s.redis();
    let mut c = Mc::connect(port);
    assert_eq!(c.call(b"get k\r\n", b"\r\n"), "CLIENT_ERROR unauthenticated\r\n");
    assert_eq!(c.call(b"set x 0 0 10\r\napp wrong!\r\n", b"\r\n"), "CLIENT_ERROR authentication failure\r\n");
    assert_eq!(c.call(b"set x 0 0 10\r\napp secret\r\n", b"\r\n"), "STORED\r\n");
    assert_eq!(c.call(b"set k 0 0 1\r\nv\r\nget k\r\n", b"END\r\n"), "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n");
    // Binary SASL PLAIN.
    let mut b = Mc::connect(port);
    let body = b"\0app\0secret";
    let mut req = vec![0x80, 0x21, 0, 5, 0, 0, 0, 0];
    req.extend_from_slice(&((5 + body.len()) as u32).to_be_bytes());
    req.extend_from_slice(&[0; 12]);
    req.extend_from_slice(b"PLAIN");
    req.extend_from_slice(body);
    let reply = b.call(&req, b"Authenticated");
    assert_eq!(&reply.as_bytes()[6..8], &[0, 0], "status OK");

    // ACL rules apply as to the RESP command that does the same: this user may read and
    // write `cache:*` only, and not delete.
    let rules = ["on", ">pw", "~cache:*", "+get", "+set"];
    let _: () = redis::cmd("ACL").arg("SETUSER").arg("limited").arg(&rules[..]).query(&mut r).unwrap();
    let mut l = Mc::connect(port);
    assert_eq!(l.call(b"set x 0 0 10\r\nlimited pw\r\n", b"\r\n"), "STORED\r\n");
    assert_eq!(l.call(b"set cache:1 0 0 1\r\nv\r\n", b"\r\n"), "STORED\r\n");
    assert_eq!(l.call(b"get cache:1\r\n", b"END\r\n"), "VALUE cache:1 0 1\r\nv\r\nEND\r\n");
    assert_eq!(l.call(b"set other 0 0 1\r\nv\r\n", b"\r\n"), "CLIENT_ERROR access denied: key\r\n");
    assert_eq!(l.call(b"delete cache:1\r\n", b"\r\n"), "CLIENT_ERROR access denied: command 'delete'\r\n");
    // Rules changed after login apply to the open connection.
    let _: () = redis::cmd("ACL").arg("SETUSER").arg("limited").arg("+del").query(&mut r).unwrap();
    assert_eq!(l.call(b"delete cache:1\r\n", b"\r\n"), "DELETED\r\n");
    let _: () = redis::cmd("ACL").arg("SETUSER").arg("limited").arg("off").query(&mut r).unwrap();
    assert_eq!(l.call(b"get cache:1\r\n", b"\r\n"), "CLIENT_ERROR unauthenticated\r\n");
}

#[test]
fn client_flags_survive_restarts_through_the_log_and_through_snapshots() {
    for (what, args) in [("log", &["--appendonly", "yes", "--appendfsync", "always"][..]), ("snapshot", &[][..])] {
        let dir = shoal_tests::fresh_dir(&format!("mc-persist-{what}"));
        let mc = free_port();
        let mut s = start_in(&dir, mc, args);
        let mut c = Mc::connect(mc);
        assert_eq!(c.call(b"set a 42 0 1\r\nx\r\n", b"\r\n"), "STORED\r\n");
        assert_eq!(c.call(b"ms b 1 F7 T1000\r\ny\r\n", b"\r\n"), "HD\r\n");
        assert_eq!(c.call(b"set plain 0 0 1\r\nz\r\n", b"\r\n"), "STORED\r\n");
        if what == "snapshot" {
            let _: () = redis::cmd("SAVE").query(&mut s.redis()).unwrap();
        }
        // SIGKILL: no shutdown save, so what comes back is what the log or SAVE kept.
        s.signal_and_wait(libc::SIGKILL);
        let _s = start_in(&dir, mc, args);
        let mut c = Mc::connect(mc);
        let reply = c.call(b"get a b plain\r\n", b"END\r\n");
        assert_eq!(
            reply, "VALUE a 42 1\r\nx\r\nVALUE b 7 1\r\ny\r\nVALUE plain 0 1\r\nz\r\nEND\r\n",
            "after the {what}"
        );
        let ttl = c.call(b"mg b t\r\n", b"\r\n");
        assert!(ttl.starts_with("HD t") && ttl.trim_end()[4..].parse::<u32>().unwrap() > 900, "{ttl}");
        drop(_s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_memcached_port_speaks_tls_with_the_resp_certificate() {
    let (s, mc) = start(&["--memcached-tls", "--tls-self-signed"]);
    let ca = s.dir.join("tls/self-signed.crt").display().to_string();
    let script = format!(
        "import ssl\n\
         from pymemcache.client.base import Client\n\
         c = Client(('127.0.0.1', {mc}), tls_context=ssl.create_default_context(cafile='{ca}'))\n\
         c.set('over-tls', b'yes', flags=3)\n\
         print(c.get('over-tls').decode())\n"
    );
    let py = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "yes", "{}", String::from_utf8_lossy(&py.stderr));
    let v: String = redis::cmd("GET").arg("over-tls").query(&mut s.redis()).unwrap();
    assert_eq!(v, "yes");
    // Plain text gets no answer: the port expects a TLS handshake.
    let mut plain = TcpStream::connect(("127.0.0.1", mc)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    plain.write_all(b"version\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = plain.read(&mut buf).unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("VERSION"));
}
