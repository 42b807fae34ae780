use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::{MetaStore, Result, StoreError};

/// A blob's name: a random UUID in hex. Never derived from the object key, so file names leak
/// nothing about what is stored.
pub type BlobId = String;

/// Object bytes as files under `<data>/blobs/<2 hex>/<id>`, written through `<data>/tmp`. The
/// meta store keeps each blob's place in its life cycle (see `lifecycle.rs`).
#[derive(Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    meta: Arc<MetaStore>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore").field("root", &self.root).finish_non_exhaustive()
    }
}

/// How long replaced blobs wait, and when an unnamed blob counts as an orphan.
#[derive(Debug, Clone, Copy)]
pub struct BlobLifecycle {
    /// A replaced or deleted blob stays this long after the record stopped naming it, so reads
    /// that loaded the old record still find it.
    pub grace: Duration,
    /// A blob written this long ago that no record took is an orphan (its request died).
    pub orphan_age: Duration,
}

impl Default for BlobLifecycle {
    fn default() -> Self {
        Self { grace: Duration::from_secs(60), orphan_age: Duration::from_secs(15 * 60) }
    }
}

/// What one garbage-collection pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs written but never named, moved to the deletion queue.
    pub orphans: usize,
    /// Queued blobs whose files were removed (or already gone).
    pub removed: usize,
}

/// Queued blobs handled per meta-store round trip.
const GC_BATCH: usize = 512;

impl BlobStore {
    pub fn open(data_dir: &Path, meta: Arc<MetaStore>) -> Result<Self> {
        let root = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(Self { root, tmp, meta })
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
            meta: self.meta.clone(),
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

    /// Deletes blobs that no record ever named (a write whose checks or commit failed), and their
    /// write intents. Blobs a record named are never removed here: the record change queues them
    /// and [`BlobStore::collect_garbage`] removes them after the grace period. Failure only leaks
    /// an orphan, which the orphan sweep removes, so errors are logged, not returned.
    pub async fn remove(&self, ids: impl IntoIterator<Item = String>) {
        let ids: Vec<String> = ids.into_iter().collect();
        if ids.is_empty() {
            return;
        }
        let this = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            for id in &ids {
                this.remove_file(id)?;
            }
            this.meta.forget_blob_intents(&ids)
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(%err, "could not remove unnamed blobs; the orphan sweep will"),
            Err(err) => tracing::warn!(%err, "blob removal task failed; the orphan sweep will"),
        }
    }

    /// Removes one blob file; one that is already gone counts as removed.
    fn remove_file(&self, id: &str) -> Result<()> {
        match std::fs::remove_file(self.path_of(id)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(StoreError::Io(err)),
            _ => Ok(()),
        }
    }

    /// One garbage-collection pass at wall-clock time `now_ms` (blocking): intents older than the
    /// orphan age are queued, then every queued blob older than the grace period is removed, file
    /// first and queue entry second (a crash in between only repeats the removal). Looks only at
    /// candidates, through the queues' time indexes, never at every record or file.
    pub fn collect_garbage(&self, now_ms: i64, policy: &BlobLifecycle) -> Result<GcReport> {
        let mut report = GcReport {
            orphans: self.meta.expire_blob_intents(now_ms - policy.orphan_age.as_millis() as i64)?,
            removed: 0,
        };
        let cutoff = now_ms - policy.grace.as_millis() as i64;
        loop {
            let due = self.meta.due_blob_deletions(cutoff, GC_BATCH)?;
            for id in &due {
                self.remove_file(id)?;
            }
            self.meta.forget_blob_deletions(&due)?;
            report.removed += due.len();
            if due.len() < GC_BATCH {
                return Ok(report);
            }
        }
    }

    /// The start-up sweep (blocking; run before serving): with no request in flight, every temp
    /// file and every blob no record names is garbage, whatever the queues say (a crash can lose
    /// the newest write intents, see [`MetaStore::record_blob_written`]). Scans every record and
    /// file once, then empties both queues. Returns (temp files removed, orphan blobs removed).
    pub fn sweep_at_start(&self) -> Result<(usize, usize)> {
        let referenced = self.meta.referenced_blobs()?;
        let removed = self.remove_orphans(&referenced)?;
        self.meta.clear_blob_lifecycle()?;
        Ok(removed)
    }

    /// Removes temp files (writes a crash interrupted) and blobs not in `referenced`.
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
    meta: Arc<MetaStore>,
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

    /// Makes the blob durable and visible under its id: flush, fsync, record the write intent,
    /// rename, fsync the directory. Only after this returns may metadata naming the blob be
    /// committed; until then (and if it never is) the orphan sweep finds it by its intent.
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
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            // The intent goes first: a blob is never visible under blobs/ without one (barring a
            // crash, which the start-up sweep covers).
            meta.record_blob_written(&id)?;
            let publish = || -> io::Result<()> {
                std::fs::create_dir_all(&fan_dir)?;
                std::fs::rename(&tmp_path, &final_path)?;
                std::fs::File::open(&fan_dir)?.sync_all()
            };
            publish().map_err(StoreError::from_io)
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        Ok(self.id.clone())
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
