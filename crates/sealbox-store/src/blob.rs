use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::{Result, StoreError};

/// A blob's name: a random UUID in hex. Never derived from the object key, so file names leak
/// nothing about what is stored.
pub type BlobId = String;

/// Object bytes as files under `<data>/blobs/<2 hex>/<id>`, written through `<data>/tmp`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    pub fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(Self { root, tmp })
    }

    fn path_of(&self, id: &str) -> PathBuf {
        let fan = id.get(..2).unwrap_or("00");
        self.root.join(fan).join(id)
    }

    /// Starts a new blob in the temp directory. Nothing is visible until [`BlobWriter::commit`].
    pub async fn create(&self) -> Result<BlobWriter> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp_path = self.tmp.join(format!("{id}.tmp"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .await
            .map_err(StoreError::from_io)?;
        Ok(BlobWriter {
            id,
            tmp_path,
            root: self.root.clone(),
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            written: 0,
        })
    }

    /// Opens a committed blob positioned at `offset`.
    pub async fn open_at(&self, id: &str, offset: u64) -> Result<tokio::fs::File> {
        let mut file = tokio::fs::File::open(self.path_of(id)).await?;
        if offset > 0 {
            file.seek(io::SeekFrom::Start(offset)).await?;
        }
        Ok(file)
    }

    /// Size of a committed blob on disk.
    pub async fn stored_len(&self, id: &str) -> Result<u64> {
        Ok(tokio::fs::metadata(self.path_of(id)).await?.len())
    }

    /// Path of a committed blob (for tests and tools that inspect the data dir).
    pub fn blob_path(&self, id: &str) -> PathBuf {
        self.path_of(id)
    }

    /// Deletes blobs after the metadata that named them is gone. Failure only leaks an orphan,
    /// which the next start-up sweep removes, so errors are logged, not returned.
    pub async fn remove(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Err(err) = tokio::fs::remove_file(self.path_of(&id)).await {
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(blob = %id, %err, "could not remove blob; the start-up sweep will");
                }
            }
        }
    }

    /// Start-up sweep: removes temp files (writes a crash interrupted) and blobs no record names.
    /// Returns (temp files removed, orphan blobs removed).
    pub fn remove_orphans(&self, referenced: &HashSet<String>) -> Result<(usize, usize)> {
        let mut temps = 0;
        for entry in std::fs::read_dir(&self.tmp)? {
            std::fs::remove_file(entry?.path())?;
            temps += 1;
        }
        let mut orphans = 0;
        for fan in std::fs::read_dir(&self.root)? {
            let fan = fan?;
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(fan.path())? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !referenced.contains(&name) {
                    std::fs::remove_file(entry.path())?;
                    orphans += 1;
                }
            }
        }
        Ok((temps, orphans))
    }
}

/// A blob being written. Dropping it without `commit` removes the temp file.
pub struct BlobWriter {
    id: BlobId,
    tmp_path: PathBuf,
    /// The blob root; the final path is `root/<fan>/<id>`.
    root: PathBuf,
    file: Option<BufWriter<tokio::fs::File>>,
    written: u64,
}

impl BlobWriter {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self.file.as_mut().ok_or_else(|| StoreError::Corrupt("blob writer used after commit".into()))?;
        file.write_all(bytes).await.map_err(StoreError::from_io)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Makes the blob durable and visible under its id: flush, fsync, rename, fsync the directory.
    /// Only after this returns may metadata naming the blob be committed.
    pub async fn commit(mut self) -> Result<BlobId> {
        let result = self.finish().await;
        if result.is_err() {
            // Disk full or I/O error while finishing: the partial temp file must not linger.
            let _ = tokio::fs::remove_file(&self.tmp_path).await;
        }
        result
    }

    async fn finish(&mut self) -> Result<BlobId> {
        let mut file = self.file.take().ok_or_else(|| StoreError::Corrupt("blob committed twice".into()))?;
        file.flush().await.map_err(StoreError::from_io)?;
        let file = file.into_inner();
        file.sync_all().await.map_err(StoreError::from_io)?;
        drop(file);
        let fan_dir = self.root.join(self.id.get(..2).unwrap_or("00"));
        let final_path = fan_dir.join(&self.id);
        let tmp_path = self.tmp_path.clone();
        let id = self.id.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            std::fs::create_dir_all(&fan_dir)?;
            std::fs::rename(&tmp_path, &final_path)?;
            std::fs::File::open(&fan_dir)?.sync_all()
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))?
        .map_err(StoreError::from_io)?;
        Ok(id)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            // Aborted write (client went away, bad digest): never leave the temp file behind.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
