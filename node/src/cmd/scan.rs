//! The cursor protocol of HSCAN, SSCAN and ZSCAN: argument order and errors as Redis checks
//! them (cursor, then the key, then the options), and the loop that fills one reply.

use super::args::{self, ScanOptions};
use super::exec::{Exec, Loc};
use crate::shard::value::Kind;
use shoal_proto::{reply, Request};

/// Parses a collection scan and finds its key. `None` when the reply is already written (an
/// error, or the empty scan of a missing key).
pub fn start(ctx: &mut Exec<'_, '_>, req: &Request, kind: Kind, hscan: bool) -> Option<(Loc, ScanOptions)> {
    if args::parse_cursor(req.arg(2)).is_none() {
        ctx.err("ERR invalid cursor");
        return None;
    }
    let loc = match ctx.read_typed(req.arg(1), kind) {
        Err(_) => return None,
        Ok(None) => {
            reply::array_len(ctx.out, 2);
            reply::bulk(ctx.out, b"0");
            reply::array_len(ctx.out, 0);
            return None;
        }
        Ok(Some(loc)) => loc,
    };
    match args::scan_options(req, 2, false, hscan) {
        Ok(o) => Some((loc, o)),
        Err(e) => {
            ctx.err(e);
            None
        }
    }
}

/// An element a scan step visits: a member, or a field or member with its value or score.
pub type Visit<'v> = &'v mut dyn FnMut(&[u8], Option<&[u8]>);

/// The elements one reply carries: element and, for hashes and sorted sets, its value.
pub type Items = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Runs scan steps (`step(cursor, visit) -> next cursor`) until enough elements matched or
/// the budget is spent; the next cursor and the matched elements.
pub fn collect(o: &ScanOptions, mut step: impl FnMut(u64, Visit<'_>) -> u64) -> (u64, Items) {
    let mut items: Items = Vec::new();
    let mut cursor = o.cursor;
    let mut budget = o.count.saturating_mul(10);
    loop {
        cursor = step(cursor, &mut |e, v| {
            if args::scan_match(o, e) {
                items.push((e.to_vec(), v.map(|v| v.to_vec())));
            }
        });
        budget -= 1;
        if cursor == 0 || budget == 0 || items.len() >= o.count {
            break;
        }
    }
    (cursor, items)
}

/// Writes a scan reply; `paired` elements are sent with their value unless `novalues`.
pub fn write(ctx: &mut Exec<'_, '_>, o: &ScanOptions, paired: bool, cursor: u64, items: &Items) {
    let with_values = paired && !o.novalues;
    reply::array_len(ctx.out, 2);
    reply::bulk(ctx.out, cursor.to_string().as_bytes());
    reply::array_len(ctx.out, if with_values { items.len() * 2 } else { items.len() });
    for (e, v) in items {
        reply::bulk(ctx.out, e);
        if with_values {
            reply::bulk(ctx.out, v.as_deref().unwrap_or_default());
        }
    }
}
