//! Folder indexes shared between IMAP sessions: a session that selects a folder, or brings
//! its view up to date, reuses the index another session loaded when the store says the
//! folder has not changed since ([`Store::folder_version`]). Sessions on one mailbox (a
//! desktop client's several connections, a phone in IDLE) then hold one copy, and SELECT
//! costs one small read instead of reading every message row.
//!
//! When the folder did change, only what changed since the cached copy is read
//! ([`Store::folder_changes`]) and merged into a new copy, unless messages went away, in
//! which case the whole index is read again.
//!
//! A session changes its own view only through [`Arc::make_mut`], which copies a shared
//! index first: what the cache holds is never changed in place.

use pec_store::{Folder, IndexEntry, Result, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Index entries kept beyond those some session holds; above it, unheld indexes go.
const MAX_UNHELD_ENTRIES: usize = 500_000;

struct Cached {
    folder: Folder,
    entries: Arc<Vec<IndexEntry>>,
}

/// The shared indexes of one server, by (mailbox, folder).
#[derive(Default)]
pub struct IndexCache {
    folders: Mutex<HashMap<(String, String), Cached>>,
}

impl IndexCache {
    /// The current index of `folder`, shared when it has not changed; `None` if there is
    /// no such folder.
    pub async fn load<S: Store>(
        &self,
        store: &S,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(Folder, Arc<Vec<IndexEntry>>)>> {
        let key = (mailbox.to_string(), folder.to_string());
        let Some(version) = store.folder_version(mailbox, folder).await? else {
            self.lock().remove(&key);
            return Ok(None);
        };
        let cached = match self.lock().get(&key) {
            Some(c) if c.folder.version() == version => {
                return Ok(Some((c.folder.clone(), c.entries.clone())));
            }
            Some(c) if c.folder.uidvalidity == version.uidvalidity => {
                Some((c.folder.highest_modseq, c.entries.clone()))
            }
            _ => None,
        };
        let merged = match cached {
            Some((since, old)) => match store.folder_changes(mailbox, folder, since).await? {
                Some((f, changed, count)) => merge(&old, changed, count).map(|e| (f, e)),
                None => {
                    self.lock().remove(&key);
                    return Ok(None);
                }
            },
            None => None,
        };
        let (mut f, entries) = match merged {
            Some(x) => x,
            None => match store.folder_index(mailbox, folder).await? {
                Some(x) => x,
                None => {
                    self.lock().remove(&key);
                    return Ok(None);
                }
            },
        };
        f.messages = entries.len() as u32;
        f.unseen = entries.iter().filter(|e| !e.has_flag("\\Seen")).count() as u32;
        let entries = Arc::new(entries);
        let mut all = self.lock();
        // Another session may have loaded a newer one meanwhile: keep the newer.
        let newer = all
            .get(&key)
            .is_some_and(|c| c.folder.highest_modseq > f.highest_modseq);
        if !newer {
            all.insert(
                key,
                Cached {
                    folder: f.clone(),
                    entries: entries.clone(),
                },
            );
        }
        let unheld: usize = all
            .values()
            .filter(|c| Arc::strong_count(&c.entries) == 1)
            .map(|c| c.entries.len())
            .sum();
        if unheld > MAX_UNHELD_ENTRIES {
            all.retain(|_, c| Arc::strong_count(&c.entries) > 1);
        }
        Ok(Some((f, entries)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Cached>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.folders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `old` with `changed` applied (replaced by UID, or added), when that accounts for all
/// `count` messages; `None` when some went away since (the index is then read whole).
fn merge(old: &[IndexEntry], changed: Vec<IndexEntry>, count: u32) -> Option<Vec<IndexEntry>> {
    let mut v = old.to_vec();
    for e in changed {
        match v.binary_search_by_key(&e.uid, |x| x.uid) {
            Ok(i) => v[i] = e,
            Err(i) => v.insert(i, e),
        }
    }
    (v.len() == count as usize).then_some(v)
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexCache")
            .field("folders", &self.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pec_store::{Commit, FlagOp, NewMailbox, NewMessage, SqliteStore};

    fn message(bytes: &[u8]) -> NewMessage {
        NewMessage {
            mailbox: "c@b.test".into(),
            folder: "INBOX".into(),
            flags: String::new(),
            bytes: bytes.to_vec(),
            kind: "ordinaria".into(),
            identificativo: None,
            message_id: None,
            subject: None,
            date: 1_700_000_000,
        }
    }

    /// Loads INBOX through the cache and checks it against the store's own index.
    async fn same_as_store(cache: &IndexCache, s: &SqliteStore, what: &str) -> Folder {
        let (f, e) = cache.load(s, "c@b.test", "INBOX").await.unwrap().unwrap();
        let (_, fresh) = s.folder_index("c@b.test", "INBOX").await.unwrap().unwrap();
        assert_eq!(*e, fresh, "{what}");
        f
    }

    #[tokio::test]
    async fn sessions_share_an_index_until_the_folder_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        s.create_mailbox(NewMailbox {
            address: "c@b.test".into(),
            password_hash: String::new(),
            quota_bytes: 0,
            ordinary_policy: "anomalia".into(),
            service: false,
            ..Default::default()
        })
        .await
        .unwrap();
        s.commit(Commit {
            messages: vec![message(b"uno"), message(b"due")],
            ..Default::default()
        })
        .await
        .unwrap();
        let cache = IndexCache::default();
        let (_, a) = cache.load(&s, "c@b.test", "INBOX").await.unwrap().unwrap();
        let (_, b) = cache.load(&s, "c@b.test", "INBOX").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "an unchanged folder is shared");
        assert_eq!(a.len(), 2);

        let seen = vec!["\\Seen".to_string()];
        s.set_flags("c@b.test", "INBOX", &[1], FlagOp::Add, &seen, None)
            .await
            .unwrap();
        let (_, c) = cache.load(&s, "c@b.test", "INBOX").await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "a changed folder is read again");
        assert!(c[0].has_flag("\\Seen") && !a[0].has_flag("\\Seen"));

        // A session's own change copies its view first: the shared index stays as it was.
        let mut mine = c.clone();
        Arc::make_mut(&mut mine)[1].flags = "\\Flagged".into();
        let (_, d) = cache.load(&s, "c@b.test", "INBOX").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&c, &d));
        assert!(!d[1].has_flag("\\Flagged"));

        // Changes are merged into a copy; removals make it read the whole index again.
        // Either way the result is what the store holds.
        s.commit(Commit {
            messages: vec![message(b"tre")],
            ..Default::default()
        })
        .await
        .unwrap();
        let f = same_as_store(&cache, &s, "a new message is merged").await;
        assert_eq!((f.messages, f.unseen), (3, 2));
        s.delete_messages("c@b.test", "INBOX", &[2]).await.unwrap();
        let f = same_as_store(&cache, &s, "a removal reads the index again").await;
        assert_eq!(f.messages, 2);

        assert!(
            cache
                .load(&s, "c@b.test", "Nessuna")
                .await
                .unwrap()
                .is_none()
        );
    }
}
