//! The set type. Three forms, converted one way only as members arrive:
//!
//! - `Ints`: sorted 64-bit integers while every member is one (Redis's `intset`), up to
//!   `set-max-intset-entries`;
//! - `Pack`: a few short strings in one allocation (`set-max-listpack-entries` /
//!   `-value`, Redis 7.2's small-set encoding);
//! - `Table`: a chained hash table.
//!
//! OBJECT ENCODING reports what Redis 7.0 (whose behaviour we match) would: `intset`, or
//! `hashtable` for both string forms.

use super::pack::Pack;
use super::Encodings;
use crate::shard::bytes::SmallBytes;
use crate::shard::dict::{Dict, Slot};
use shoal_proto::request::parse_i64;

pub struct Member {
    next: u32,
    pub member: SmallBytes,
}

impl Slot for Member {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.member
    }
    #[inline]
    fn next(&self) -> u32 {
        self.next
    }
    #[inline]
    fn set_next(&mut self, next: u32) {
        self.next = next;
    }
    fn vacant(next: u32) -> Member {
        Member { next, member: SmallBytes::EMPTY }
    }
}

pub enum Set {
    /// Boxed so that the set stays two words (the keyspace value is 24 bytes).
    Ints(Box<Vec<i64>>),
    Pack(Pack),
    Table(Box<Dict<Member>>),
}

impl Clone for Set {
    fn clone(&self) -> Set {
        match self {
            Set::Ints(v) => Set::Ints(v.clone()),
            Set::Pack(p) => Set::Pack(p.clone()),
            Set::Table(t) => {
                let mut d = Dict::new(rand::random());
                t.iter().for_each(|m| {
                    d.insert(Member { next: 0, member: m.member.clone() });
                });
                Set::Table(Box::new(d))
            }
        }
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Set({}, {} members)", self.encoding(), self.len())
    }
}

/// A member read out of a set: integers are formatted on demand.
pub enum Elem<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Elem<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Int(n) => itoa::Buffer::new().format(*n).as_bytes().to_vec(),
            Elem::Bytes(b) => b.to_vec(),
        }
    }

    pub fn write_bulk(&self, out: &mut bytes::BytesMut) {
        match self {
            Elem::Int(n) => shoal_proto::reply::bulk_integer(out, *n),
            Elem::Bytes(b) => shoal_proto::reply::bulk(out, b),
        }
    }
}

impl Set {
    /// An empty set in the form suited to its first member.
    pub fn for_member(first: &[u8]) -> Set {
        if parse_i64(first).is_some() {
            Set::Ints(Box::default())
        } else {
            Set::Pack(Pack::new())
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Ints(v) => v.len(),
            Set::Pack(p) => p.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Pack(_) | Set::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Ints(v) => parse_i64(m).is_some_and(|n| v.binary_search(&n).is_ok()),
            Set::Pack(p) => p.iter().any(|x| x == m),
            Set::Table(t) => t.find_no_step(m).is_some(),
        }
    }

    /// Adds a member; true when it is new.
    pub fn add(&mut self, m: &[u8], enc: &Encodings) -> bool {
        if let Set::Ints(v) = self {
            match parse_i64(m) {
                Some(n) => match v.binary_search(&n) {
                    Ok(_) => return false,
                    Err(pos) if v.len() < enc.set_intset_entries => {
                        v.insert(pos, n);
                        return true;
                    }
                    Err(_) => self.convert(true),
                },
                None => {
                    let fits = v.len() < enc.set_entries && m.len() <= enc.set_value;
                    self.convert(!fits);
                }
            }
        }
        if let Set::Pack(p) = self {
            if p.iter().any(|x| x == m) {
                return false;
            }
            if p.len() < enc.set_entries && m.len() <= enc.set_value {
                p.push_back(&[m]);
                return true;
            }
            self.convert(true);
        }
        let Set::Table(t) = self else { unreachable!("converted above") };
        if t.find(m).is_some() {
            return false;
        }
        t.insert(Member { next: 0, member: SmallBytes::new(m) });
        true
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Ints(v) => {
                let Some(pos) = parse_i64(m).and_then(|n| v.binary_search(&n).ok()) else { return false };
                v.remove(pos);
                if v.capacity() > 2 * v.len() + 8 {
                    v.shrink_to_fit();
                }
                true
            }
            Set::Pack(p) => match p.elements().find(|a| a.data == m) {
                Some(a) => {
                    p.remove(a.range(), 1);
                    true
                }
                None => false,
            },
            Set::Table(t) => t.remove(m).is_some(),
        }
    }

    /// Moves to a string form: the table, or (`to_table` false) a pack.
    fn convert(&mut self, to_table: bool) {
        let members: Vec<Vec<u8>> = {
            let mut all = Vec::with_capacity(self.len());
            self.for_each(|e| all.push(e.to_vec()));
            all
        };
        if to_table {
            let mut d = Dict::new(rand::random());
            for m in members {
                d.insert(Member { next: 0, member: SmallBytes::from_vec(m) });
            }
            *self = Set::Table(Box::new(d));
        } else {
            let mut p = Pack::new();
            let refs: Vec<&[u8]> = members.iter().map(|m| m.as_slice()).collect();
            p.push_back(&refs);
            *self = Set::Pack(p);
        }
    }

    pub fn for_each(&self, mut f: impl FnMut(Elem<'_>)) {
        match self {
            Set::Ints(v) => v.iter().for_each(|n| f(Elem::Int(*n))),
            Set::Pack(p) => p.iter().for_each(|m| f(Elem::Bytes(m))),
            Set::Table(t) => t.iter().for_each(|m| f(Elem::Bytes(&m.member))),
        }
    }

    /// Every member as owned bytes.
    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut all = Vec::with_capacity(self.len());
        self.for_each(|e| all.push(e.to_vec()));
        all
    }

    /// A uniformly random member.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<Elem<'_>> {
        if self.is_empty() {
            return None;
        }
        match self {
            Set::Ints(v) => Some(Elem::Int(v[rng.gen_range(0..v.len())])),
            Set::Pack(p) => p.iter().nth(rng.gen_range(0..p.len())).map(Elem::Bytes),
            Set::Table(t) => t.random(rng).map(|id| Elem::Bytes(&t.entry(id).member)),
        }
    }

    /// One SSCAN step; the small forms return everything with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Elem<'_>)) -> u64 {
        match self {
            Set::Table(t) => t.scan(cursor, |m| f(Elem::Bytes(&m.member))),
            _ => {
                self.for_each(f);
                0
            }
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            Set::Ints(v) => v.capacity() * 8 + 24,
            Set::Pack(p) => p.byte_size(),
            Set::Table(t) => {
                let mut n = t.overhead_bytes() + std::mem::size_of::<Dict<Member>>();
                t.iter().for_each(|m| n += m.member.heap_size());
                n
            }
        }
    }
}
