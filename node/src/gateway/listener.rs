//! TCP listeners: bind the configured addresses, accept clients (plain or TLS), enforce the
//! allowlist and maxclients.

use super::connection;
use crate::node::Node;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid bind address '{0}'")]
    BadAddress(String),
    #[error("could not bind any of {addrs:?} on port {port}: {source}")]
    NoneBound { addrs: Vec<String>, port: u16, source: io::Error },
}

/// Which protocol a listener's clients speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Resp,
    Memcache,
}

/// Binds every configured address on one port. An address that cannot be bound is skipped
/// with a warning (Redis does the same for `::1` on hosts without IPv6) as long as one is.
pub async fn bind(addrs: &[String], port: u16, tls: bool, service: Service) -> Result<Vec<TcpListener>, ListenError> {
    let mut listeners = Vec::new();
    let mut port = port;
    let mut last_err = None;
    for a in addrs {
        let ip: IpAddr =
            a.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| ListenError::BadAddress(a.clone()))?;
        match bind_one(SocketAddr::new(ip, port)) {
            Ok(l) => {
                // With port 0 the first address picks the port; the others reuse it.
                port = l.local_addr().map(|a| a.port()).unwrap_or(port);
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                match service {
                    Service::Resp => info!(%addr, tls, "listening for RESP clients"),
                    Service::Memcache => info!(%addr, tls, "listening for Memcached clients"),
                }
                listeners.push(l);
            }
            Err(e) => {
                warn!(addr = %a, port, error = %e, "could not bind address, skipping it");
                last_err = Some(e);
            }
        }
    }
    if listeners.is_empty() {
        return Err(ListenError::NoneBound {
            addrs: addrs.to_vec(),
            port,
            source: last_err.unwrap_or_else(|| io::Error::other("no address")),
        });
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(511)?;
    TcpListener::from_std(socket.into())
}

/// Accepts clients until shutdown; with `tls`, each connection starts with a TLS handshake.
/// With `threads`, each accepted connection goes to one of them for its life (see
/// `conn_threads`); without, it runs on the node's runtime.
pub async fn accept_loop(
    node: Arc<Node>,
    listener: TcpListener,
    tls: Option<Arc<super::tls::Tls>>,
    service: Service,
    threads: Option<Arc<super::conn_threads::ConnThreads>>,
) {
    let mut shutdown = node.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|&stop| stop) => break,
            r = listener.accept() => r,
        };
        let (stream, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Outside the allowlist: closed before a byte is read, and counted.
        if !node.config.allow_cidr.is_empty()
            && !node.config.allow_cidr.iter().any(|n| n.contains(&canonical(addr.ip())))
        {
            node.stats.disallowed_connections.fetch_add(1, Relaxed);
            debug!(%addr, "connection refused: address not in --allow-cidr");
            drop(stream);
            continue;
        }
        node.stats.total_connections_received.fetch_add(1, Relaxed);
        // Admission is decided here, in order, so a burst of connects cannot overshoot.
        let node = node.clone();
        if node.admitted.fetch_add(1, Relaxed) >= node.live.maxclients.load(Relaxed) {
            node.admitted.fetch_sub(1, Relaxed);
            node.stats.rejected_connections.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = match service {
                    Service::Resp => stream.write_all(b"-ERR max number of clients reached\r\n").await,
                    Service::Memcache => stream.write_all(b"SERVER_ERROR Too many open connections\r\n").await,
                };
            });
            continue;
        }
        let tls = tls.clone();
        let admitted = Admitted(node.clone());
        match (&threads, stream.into_std()) {
            (Some(threads), Ok(std_stream)) => threads.spawn(Box::new(move || {
                Box::pin(async move {
                    let _admitted = admitted;
                    // On the connection's own thread, so it registers with that runtime.
                    if let Ok(stream) = TcpStream::from_std(std_stream) {
                        handle(node, stream, addr, tls, service).await
                    }
                })
            })),
            (None, Ok(std_stream)) => {
                tokio::spawn(async move {
                    let _admitted = admitted;
                    if let Ok(stream) = TcpStream::from_std(std_stream) {
                        handle(node, stream, addr, tls, service).await
                    }
                });
            }
            (_, Err(e)) => debug!(%addr, error = %e, "accepted connection unusable"),
        }
    }
}

async fn serve<S>(node: Arc<Node>, stream: S, addr: SocketAddr, laddr: SocketAddr, fd: RawFd, service: Service)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match service {
        Service::Resp => connection::serve(node, stream, addr, laddr, Some(fd)).await,
        Service::Memcache => super::memcache::serve(node, stream, addr, laddr, Some(fd)).await,
    }
}

/// An IPv4 client reaching an IPv6 socket as `::ffff:a.b.c.d` is matched as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Releases a connection's admission slot when the connection ends, however it ends.
struct Admitted(Arc<Node>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Relaxed);
    }
}

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn handle(
    node: Arc<Node>,
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<Arc<super::tls::Tls>>,
    service: Service,
) {
    let _ = stream.set_nodelay(true);
    let keepalive = node.live.tcp_keepalive.load(Relaxed);
    if keepalive > 0 {
        let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(keepalive));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
    }
    let laddr = stream.local_addr().unwrap_or(addr);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let Some(tls) = tls else {
        return serve(node, stream, addr, laddr, fd, service).await;
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => serve(node, stream, addr, laddr, fd, service).await,
        Ok(Err(e)) => {
            node.stats.tls_handshake_failures.fetch_add(1, Relaxed);
            debug!(%addr, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            node.stats.tls_handshake_failures.fetch_add(1, Relaxed);
            debug!(%addr, "TLS handshake timed out");
        }
    }
}
