//! The value stored under a key. Strings that look like 64-bit integers are kept as integers
//! (Redis's `int` encoding), so counters cost no string parsing.

use super::bytes::SmallBytes;
use super::types::hash::Hash;
use super::types::set::Set;
use super::types::stream::Stream;
use super::types::zset::ZSet;
use super::types::List;
use bytes::BytesMut;
use shoal_proto::request::parse_i64;

#[derive(Clone, Debug)]
pub enum Value {
    Str(SmallBytes),
    Int(i64),
    /// A string that was appended to or overwritten in place: it keeps spare capacity so
    /// repeated APPEND is amortised O(1) per byte, like Redis's `raw` sds strings.
    Raw(Box<Vec<u8>>),
    Hash(Hash),
    List(Box<List>),
    Set(Set),
    ZSet(ZSet),
    Stream(Box<Stream>),
}

/// The type names `TYPE` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Hash,
    List,
    Set,
    ZSet,
    Stream,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }

    /// The type name SCAN's TYPE option matches.
    pub fn parse(name: &[u8]) -> Option<Kind> {
        [Kind::String, Kind::Hash, Kind::List, Kind::Set, Kind::ZSet, Kind::Stream]
            .into_iter()
            .find(|k| k.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Longest string Redis would store as an `embstr`; used for OBJECT ENCODING.
const EMBSTR_MAX: usize = 44;

impl Value {
    /// A string value, stored as an integer when Redis would (the canonical decimal form of
    /// an i64 of at most 20 characters).
    #[inline]
    pub fn string(data: &[u8]) -> Value {
        if data.len() <= 20 {
            if let Some(n) = parse_i64(data) {
                return Value::Int(n);
            }
        }
        Value::Str(SmallBytes::new(data))
    }

    pub fn string_from_vec(data: Vec<u8>) -> Value {
        if data.len() <= 20 {
            if let Some(n) = parse_i64(&data) {
                return Value::Int(n);
            }
        }
        Value::Str(SmallBytes::from_vec(data))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) | Value::Int(_) | Value::Raw(_) => Kind::String,
            Value::Hash(_) => Kind::Hash,
            Value::List(_) => Kind::List,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
            Value::Stream(_) => Kind::Stream,
        }
    }

    /// The string as a growable buffer (converting to the `raw` form), for APPEND/SETRANGE.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, Value::Raw(_)) {
            *self = Value::Raw(Box::new(self.to_vec()));
        }
        match self {
            Value::Raw(v) => v,
            _ => unreachable!("converted above"),
        }
    }

    pub fn is_string(&self) -> bool {
        self.kind() == Kind::String
    }

    /// The bytes of a string value; integers are formatted into `scratch`.
    pub fn str_bytes<'a>(&'a self, scratch: &'a mut itoa::Buffer) -> Option<&'a [u8]> {
        match self {
            Value::Str(s) => Some(s.as_slice()),
            Value::Raw(v) => Some(v.as_slice()),
            Value::Int(n) => Some(scratch.format(*n).as_bytes()),
            _ => None,
        }
    }

    /// A copy of a string value's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut b = itoa::Buffer::new();
        self.str_bytes(&mut b).map(|s| s.to_vec()).unwrap_or_default()
    }

    pub fn str_len(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Raw(v) => v.len(),
            Value::Int(n) => itoa::Buffer::new().format(*n).len(),
            _ => 0,
        }
    }

    /// Writes a string value as a bulk reply.
    #[inline]
    pub fn write_bulk(&self, out: &mut BytesMut) {
        match self {
            Value::Str(s) => shoal_proto::reply::bulk(out, s),
            Value::Raw(v) => shoal_proto::reply::bulk(out, v),
            Value::Int(n) => shoal_proto::reply::bulk_integer(out, *n),
            _ => debug_assert!(false, "write_bulk of a non-string"),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
            Value::Str(_) | Value::Raw(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(_) => "quicklist",
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// Heap bytes owned by the value beyond its inline 24 bytes.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::Raw(v) => v.capacity() + 24,
            Value::Int(_) => 0,
            Value::Hash(h) => h.heap_size(),
            Value::List(l) => {
                std::mem::size_of::<List>() + l.capacity() * 24 + l.iter().map(|e| e.heap_size()).sum::<usize>()
            }
            Value::Set(s) => s.heap_size(),
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(s) => s.heap_size(),
        }
    }

    /// Number of elements of a collection (1 for a string or a stream: an emptied stream stays,
    /// as in Redis), for deleting emptied keys and lazy-free decisions.
    pub fn element_count(&self) -> usize {
        match self {
            Value::Hash(h) => h.len(),
            Value::List(l) => l.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_24_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn integers_are_kept_as_integers_only_in_canonical_form() {
        assert!(matches!(Value::string(b"123"), Value::Int(123)));
        assert!(matches!(Value::string(b"0123"), Value::Str(_)));
        assert!(matches!(Value::string(b"-0"), Value::Str(_)));
        assert!(matches!(Value::string(b"9223372036854775808"), Value::Str(_)));
    }
}
