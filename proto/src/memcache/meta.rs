//! The flags of memcached's meta commands (`mg`, `ms`, `md`, `ma`): single letters, some
//! with a token (`T30`, `Oabc`), as memcached 1.6's protocol.txt defines them.

use super::{parse_i64, parse_u32, parse_u64};
use bytes::{Buf, Bytes};
use smallvec::SmallVec;

/// Longest opaque token (`O`) memcached copies back.
pub const MAX_OPAQUE: usize = 32;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaFlags {
    /// The flags that add a token to the reply (`b c f h k l O s t`), in request order: the
    /// reply lists them in that order.
    pub returns: SmallVec<[u8; 8]>,
    /// `b`: the key is base64 (decoded by the parser; returned keys are encoded again).
    pub base64: bool,
    /// `q`: no reply for the common outcome (a miss for mg, success for ms/md/ma).
    pub quiet: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `u`: do not bump the item (access time, hit flag).
    pub no_bump: bool,
    /// `I`: invalidate (md: mark stale; ms: accept an older CAS and mark stale).
    pub invalidate: bool,
    /// `O`: copied back with the reply.
    pub opaque: Option<Bytes>,
    /// `F`: client flags to store.
    pub client_flags: Option<u32>,
    /// `C`: the CAS value the item must have.
    pub compare_cas: Option<u64>,
    /// `E`: the CAS value the item gets.
    pub new_cas: Option<u64>,
    /// `T`: a TTL to set.
    pub ttl: Option<i64>,
    /// `N`: create the item on a miss, with this TTL.
    pub vivify: Option<i64>,
    /// `R`: win the recache when the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `M`: the mode (ms: E A P R S; ma: I + D -).
    pub mode: Option<u8>,
    /// `D`: ma's delta.
    pub delta: Option<u64>,
    /// `J`: ma's initial value after a miss with `N`.
    pub initial: Option<u64>,
    /// The request's flag tokens as sent, for `encode`.
    raw: SmallVec<[u8; 32]>,
}

/// A meta flag that memcached refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaError {
    InvalidFlag,
    Duplicate,
    BadToken,
    OpaqueTooLong,
}

impl MetaError {
    pub fn message(self) -> &'static str {
        match self {
            MetaError::InvalidFlag => "invalid flag",
            MetaError::Duplicate => "duplicate flag",
            MetaError::BadToken => "bad token in command line format",
            MetaError::OpaqueTooLong => "opaque token too long",
        }
    }
}

impl MetaFlags {
    /// Parses the flag tokens that follow a meta command's key (and, for ms, its length).
    pub fn parse<T: AsRef<[u8]>>(tokens: &[T]) -> Result<MetaFlags, MetaError> {
        let mut m = MetaFlags::default();
        let mut seen = 0u64;
        for (i, t) in tokens.iter().enumerate() {
            let t = t.as_ref();
            let Some((&letter, arg)) = t.split_first() else { continue };
            if !letter.is_ascii_alphabetic() {
                return Err(MetaError::InvalidFlag);
            }
            let bit = 1u64 << (letter - b'A');
            if seen & bit != 0 {
                return Err(MetaError::Duplicate);
            }
            seen |= bit;
            let num = || parse_u64(arg).ok_or(MetaError::BadToken);
            let signed = || parse_i64(arg).ok_or(MetaError::BadToken);
            match letter {
                b'b' => {
                    m.base64 = true;
                    m.returns.push(letter)
                }
                b'c' | b'f' | b'h' | b'k' | b'l' | b's' | b't' => m.returns.push(letter),
                b'q' => m.quiet = true,
                b'v' => m.value = true,
                b'u' => m.no_bump = true,
                b'I' => m.invalidate = true,
                b'O' => {
                    if arg.len() > MAX_OPAQUE {
                        return Err(MetaError::OpaqueTooLong);
                    }
                    m.opaque = Some(Bytes::copy_from_slice(arg));
                    m.returns.push(letter);
                }
                b'F' => m.client_flags = Some(parse_u32(arg).ok_or(MetaError::BadToken)?),
                b'C' => m.compare_cas = Some(num()?),
                b'E' => m.new_cas = Some(num()?),
                b'T' => m.ttl = Some(signed()?),
                b'N' => m.vivify = Some(signed()?),
                b'R' => m.recache = Some(signed()?),
                b'D' => m.delta = Some(num()?),
                b'J' => m.initial = Some(num()?),
                b'M' => match arg {
                    [mode] => m.mode = Some(*mode),
                    _ => return Err(MetaError::BadToken),
                },
                // Routing hints for proxies, ignored by the server.
                b'P' | b'L' => {}
                _ => return Err(MetaError::InvalidFlag),
            }
            if i > 0 {
                m.raw.push(b' ');
            }
            m.raw.extend_from_slice(t);
        }
        Ok(m)
    }

    /// Whether the reply lists the returned token `letter`.
    pub fn returns(&self, letter: u8) -> bool {
        self.returns.contains(&letter)
    }

    pub(super) fn encode(&self, out: &mut super::Header) {
        out.extend_from_slice(&(self.raw.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.raw);
    }

    pub(super) fn decode(mut h: &[u8]) -> Option<MetaFlags> {
        if h.len() < 2 {
            return None;
        }
        let n = h.get_u16_le() as usize;
        let raw = h.get(..n)?;
        let tokens: SmallVec<[&[u8]; 8]> = raw.split(|&b| b == b' ').filter(|t| !t.is_empty()).collect();
        MetaFlags::parse(&tokens).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_keep_their_order_and_tokens() {
        let m = MetaFlags::parse(&["t", "f", "v", "Oxy", "q", "T30", "N-1", "MA"]).unwrap();
        assert_eq!(&m.returns[..], b"tfO");
        assert!(m.value && m.quiet);
        assert_eq!(m.opaque.as_deref(), Some(&b"xy"[..]));
        assert_eq!((m.ttl, m.vivify, m.mode), (Some(30), Some(-1), Some(b'A')));
    }

    #[test]
    fn bad_flags_are_refused() {
        assert_eq!(MetaFlags::parse(&["x"]), Err(MetaError::InvalidFlag));
        assert_eq!(MetaFlags::parse(&["1"]), Err(MetaError::InvalidFlag));
        assert_eq!(MetaFlags::parse(&["t", "t"]), Err(MetaError::Duplicate));
        assert_eq!(MetaFlags::parse(&["Tx"]), Err(MetaError::BadToken));
        assert_eq!(MetaFlags::parse(&["F4294967296"]), Err(MetaError::BadToken));
        let long = format!("O{}", "a".repeat(33));
        assert_eq!(MetaFlags::parse(&[long.as_str()]), Err(MetaError::OpaqueTooLong));
    }
}
