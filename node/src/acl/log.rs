//! ACL LOG: the recent refusals (commands, keys, channels, failed AUTH), newest first, with
//! repeats of the same refusal within a minute folded into one entry as Redis does.

use parking_lot::Mutex;
use std::collections::VecDeque;

/// Redis's `acllog-max-len` default.
const MAX_ENTRIES: usize = 128;
/// Refusals this close together (and otherwise equal) are counted on one entry.
const GROUP_MS: u64 = 60_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub count: u64,
    /// command, key, channel or auth.
    pub reason: &'static str,
    /// toplevel, multi or lua.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub client_info: String,
}

#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl AclLog {
    /// Records a refusal at `now_ms`.
    pub fn add(
        &self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
        now_ms: u64,
    ) {
        let mut entries = self.entries.lock();
        let same = entries.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms.saturating_sub(e.updated_ms) < GROUP_MS
        });
        if let Some(i) = same {
            let mut e = entries.remove(i).expect("found above");
            e.count += 1;
            e.updated_ms = now_ms;
            e.client_info = client_info;
            entries.push_front(e);
            return;
        }
        entries.push_front(Entry {
            count: 1,
            reason,
            context,
            object,
            username,
            created_ms: now_ms,
            updated_ms: now_ms,
            client_info,
        });
        entries.truncate(MAX_ENTRIES);
    }

    /// The newest `n` entries.
    pub fn recent(&self, n: usize) -> Vec<Entry> {
        self.entries.lock().iter().take(n).cloned().collect()
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}
