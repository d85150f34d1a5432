//! Objects in the object store (a local directory by default): instance
//! files, study index records, reconciliation queue records.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{ImagingError, Result};

/// The object store holding images and their records.
#[derive(Debug, Clone)]
pub struct ImageStore {
    inner: Arc<dyn ObjectStore>,
}

impl ImageStore {
    /// Use any object store (S3-compatible, in memory...).
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }

    /// A store in a local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            ImagingError::Store(object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })
        })?;
        Ok(Self::new(Arc::new(LocalFileSystem::new_with_prefix(dir)?)))
    }

    /// Write an object (whole or not at all).
    pub async fn put(&self, path: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&Path::from(path), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Read an object; `None` if there is none.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        match self.inner.get(&Path::from(path)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete an object (absent is fine).
    pub async fn delete(&self, path: &str) -> Result<()> {
        match self.inner.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Paths of the objects under a prefix.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let metas: Vec<_> = self
            .inner
            .list(Some(&Path::from(prefix)))
            .try_collect()
            .await?;
        Ok(metas.into_iter().map(|m| m.location.to_string()).collect())
    }
}
