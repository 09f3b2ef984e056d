//! Immutable content-addressed blobs (architecture §4): the SHA-256 of the bytes names the
//! object, `ab/cd/<hex>`; writing the same bytes twice is a no-op and nothing is rewritten.
//! The embedded backend keeps them as files under one directory through `object_store`'s
//! `LocalFileSystem`; the scale-out backend will use the same interface on S3.

use crate::{Result, StoreError};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

/// A blob store.
#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

/// The address of `bytes`: lower-case hex SHA-256.
pub fn address(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

fn location(hash: &str) -> Path {
    Path::from(format!("{}/{}/{hash}", &hash[..2], &hash[2..4]))
}

impl Blobs {
    /// Blobs as files under `root` (created if missing).
    pub fn local(root: &std::path::Path) -> Result<Blobs> {
        std::fs::create_dir_all(root)
            .map_err(|e| StoreError::Blob(format!("cannot create {}: {e}", root.display())))?;
        // fsync on: a blob is on disk before the commit that names it (crate contract).
        let fs = LocalFileSystem::new_with_prefix(root)
            .map_err(|e| StoreError::Blob(e.to_string()))?
            .with_fsync(true);
        Ok(Blobs {
            store: Arc::new(fs),
        })
    }

    /// Stores `bytes` (if not there yet) and returns its address.
    pub async fn put(&self, bytes: &[u8]) -> Result<String> {
        let hash = address(bytes);
        let loc = location(&hash);
        // Create mode: an existing blob (same bytes by construction) is left untouched.
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&loc, PutPayload::from(bytes.to_vec()), opts)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(hash),
            Err(e) => Err(StoreError::Blob(e.to_string())),
        }
    }

    /// Deletes the blob at `hash` (missing is fine). Only for blobs no committed row names:
    /// the virus store's retention purge (pec.md §8.4).
    pub async fn delete(&self, hash: &str) -> Result<()> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Corrupt(format!("bad blob address {hash}")));
        }
        match self.store.delete(&location(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::Blob(e.to_string())),
        }
    }

    /// The bytes at `hash`, checked against it.
    pub async fn get(&self, hash: &str) -> Result<Vec<u8>> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Corrupt(format!("bad blob address {hash}")));
        }
        let data = self
            .store
            .get(&location(hash))
            .await
            .map_err(|e| StoreError::Blob(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| StoreError::Blob(e.to_string()))?;
        if address(&data) != hash {
            return Err(StoreError::Corrupt(format!(
                "blob {hash} does not match its address"
            )));
        }
        Ok(data.to_vec())
    }
}
