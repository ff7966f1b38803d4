//! Which arguments of a request are secrets: passwords in AUTH, HELLO ... AUTH, ACL SETUSER's
//! rules and sensitive CONFIG SET values. MONITOR and SLOWLOG show them as `(redacted)`, as
//! Redis does, so no password leaves the node through them.

use super::table::CommandSpec;
use shoal_proto::Request;

pub const REDACTED: &[u8] = b"(redacted)";

/// Settings whose values are secrets.
const SENSITIVE_CONFIGS: [&[u8]; 2] = [b"requirepass", b"masterauth"];

/// The request's arguments, with every secret replaced by `(redacted)`.
pub fn shown_args<'a>(spec: &CommandSpec, req: &'a Request) -> impl Iterator<Item = &'a [u8]> {
    let hidden = secrets(spec, req);
    req.args().enumerate().map(move |(i, a)| if hidden.contains(&i) { REDACTED } else { a })
}

/// The positions of the request's secret arguments.
fn secrets(spec: &CommandSpec, req: &Request) -> Vec<usize> {
    match spec.full_name.as_str() {
        "auth" => (1..req.len()).collect(),
        // Every rule: a rule may be a password (`>pw`, `#hash`) or hide one in a selector.
        "acl|setuser" => (2..req.len()).collect(),
        "hello" => {
            // HELLO protover [AUTH user pass] [SETNAME name], options in any order.
            let mut hidden = Vec::new();
            let mut i = 2;
            while i < req.len() {
                if req.arg(i).eq_ignore_ascii_case(b"auth") && i + 2 < req.len() {
                    hidden.extend([i + 1, i + 2]);
                    i += 3;
                } else if req.arg(i).eq_ignore_ascii_case(b"setname") {
                    i += 2;
                } else {
                    break;
                }
            }
            hidden
        }
        "config|set" => (2..req.len())
            .step_by(2)
            .filter(|&i| SENSITIVE_CONFIGS.iter().any(|c| req.arg(i).eq_ignore_ascii_case(c)))
            .map(|i| i + 1)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::table::table;

    fn shown(line: &str) -> String {
        let req = Request::from_args(line.split(' ').map(|a| bytes::Bytes::copy_from_slice(a.as_bytes())));
        let spec = table().resolve(&req).expect("command");
        shown_args(spec, &req).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn passwords_are_redacted_wherever_they_appear() {
        assert_eq!(shown("AUTH pw"), "AUTH (redacted)");
        assert_eq!(shown("AUTH bob pw"), "AUTH (redacted) (redacted)");
        assert_eq!(shown("HELLO 3 SETNAME app AUTH bob pw"), "HELLO 3 SETNAME app AUTH (redacted) (redacted)");
        assert_eq!(shown("ACL SETUSER bob on >pw ~*"), "ACL SETUSER (redacted) (redacted) (redacted) (redacted)");
        assert_eq!(shown("CONFIG SET maxclients 10 requirepass pw"), "CONFIG SET maxclients 10 requirepass (redacted)");
        assert_eq!(shown("SET k v"), "SET k v");
    }
}
