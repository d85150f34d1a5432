//! Objects in the object store (a local directory by default): instance
//! files, study index records, reconciliation queue records.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

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
        std::fs::create_dir_all(dir).map_err(io_error)?;
        Ok(Self::new(Arc::new(LocalFileSystem::new_with_prefix(dir)?)))
    }

    /// Write an object (whole or not at all).
    pub async fn put(&self, path: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&Path::from(path), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Write an object from a local file, streamed in chunks (whole or not at all).
    pub async fn put_file(&self, path: &str, file: &std::path::Path) -> Result<()> {
        let mut source = tokio::fs::File::open(file).await.map_err(io_error)?;
        let mut upload = WriteMultipart::new(self.inner.put_multipart(&Path::from(path)).await?);
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = match source.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    upload.abort().await?;
                    return Err(io_error(e));
                }
            };
            upload.wait_for_capacity(2).await?;
            upload.write(&buffer[..n]);
        }
        upload.finish().await?;
        Ok(())
    }

    /// An object's bytes as a stream of chunks; `None` if there is none.
    pub async fn get_stream(
        &self,
        path: &str,
    ) -> Result<Option<BoxStream<'static, Result<Bytes>>>> {
        match self.inner.get(&Path::from(path)).await {
            Ok(result) => Ok(Some(result.into_stream().map_err(Into::into).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the object holds the same bytes as a local file; `None` if
    /// there is no object. Compared chunk by chunk, never whole in memory.
    pub async fn same_as_file(&self, path: &str, file: &std::path::Path) -> Result<Option<bool>> {
        let size = tokio::fs::metadata(file).await.map_err(io_error)?.len();
        let meta = match self.inner.head(&Path::from(path)).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if meta.size != size {
            return Ok(Some(false));
        }
        let Some(mut stored) = self.get_stream(path).await? else {
            return Ok(None);
        };
        let mut local = tokio::fs::File::open(file).await.map_err(io_error)?;
        let mut buffer = Vec::new();
        while let Some(chunk) = stored.next().await {
            let chunk = chunk?;
            buffer.resize(chunk.len(), 0);
            if local.read_exact(&mut buffer).await.is_err() || buffer[..] != chunk[..] {
                return Ok(Some(false));
            }
        }
        Ok(Some(true))
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

/// Bytes read from a local file per write to the object store.
const CHUNK: usize = 1 << 20;

fn io_error(e: std::io::Error) -> ImagingError {
    ImagingError::Store(object_store::Error::Generic {
        store: "local",
        source: Box::new(e),
    })
}
