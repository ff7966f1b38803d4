//! Test harness: builds and starts real `shoal` processes on free loopback ports, and a raw
//! RESP client for checking bytes on the wire.

use bytes::BytesMut;
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

/// Polls `f` until it yields a value, failing the test at the deadline. The one place tests
/// wait: every other wait is built on it.
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `cond` holds or the deadline passes.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    wait_until(what, || cond().then_some(()))
}

/// A running `shoal` process, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub dir: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a node with extra flags (`--bind 127.0.0.1` and a port are added).
    pub fn start_with(args: &[&str]) -> Server {
        let bin = shoal_bin();
        for _attempt in 0..5 {
            let port = free_port();
            let metrics_port = args.contains(&"--metrics").then(free_port);
            let dir = std::env::temp_dir().join(format!("shoal-test-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
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
            if let Some(mp) = metrics_port {
                cmd.args(["--metrics-port", &mp.to_string()]);
            }
            let mut child = cmd.spawn().expect("spawn shoal");
            let listening = wait_until(&format!("shoal to listen on {port}"), || {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    Some(true)
                } else {
                    // An exited process lost a race for the port: try another.
                    matches!(child.try_wait(), Ok(Some(_))).then_some(false)
                }
            });
            if listening {
                return Server { child: Some(child), port, metrics_port, dir };
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw RESP connection: send bytes, read frames.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
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
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("redis-test-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        wait_for("redis-server to listen", || TcpStream::connect(("127.0.0.1", port)).is_ok());
        RedisServer { child, port, dir }
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
