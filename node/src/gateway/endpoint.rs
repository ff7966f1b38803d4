//! Endpoint kinds, as managed stores define them: a node bound only to private addresses
//! (loopback, RFC 1918, link-local, unique-local IPv6) is a private endpoint; one bound to
//! anything else, the wildcard addresses included, is public, and must have a passkey and TLS.

use std::net::IpAddr;

/// Whether `ip` is reachable only from a private network.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
                || (first & 0xffc0) == 0xfe80 // link local, fe80::/10
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// Whether binding `addrs` makes a public endpoint (an unparsable address counts as public).
pub fn is_public(addrs: &[String]) -> bool {
    addrs
        .iter()
        .any(|a| a.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().map_or(true, |ip| !is_private(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_address_ranges() {
        let public = |a: &[&str]| is_public(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(!public(&["127.0.0.1", "::1"]));
        assert!(!public(&["10.1.2.3", "192.168.0.5", "172.16.9.9", "169.254.1.1", "fd12::1", "fe80::1"]));
        assert!(public(&["0.0.0.0"]));
        assert!(public(&["::"]));
        assert!(public(&["127.0.0.1", "8.8.8.8"]));
        assert!(public(&["172.32.0.1"]));
    }
}
