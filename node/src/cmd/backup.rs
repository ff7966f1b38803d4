//! BACKUP NOW / LIST / RESTORE / STATUS: the admin commands over backups (see
//! `persist::backup`).

use super::gateway::GwCtx;
use crate::persist::backup::{restore, Meta};
use shoal_proto::{reply, Request};

/// BACKUP NOW: starts a backup in the background and answers its id.
pub fn now(ctx: &mut GwCtx<'_>) {
    match ctx.node.backups.start(ctx.node) {
        Ok(id) => reply::bulk(ctx.out, id.as_bytes()),
        Err(e) => ctx.err(&format!("ERR {e}")),
    }
}

fn meta_reply(ctx: &mut GwCtx<'_>, m: &Meta) {
    let proto = ctx.proto();
    reply::map_len(ctx.out, proto, 8);
    let out = &mut *ctx.out;
    reply::bulk(out, b"id");
    reply::bulk(out, m.id.as_bytes());
    reply::bulk(out, b"created");
    reply::integer(out, (m.created_ms / 1000) as i64);
    reply::bulk(out, b"keys");
    reply::integer(out, m.keys as i64);
    reply::bulk(out, b"rdb_bytes");
    reply::integer(out, m.rdb_bytes as i64);
    reply::bulk(out, b"stored_bytes");
    reply::integer(out, m.stored_bytes as i64);
    reply::bulk(out, b"encrypted");
    reply::integer(out, m.encrypted as i64);
    reply::bulk(out, b"log_offset");
    reply::integer(out, m.log_offset as i64);
    reply::bulk(out, b"node_id");
    reply::bulk(out, m.node_id.as_bytes());
}

/// BACKUP LIST: every complete backup, oldest first, each a map of its metadata.
pub async fn list(ctx: &mut GwCtx<'_>) {
    match ctx.node.backups.list().await {
        Ok(metas) => {
            reply::array_len(ctx.out, metas.len());
            for m in &metas {
                meta_reply(ctx, m);
            }
        }
        Err(e) => ctx.err(&format!("ERR {e}")),
    }
}

/// BACKUP RESTORE <id | latest>: replaces all data with the backup's; answers when done.
pub async fn restore(ctx: &mut GwCtx<'_>, req: &Request) {
    let which = String::from_utf8_lossy(req.arg(2)).into_owned();
    match restore::restore(ctx.node, &which).await {
        Ok(m) => meta_reply(ctx, &m),
        Err(e) => ctx.err(&format!("ERR {e}")),
    }
}

/// BACKUP STATUS: what runs now and how the last backup went, as INFO-style lines.
pub fn status(ctx: &mut GwCtx<'_>) {
    let b = &ctx.node.backups;
    let st = b.status();
    let s = &b.settings;
    let text = format!(
        "destination:{}\r\nencrypted:{}\r\nschedule:{:?}\r\nretention_days:{}\r\nretention_count:{}\r\nphase:{}\r\ncurrent:{}\r\nlast_id:{}\r\nlast_status:{}\r\nlast_error:{}\r\nlast_duration_ms:{}\r\ncompleted:{}\r\nfailed:{}\r\nrestores:{}\r\n",
        s.url.as_deref().unwrap_or(""),
        if s.key.is_some() { "yes" } else { "no" },
        s.schedule,
        s.retention_days,
        s.retention_count,
        st.phase,
        st.current.as_deref().unwrap_or(""),
        st.last_id.as_deref().unwrap_or(""),
        match st.last_ok {
            None => "none",
            Some(true) => "ok",
            Some(false) => "err",
        },
        st.last_error.as_deref().unwrap_or(""),
        st.last_duration_ms,
        st.completed,
        st.failed,
        st.restores,
    );
    let proto = ctx.proto();
    reply::verbatim(ctx.out, proto, b"txt", text.as_bytes());
}
