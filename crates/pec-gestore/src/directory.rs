//! The engine's [`Directory`] over the local Indice copy (pec.md §7.3) and this gestore's
//! domains, and the watcher that reloads the copy when `pec index import` changes it.

use crate::Gestore;
use pec_engine::Directory;
use pec_index::Index;
use pec_message::report::{DirectoryEntry, ProviderDirectory};
use pec_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The Indice copy plus the local domains.
pub struct LocalDirectory<'a> {
    /// The Indice copy.
    pub index: &'a Index,
    /// Domains served here.
    pub local: &'a [String],
}

impl ProviderDirectory for LocalDirectory<'_> {
    fn by_certificate_hash(&self, sha1_hex: &str) -> Option<DirectoryEntry> {
        ProviderDirectory::by_certificate_hash(self.index, sha1_hex)
    }
}

impl Directory for LocalDirectory<'_> {
    fn is_certified_domain(&self, domain: &str) -> bool {
        self.index.by_domain(domain).is_some()
    }
    fn is_local_domain(&self, domain: &str) -> bool {
        self.local.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// Reloads the Indice copy when its file changes; a file that does not parse is reported and
/// the last good copy stays in use (pec.md §7.3).
pub(crate) async fn watch<S: Store>(g: Arc<Gestore<S>>) {
    let path = g.settings.index_path.clone();
    let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = mtime(&path);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = mtime(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match std::fs::read_to_string(&path).map(|t| Index::from_ldif(&t)) {
            Ok(Ok(index)) => {
                tracing::info!(records = index.records.len(), "Indice copy reloaded");
                g.set_index(index);
            }
            Ok(Err(e)) => {
                tracing::error!("Indice copy not reloaded, keeping the last good one: {e}")
            }
            Err(e) => tracing::error!("Indice copy not readable, keeping the last good one: {e}"),
        }
    }
}
