//! Test harness: builds and starts real `shoal` processes on free loopback ports, and a raw
//! RESP client for checking bytes on the wire.

use bytes::BytesMut;
use redis::{Commands, Value};
use shoal_proto::Frame;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The `shoal` binary, built once per test process so it always matches the source.
/// `SHOAL_BIN` points at a prebuilt binary instead.
pub fn shoal_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("SHOAL_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "shoal-node", "--bin", "shoal"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building shoal failed");
        let target =
            std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace_root().join("target"));
        target.join("debug").join("shoal")
    })
    .clone()
}

/// A port nobody listens on right now, and one this test process has not handed out before.
///
/// The kernel may give the same ephemeral port to two `bind(0)` calls in quick succession;
/// two servers of concurrent tests would then race for it, and the loser's readiness probe
/// would reach the winner (once, a maxclients test talked to another test's node while that
/// node shut down).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// An empty scratch directory for one test's data (`name`, unique within the test binary),
/// left for the test to remove; kept apart per process, so runs never share one.
pub fn fresh_dir(name: &str) -> PathBuf {
    let bin = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let dir = std::env::temp_dir().join(format!("shoal-{}-{}-{name}", bin.unwrap_or_default(), std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Polls `f` until it yields a value, failing the test at the deadline. The one place tests
/// wait: every other wait is built on it.
pub fn wait_until<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_until_or(what, f, String::new)
}

/// `wait_until`, adding `detail()` (the state that kept the condition false) to the failure.
pub fn wait_until_or<T>(what: &str, mut f: impl FnMut() -> Option<T>, detail: impl FnOnce() -> String) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() >= DEADLINE {
            panic!("timed out waiting for {what}{}", detail());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `cond` holds or the deadline passes.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    wait_until(what, || cond().then_some(()))
}

/// Waits until `child` listens on `port`: true once it does, false if it lost the port.
///
/// A free port can still be taken between `free_port` and the child's bind (by another
/// test's server, or as the source port of some connection), and a probe that only connects
/// would then mistake whoever holds the port for the child. So the probe looks the listening
/// socket up in the kernel's table and checks that the child owns it, without connecting
/// (a probe client would show in the counts tests read).
pub fn listens(child: &mut Child, port: u16, what: &str) -> bool {
    wait_until(&format!("{what} to listen on {port}"), || {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return Some(false);
        }
        listening_inodes(port).iter().any(|inode| owns_socket(child.id(), inode)).then_some(true)
    })
}

/// The inodes of the TCP sockets listening on `port` (IPv4 and IPv6), from /proc/net.
fn listening_inodes(port: u16) -> Vec<String> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local_port) = cols.get(1).and_then(|a| a.rsplit(':').next()) else { continue };
            if u16::from_str_radix(local_port, 16) == Ok(port) && cols.get(3) == Some(&LISTEN) {
                inodes.extend(cols.get(9).map(|i| i.to_string()));
            }
        }
    }
    inodes
}

/// Whether process `pid` holds the socket with `inode` open.
fn owns_socket(pid: u32, inode: &str) -> bool {
    let want = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
}

/// A running `shoal` process, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub dir: PathBuf,
    owns_dir: bool,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a node with extra flags (`--bind 127.0.0.1` and a port are added) in a fresh
    /// data directory, removed when the server is dropped.
    pub fn start_with(args: &[&str]) -> Server {
        Server::spawn(None, args, &[])
    }

    /// Starts a node on the data directory `dir`, which outlives it (for restarts).
    pub fn start_in(dir: &Path, args: &[&str]) -> Server {
        Server::spawn(Some(dir), args, &[])
    }

    /// `start_in`, with environment variables set for the node.
    pub fn start_in_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(Some(dir), args, env)
    }

    fn spawn(keep: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Server {
        let bin = shoal_bin();
        for _attempt in 0..5 {
            let port = free_port();
            let metrics_port = args.contains(&"--metrics").then(free_port);
            let dir = match keep {
                Some(d) => d.to_path_buf(),
                None => {
                    let d = std::env::temp_dir().join(format!("shoal-test-{}-{port}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&d);
                    d
                }
            };
            std::fs::create_dir_all(&dir).expect("data dir");
            let mut cmd = Command::new(&bin);
            cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--data-dir"])
                .arg(&dir)
                .args(["--log-level", "warn"])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            for a in args.iter().filter(|a| **a != "--metrics") {
                cmd.arg(a);
            }
            cmd.envs(env.iter().copied());
            // No timed snapshots unless a test asks for them: a background save in the middle
            // of a test would only add noise (memory, timing) to what it measures.
            if !args.iter().any(|a| a.starts_with("--save")) {
                cmd.arg("--save=");
            }
            if let Some(mp) = metrics_port {
                cmd.args(["--metrics-port", &mp.to_string()]);
            }
            let mut child = cmd.spawn().expect("spawn shoal");
            if listens(&mut child, port, "shoal") {
                return Server { child: Some(child), port, metrics_port, dir, owns_dir: keep.is_none() };
            }
            let _ = child.wait();
        }
        panic!("could not start shoal");
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A synchronous `redis` crate connection.
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(self.url()).expect("client").get_connection().expect("connect")
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.addr())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends a signal and waits for the process to exit.
    pub fn signal_and_wait(&mut self, sig: i32) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        wait_until(&format!("shoal to exit after signal {sig}"), || child.try_wait().expect("wait"))
    }

    /// One field of INFO.
    pub fn info_field(&self, field: &str) -> String {
        let mut r = self.raw();
        let info = r.cmd(&["INFO", "everything"]);
        let Frame::Bulk(b) = info else { panic!("INFO reply {info:?}") };
        let text = String::from_utf8_lossy(&b).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("INFO has no field {field}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A script's SHA1 in lowercase hex, as SCRIPT LOAD names it.
pub fn sha1_hex(body: &str) -> String {
    use std::fmt::Write as _;
    let digest = <sha1::Sha1 as sha1::Digest>::digest(body.as_bytes());
    digest.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// An HTTP GET on loopback (the metrics endpoint): the status line and the body.
pub fn http_get(port: u16, path: &str) -> (String, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).expect("write");
    let mut resp = String::new();
    c.read_to_string(&mut resp).expect("read");
    let (head, body) = resp.split_once("\r\n\r\n").expect("a head and a body");
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

/// A raw RESP connection: send bytes, read frames.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        Raw::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// A client over a stream connected by other means (from a chosen local address, ...).
    pub fn from_stream(stream: TcpStream) -> Raw {
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw { stream, buf: BytesMut::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn encode(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send(&Raw::encode(&a));
        self.read()
    }

    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Frame {
        self.send(&Raw::encode(args));
        self.read()
    }

    /// Sends a command and returns its reply's bytes, unparsed (for replies the frame parser
    /// refuses, as Redis can write them: a big number that is no number): an ECHO after it
    /// marks where the reply ends.
    pub fn cmd_bytes_raw(&mut self, args: &[&[u8]]) -> Vec<u8> {
        const MARK: &[u8] = b"end-of-reply-7c1d9e";
        let mut bytes = Raw::encode(args);
        bytes.extend(Raw::encode(&[b"ECHO", MARK]));
        self.send(&bytes);
        let echoed = [format!("${}\r\n", MARK.len()).as_bytes(), MARK, b"\r\n"].concat();
        loop {
            if self.buf.ends_with(&echoed) {
                let reply = self.buf.split_to(self.buf.len() - echoed.len()).to_vec();
                self.buf.clear();
                return reply;
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed before a reply"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Reads one frame; panics on timeout or EOF.
    pub fn read(&mut self) -> Frame {
        self.try_read().expect("connection closed before a reply")
    }

    /// Reads one frame, or `None` when the server closed the connection.
    pub fn try_read(&mut self) -> Option<Frame> {
        loop {
            if let Some((f, used)) = Frame::parse(&self.buf).expect("valid RESP from server") {
                let _ = self.buf.split_to(used);
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// True when the server has closed this connection.
    pub fn is_closed(&mut self) -> bool {
        self.try_read().is_none()
    }
}

/// Shorthands for expected frames.
pub fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}
pub fn simple(s: &str) -> Frame {
    Frame::Simple(bytes::Bytes::copy_from_slice(s.as_bytes()))
}
pub fn err(s: &str) -> Frame {
    Frame::Error(bytes::Bytes::copy_from_slice(s.as_bytes()))
}
pub fn int(n: i64) -> Frame {
    Frame::Integer(n)
}
pub fn ok() -> Frame {
    simple("OK")
}
pub fn arr(items: Vec<Frame>) -> Frame {
    Frame::Array(items)
}

/// A redis-server (Debian's, the reference) on a free port, stopped when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// Its working directory, where SAVE writes dump.rdb.
    pub dir: PathBuf,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_loading(None)
    }

    /// A redis-server that starts from `dump` (an RDB file's bytes), when there is one.
    pub fn start_loading(dump: Option<&[u8]>) -> RedisServer {
        for _attempt in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("redis-test-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("redis dir");
            if let Some(dump) = dump {
                std::fs::write(dir.join("dump.rdb"), dump).expect("write dump.rdb");
            }
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"])
                .arg(&dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server is installed");
            if listens(&mut child, port, "redis-server") {
                return RedisServer { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
        }
        panic!("could not start redis-server");
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(([127, 0, 0, 1], self.port).into())
    }

    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .expect("client")
            .get_connection()
            .expect("connect")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything a client can observe about a key, in a comparable form.
pub fn describe_key(con: &mut redis::Connection, db: i64, key: &str) -> String {
    let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
    let ty: String = redis::cmd("TYPE").arg(key).query(con).unwrap();
    let expire: i64 = redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap();
    let q = |con: &mut redis::Connection, args: &[&str]| -> Value {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(con).unwrap()
    };
    let body = match ty.as_str() {
        "string" => format!("{:?}", q(con, &["GET", key])),
        "list" => format!("{:?}", q(con, &["LRANGE", key, "0", "-1"])),
        "set" => {
            let mut m: Vec<Vec<u8>> = con.smembers(key).unwrap();
            m.sort();
            format!("{m:?}")
        }
        "hash" => {
            let mut h: Vec<(Vec<u8>, Vec<u8>)> = con.hgetall(key).unwrap();
            h.sort();
            format!("{h:?}")
        }
        "zset" => format!("{:?}", q(con, &["ZRANGE", key, "0", "-1", "WITHSCORES"])),
        "stream" => {
            // radix-tree-nodes counts Redis's internal tree nodes, which depend on how the tree
            // was built, not on the stream's contents.
            let Value::Array(mut info) = q(con, &["XINFO", "STREAM", key]) else { panic!("XINFO STREAM") };
            if let Some(i) = info.iter().position(|v| *v == Value::BulkString(b"radix-tree-nodes".to_vec())) {
                info.drain(i..i + 2);
            }
            format!(
                "{:?} {info:?} {:?} {:?}",
                q(con, &["XRANGE", key, "-", "+"]),
                q(con, &["XINFO", "GROUPS", key]),
                q(con, &["XPENDING", key, "g"]),
            )
        }
        other => panic!("unexpected type {other}"),
    };
    format!("{ty} expire={expire} {body}")
}

/// Writes keys of every type in their small and large encodings, with a TTL, a stream with
/// a consumer group, and a key in database 3; returns (db, key) of each.
pub fn populate_every_type(r: &mut redis::Connection) -> Vec<(i64, String)> {
    let big = "x".repeat(10_000);
    let run = |r: &mut redis::Connection, args: &[&str]| {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        let _: Value = c.query(r).unwrap();
    };
    let mut keys = Vec::new();
    let mut add = |db: i64, k: &str| keys.push((db, k.to_string()));
    // Strings: integer, short, compressible (LZF), binary, and one with a TTL.
    run(r, &["SET", "s:int", "-12345"]);
    run(r, &["SET", "s:short", "hello"]);
    run(r, &["SET", "s:lzf", &"ab".repeat(200)]);
    let _: () = r.set("s:bin", b"\x00\xff\r\n".as_slice()).unwrap();
    run(r, &["SET", "s:ttl", "v", "PXAT", "4102444800123"]);
    for k in ["s:int", "s:short", "s:lzf", "s:bin", "s:ttl"] {
        add(0, k);
    }
    // Lists: one listpack node, many nodes, and a plain node for a 10 kB element.
    run(r, &["RPUSH", "l:small", "a", "1", "-7", "b"]);
    for i in 0..2000 {
        run(r, &["RPUSH", "l:big", &format!("element-{i}")]);
    }
    run(r, &["RPUSH", "l:plain", "x", &big, "y"]);
    // Sets: intset, hashtable.
    run(r, &["SADD", "set:ints", "1", "2", "-300", "70000", "5000000000"]);
    for i in 0..600 {
        run(r, &["SADD", "set:big", &format!("member-{i}")]);
    }
    run(r, &["SADD", "set:small", "a", "b", "c"]);
    // Hashes: listpack and hashtable.
    run(r, &["HSET", "h:small", "f1", "v1", "f2", "2", "f3", "-3"]);
    for i in 0..300 {
        run(r, &["HSET", "h:big", &format!("field-{i}"), &format!("value-{i}")]);
    }
    // Sorted sets: listpack (with inf and fractions) and skiplist.
    run(r, &["ZADD", "z:small", "1.5", "a", "-inf", "b", "+inf", "c", "3", "d"]);
    for i in 0..300 {
        run(r, &["ZADD", "z:big", &format!("{}.25", i), &format!("m{i}")]);
    }
    // A stream with two field layouts, a deleted entry, a group with pending entries.
    for i in 0..250 {
        run(r, &["XADD", "st", &format!("1000-{i}"), "a", &i.to_string(), "b", "x"]);
    }
    run(r, &["XADD", "st", "2000-0", "other", "layout"]);
    run(r, &["XDEL", "st", "1000-5"]);
    run(r, &["XGROUP", "CREATE", "st", "g", "0"]);
    run(r, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "st", ">"]);
    run(r, &["XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "st", ">"]);
    run(r, &["XACK", "st", "g", "1000-0"]);
    for k in [
        "l:small",
        "l:big",
        "l:plain",
        "set:ints",
        "set:big",
        "set:small",
        "h:small",
        "h:big",
        "z:small",
        "z:big",
        "st",
    ] {
        add(0, k);
    }
    // Another database.
    run(r, &["SELECT", "3"]);
    run(r, &["SET", "elsewhere", "db3"]);
    run(r, &["SELECT", "0"]);
    add(3, "elsewhere");
    keys
}
