//! Endpoint kinds: a node bound to a public address refuses to start without TLS, and with it
//! serves TLS only, behind a generated passkey kept across restarts; `--passkey auto` does the
//! same on a private address.

use shoal_tests::{free_port, fresh_dir};
use std::io::Read;
use std::process::{Child, Command, Stdio};

fn shoal(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(shoal_tests::shoal_bin());
    c.args(["--save=", "--log-level", "warn", "--data-dir"]).arg(dir).args(args);
    c
}

/// Starts shoal and waits until `port` accepts connections.
fn start(dir: &std::path::Path, args: &[&str], port: u16) -> Child {
    let mut child = shoal(dir, args).stdout(Stdio::piped()).spawn().unwrap();
    assert!(shoal_tests::listens(&mut child, port, "shoal"), "port {port} was taken");
    child
}

fn cli(port: u16, tls: Option<&str>, pass: Option<&str>, cmd: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--no-auth-warning"]);
    if let Some(ca) = tls {
        c.args(["--tls", "--cacert", ca]);
    }
    if let Some(p) = pass {
        c.args(["-a", p]);
    }
    let out = c.args(cmd).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_string()
}

fn stop(mut child: Child) -> String {
    child.kill().unwrap();
    child.wait().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_public_endpoint_needs_tls_and_gets_a_passkey() {
    let dir = fresh_dir("public");
    let (port, tls_port) = (free_port(), free_port());
    let port_s = port.to_string();
    let out = shoal(&dir, &["--bind", "0.0.0.0", "--port", &port_s]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a public bind without TLS must not start");
    assert!(
        stderr.contains("without TLS") && stderr.contains("--tls-port") && stderr.contains("--insecure-public"),
        "{stderr}"
    );

    let tls_s = tls_port.to_string();
    let args = ["--bind", "0.0.0.0", "--port", &port_s, "--tls-port", &tls_s, "--tls-self-signed"];
    let child = start(&dir, &args, tls_port);
    let ca = dir.join("tls/self-signed.crt").display().to_string();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the plain port stays closed");
    assert_eq!(cli(tls_port, Some(&ca), None, &["GET", "k"]), "NOAUTH Authentication required.");
    let passkey = std::fs::read_to_string(dir.join("passkey")).unwrap().trim().to_string();
    assert_eq!(passkey.len(), 64);
    assert_eq!(cli(tls_port, Some(&ca), Some(&passkey), &["PING"]), "PONG");
    let printed = stop(child);
    assert_eq!(printed.trim(), format!("rediss://default:{passkey}@0.0.0.0:{tls_port}"), "the URI is printed once");

    // A restart keeps the passkey and prints nothing.
    let child = start(&dir, &args, tls_port);
    assert_eq!(cli(tls_port, Some(&ca), Some(&passkey), &["PING"]), "PONG");
    assert_eq!(stop(child), "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn passkey_auto_protects_a_private_endpoint_too() {
    let dir = fresh_dir("auto");
    let port = free_port();
    let child = start(&dir, &["--bind", "127.0.0.1", "--port", &port.to_string(), "--passkey", "auto"], port);
    assert_eq!(cli(port, None, None, &["PING"]), "NOAUTH Authentication required.");
    let passkey = std::fs::read_to_string(dir.join("passkey")).unwrap();
    assert_eq!(cli(port, None, Some(passkey.trim()), &["PING"]), "PONG");
    assert!(stop(child).starts_with("redis://default:"));
    let _ = std::fs::remove_dir_all(&dir);
}
