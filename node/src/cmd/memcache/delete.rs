//! Deletion: delete (text and binary, whose CAS must match when given) and meta delete
//! (`md`), which can instead mark the item stale for stale-while-revalidate.

use super::{answer, count, count_cas, find, meta_of, next_cas, remove, set_meta, set_ttl_of, Outcome};
use crate::cmd::exec::Exec;
use crate::shard::item_meta::Meta;
use crate::shard::stats::McStat;
use shoal_proto::memcache::{McRequest, Wire};

pub(super) fn delete(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let compare = (r.wire == Wire::Binary && r.cas != 0).then_some(r.cas);
    let outcome = delete_item(ctx, r, compare, false, None);
    answer(ctx, r, outcome, 0);
}

/// `md <key> <flags>*`.
pub(super) fn meta_delete(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let f = &r.meta;
    let outcome = delete_item(ctx, r, f.compare_cas, f.invalidate, f.ttl);
    answer(ctx, r, outcome, 0);
}

/// Deletes the item, or with `invalidate` marks it stale with a new CAS value (and TTL).
fn delete_item(
    ctx: &mut Exec<'_, '_>,
    r: &McRequest,
    compare: Option<u64>,
    invalidate: bool,
    ttl: Option<i64>,
) -> Outcome {
    let key = r.key();
    let found = find(ctx, key, false);
    count(ctx, key, if found.is_some() { McStat::DeleteHits } else { McStat::DeleteMisses });
    let Some(loc) = found else {
        count_cas(ctx, key, compare.is_some(), Outcome::NotFound);
        return Outcome::NotFound;
    };
    let m = meta_of(ctx, loc);
    if compare.is_some_and(|c| m.cas == 0 || c != m.cas) {
        count_cas(ctx, key, true, Outcome::Exists);
        return Outcome::Exists;
    }
    count_cas(ctx, key, compare.is_some(), Outcome::Deleted);
    if !invalidate {
        remove(ctx, key);
        return Outcome::Deleted;
    }
    if let Some(t) = ttl {
        if !set_ttl_of(ctx, key, loc, t) {
            remove(ctx, key);
            return Outcome::Deleted;
        }
    }
    let cas = r.meta.new_cas.unwrap_or_else(|| next_cas(ctx, loc));
    set_meta(ctx, loc, Meta { cas, stale: true, won: false, ..m });
    Outcome::Deleted
}
