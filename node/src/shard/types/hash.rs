//! The hash type: field/value pairs in a `Pack` while small (Redis's `listpack` encoding),
//! in a chained table once it grows past `hash-max-listpack-entries` fields or a field or
//! value longer than `hash-max-listpack-value` (Redis's `hashtable`). Like Redis, a hash
//! never goes back to the small form.
//!
//! Fields may expire (Redis 7.4's HEXPIRE): a field given a TTL moves the hash to the table
//! form, which keeps each field's expiry time and a count of fields that have one, so hashes
//! without TTLs pay nothing. Expired fields are removed when the hash is next used, and by
//! the shard's tick.

use super::pack::Pack;
use super::Encodings;
use crate::shard::bytes::SmallBytes;
use crate::shard::dict::{Dict, Slot};

pub struct Field {
    next: u32,
    pub field: SmallBytes,
    pub value: SmallBytes,
    /// Absolute expiry in Unix ms, 0 for none.
    pub expire_at: u64,
}

/// The table form: the fields, and how many of them have a TTL.
pub struct FieldTable {
    dict: Dict<Field>,
    ttls: usize,
}

impl std::ops::Deref for FieldTable {
    type Target = Dict<Field>;
    fn deref(&self) -> &Dict<Field> {
        &self.dict
    }
}

impl std::ops::DerefMut for FieldTable {
    fn deref_mut(&mut self) -> &mut Dict<Field> {
        &mut self.dict
    }
}

impl FieldTable {
    fn new() -> FieldTable {
        FieldTable { dict: Dict::new(rand::random()), ttls: 0 }
    }
}

impl Slot for Field {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.field
    }
    #[inline]
    fn next(&self) -> u32 {
        self.next
    }
    #[inline]
    fn set_next(&mut self, next: u32) {
        self.next = next;
    }
    fn vacant(next: u32) -> Field {
        Field { next, field: SmallBytes::EMPTY, value: SmallBytes::EMPTY, expire_at: 0 }
    }
}

pub enum Hash {
    /// Field, value, field, value, ...
    Pack(Pack),
    Table(Box<FieldTable>),
}

impl Clone for Hash {
    fn clone(&self) -> Hash {
        match self {
            Hash::Pack(p) => Hash::Pack(p.clone()),
            Hash::Table(t) => {
                let mut d = FieldTable::new();
                for f in t.iter() {
                    d.insert(Field { next: 0, field: f.field.clone(), value: f.value.clone(), expire_at: f.expire_at });
                }
                d.ttls = t.ttls;
                Hash::Table(Box::new(d))
            }
        }
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({}, {} fields)", self.encoding(), self.len())
    }
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Pack(Pack::new())
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Pack(p) => p.len() / 2,
            Hash::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Pack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// Byte range of `field`'s value element in the pack, and of the field+value pair.
    fn pack_find(p: &Pack, field: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
        let mut it = p.elements();
        while let Some(f) = it.next() {
            let v = it.next().expect("pairs");
            if f.data == field {
                return Some((v.range(), f.span.0..v.span.1));
            }
        }
        None
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Pack(p) => Self::pack_find(p, field).map(|(v, _)| p.at(v.start).data),
            Hash::Table(t) => t.find_no_step(field).map(|id| t.entry(id).value.as_slice()),
        }
    }

    /// Sets a field; true when it is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], enc: &Encodings) -> bool {
        if let Hash::Pack(p) = self {
            if field.len() > enc.hash_value || value.len() > enc.hash_value {
                self.convert();
            } else {
                match Self::pack_find(p, field) {
                    Some((v, _)) => {
                        p.splice(v, 1, &[value]);
                        return false;
                    }
                    None if p.len() / 2 < enc.hash_entries => {
                        p.push_back(&[field, value]);
                        return true;
                    }
                    None => self.convert(),
                }
            }
        }
        let Hash::Table(t) = self else { unreachable!("converted above") };
        match t.find(field) {
            Some(id) => {
                let e = t.entry_mut(id);
                e.value = SmallBytes::new(value);
                // Setting a field's value clears its TTL, as in Redis 7.4.
                if std::mem::take(&mut e.expire_at) != 0 {
                    t.ttls -= 1;
                }
                false
            }
            None => {
                t.insert(Field { next: 0, field: SmallBytes::new(field), value: SmallBytes::new(value), expire_at: 0 });
                true
            }
        }
    }

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Pack(p) => match Self::pack_find(p, field) {
                Some((_, pair)) => {
                    p.remove(pair, 2);
                    true
                }
                None => false,
            },
            Hash::Table(t) => match t.remove(field) {
                Some(f) => {
                    if f.expire_at != 0 {
                        t.ttls -= 1;
                    }
                    true
                }
                None => false,
            },
        }
    }

    fn convert(&mut self) {
        let Hash::Pack(p) = self else { return };
        let mut d = FieldTable::new();
        let mut it = p.iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            d.insert(Field { next: 0, field: SmallBytes::new(f), value: SmallBytes::new(v), expire_at: 0 });
        }
        drop(it);
        *self = Hash::Table(Box::new(d));
    }

    /// Visits every field and value.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            Hash::Pack(p) => {
                let mut it = p.iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    f(k, v);
                }
            }
            Hash::Table(t) => t.iter().for_each(|e| f(&e.field, &e.value)),
        }
    }

    /// The pair at a uniformly random position.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Pack(p) => {
                if p.is_empty() {
                    return None;
                }
                let i = rng.gen_range(0..p.len() / 2);
                let mut it = p.iter().skip(2 * i);
                Some((it.next()?, it.next()?))
            }
            Hash::Table(t) => t.random(rng).map(|id| {
                let e = t.entry(id);
                (e.field.as_slice(), e.value.as_slice())
            }),
        }
    }

    /// One HSCAN step: a small hash returns everything with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Pack(_) => {
                self.for_each(f);
                0
            }
            Hash::Table(t) => t.scan(cursor, |e| f(&e.field, &e.value)),
        }
    }

    /// Whether some field has a TTL.
    pub fn has_ttls(&self) -> bool {
        matches!(self, Hash::Table(t) if t.ttls > 0)
    }

    /// A field's expiry: None when the field is missing, Some(0) when it has no TTL.
    pub fn field_expire(&self, field: &[u8]) -> Option<u64> {
        match self {
            Hash::Pack(p) => Self::pack_find(p, field).map(|_| 0),
            Hash::Table(t) => t.find_no_step(field).map(|id| t.entry(id).expire_at),
        }
    }

    /// Sets (or with 0, clears) the TTL of an existing field; false when it is missing.
    pub fn set_field_expire(&mut self, field: &[u8], at: u64) -> bool {
        if self.get(field).is_none() {
            return false;
        }
        if at == 0 && !self.has_ttls() {
            return true;
        }
        self.convert();
        let Hash::Table(t) = self else { unreachable!("converted above") };
        let id = t.find(field).expect("present");
        let e = t.entry_mut(id);
        let had = std::mem::replace(&mut e.expire_at, at) != 0;
        match (had, at != 0) {
            (false, true) => t.ttls += 1,
            (true, false) => t.ttls -= 1,
            _ => {}
        }
        true
    }

    /// Removes the fields whose time has come; their names.
    pub fn purge_expired(&mut self, now: u64) -> Vec<Vec<u8>> {
        let Hash::Table(t) = self else { return Vec::new() };
        if t.ttls == 0 {
            return Vec::new();
        }
        let due: Vec<Vec<u8>> =
            t.iter().filter(|f| f.expire_at != 0 && f.expire_at <= now).map(|f| f.field.to_vec()).collect();
        for f in &due {
            t.remove(f);
            t.ttls -= 1;
        }
        due
    }

    /// Heap bytes, for memory accounting.
    pub fn heap_size(&self) -> usize {
        match self {
            Hash::Pack(p) => p.byte_size(),
            Hash::Table(t) => {
                let mut n = t.overhead_bytes() + std::mem::size_of::<FieldTable>();
                t.iter().for_each(|e| n += e.field.heap_size() + e.value.heap_size());
                n
            }
        }
    }
}
