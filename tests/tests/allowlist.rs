//! `--allow-cidr`: a client from outside the allowed networks is closed before any command is
//! read, and counted; one from inside works as usual.

use shoal_tests::{simple, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// A connection to `to` from the local address `from` (another loopback address).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from.parse().unwrap(), 0).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

#[test]
fn only_allowed_networks_get_in() {
    let s = Server::start_with(&["--allow-cidr", "127.0.0.1/32,10.0.0.0/8", "--metrics"]);
    let mut inside = s.raw();
    assert_eq!(inside.cmd(&["PING"]), simple("PONG"));

    let mut outside = connect_from("127.0.0.2", s.addr());
    // The server closes it without reading: the PING gets no answer, the read sees the end.
    let _ = outside.write_all(b"PING\r\n");
    outside.set_read_timeout(Some(shoal_tests::DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    let n = outside.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a disallowed client got a reply: {:?}", String::from_utf8_lossy(&buf[..n]));

    let port = s.metrics_port.unwrap();
    shoal_tests::wait_for("the refusal to be counted", || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = c.read_to_string(&mut body);
        body.contains("shoal_connections_disallowed_total 1\n")
    });
    // The allowed client is undisturbed.
    assert_eq!(inside.cmd(&["PING"]), simple("PONG"));
}
