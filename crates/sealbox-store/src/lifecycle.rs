//! The life of a blob, kept in the meta store so that no step needs a scan of every record:
//!
//! ```text
//! written ──(record commit)──▶ committed ──(overwrite/delete, same transaction)──▶ pending deletion ──(grace)──▶ removed
//!    │                                                                                    ▲
//!    └──(no record took it within the orphan age: an interrupted request)─────────────────┘
//! ```
//!
//! - **written**: [`crate::BlobWriter::commit`] adds the blob to `blob_write_intents` just before
//!   the rename makes it visible. The record commit that names it removes the intent in its own
//!   transaction and fails if the intent is gone (so a blob the sweep already condemned is never
//!   named by a record).
//! - **pending deletion**: the transaction that replaces or deletes a record (or a part, an upload,
//!   a bucket) queues the blobs it stops naming in `blob_pending_deletion`, with the time.
//! - **removed**: [`crate::BlobStore::collect_garbage`] deletes queued files older than the grace
//!   period, so a GET that loaded the old record just before the overwrite still finds its blobs
//!   (on one node it also holds them open; on a shared S3 backend the grace period is all there
//!   is). It also moves intents older than the orphan age into the queue: a periodic orphan
//!   sweep that looks only at candidates, never at every record.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Transaction};

use crate::meta::MetaStore;
use crate::{Result, StoreError};

pub(crate) const LIFECYCLE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blob_write_intents (
    blob TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blob_write_intents_by_age ON blob_write_intents (created_ms);
CREATE TABLE IF NOT EXISTS blob_pending_deletion (
    blob TEXT PRIMARY KEY,
    queued_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blob_pending_deletion_by_age ON blob_pending_deletion (queued_ms);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// Wall-clock milliseconds: queue times must compare across restarts (and, later, across nodes).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A fresh object generation: every write of an object row (PUT, Complete, tags, rewrap) takes
/// one, from one counter, so a generation is never reused even after a delete and re-create.
pub(crate) fn next_generation(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx.query_row(
        "INSERT INTO counters (name, value) VALUES ('object_generation', 1)
         ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
        [],
        |r| r.get(0),
    )?)
}

/// Queues blobs a record no longer names, in the transaction that stops naming them.
pub(crate) fn queue_deletion_tx<'a>(tx: &Transaction<'_>, blobs: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO blob_pending_deletion (blob, queued_ms) VALUES (?1, ?2) ON CONFLICT (blob) DO NOTHING",
    )?;
    for blob in blobs {
        stmt.execute(params![blob, now])?;
    }
    Ok(())
}

/// Takes newly written blobs out of `blob_write_intents` as a record starts naming them. A blob
/// without an intent was never written through [`crate::BlobWriter`], or the orphan sweep has
/// already queued it for deletion: naming it would commit a record to missing bytes.
pub(crate) fn claim_written_tx<'a>(tx: &Transaction<'_>, blobs: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut stmt = tx.prepare_cached("DELETE FROM blob_write_intents WHERE blob = ?1")?;
    for blob in blobs {
        if stmt.execute(params![blob])? != 1 {
            return Err(StoreError::BlobNotWritten(blob.to_owned()));
        }
    }
    Ok(())
}

impl MetaStore {
    /// Records that `blob` is about to become visible and no record names it yet.
    ///
    /// Written without waiting for an fsync (the next durable commit, usually the record that
    /// names the blob, carries it to disk): a crash can lose only intents of blobs that no record
    /// names, and the start-up sweep removes exactly those. Saves one fsync per blob.
    pub fn record_blob_written(&self, blob: &str) -> Result<()> {
        let conn = self.conn();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let inserted = conn.execute(
            "INSERT INTO blob_write_intents (blob, created_ms) VALUES (?1, ?2) ON CONFLICT (blob) DO NOTHING",
            params![blob, now_ms()],
        );
        let restored = conn.pragma_update(None, "synchronous", "FULL");
        inserted?;
        restored?;
        Ok(())
    }

    /// Drops the intents of blobs that were deleted without ever being named (a failed write).
    pub fn forget_blob_intents(&self, blobs: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM blob_write_intents WHERE blob = ?1")?;
            for blob in blobs {
                stmt.execute(params![blob])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Orphan sweep: intents older than `written_before_ms` belong to writes no record took (the
    /// request died between the blob and the record); they move to the deletion queue. Returns
    /// how many moved.
    pub fn expire_blob_intents(&self, written_before_ms: i64) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO blob_pending_deletion (blob, queued_ms)
             SELECT blob, created_ms FROM blob_write_intents WHERE created_ms < ?1
             ON CONFLICT (blob) DO NOTHING",
            params![written_before_ms],
        )?;
        let moved = tx.execute("DELETE FROM blob_write_intents WHERE created_ms < ?1", params![written_before_ms])?;
        tx.commit()?;
        Ok(moved)
    }

    /// Up to `limit` queued blobs whose grace period is over (queued at or before the cut-off),
    /// oldest first.
    pub fn due_blob_deletions(&self, queued_before_ms: i64, limit: usize) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT blob FROM blob_pending_deletion WHERE queued_ms <= ?1 ORDER BY queued_ms LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![queued_before_ms, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    /// Forgets queued blobs once their files are gone.
    pub fn forget_blob_deletions(&self, blobs: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM blob_pending_deletion WHERE blob = ?1")?;
            for blob in blobs {
                stmt.execute(params![blob])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// (blobs queued for deletion, blobs written but not yet named), for metrics.
    pub fn blob_lifecycle_counts(&self) -> Result<(u64, u64)> {
        let conn = self.conn();
        let pending: i64 = conn.query_row("SELECT COUNT(*) FROM blob_pending_deletion", [], |r| r.get(0))?;
        let intents: i64 = conn.query_row("SELECT COUNT(*) FROM blob_write_intents", [], |r| r.get(0))?;
        Ok((pending as u64, intents as u64))
    }

    /// After the start-up sweep has removed every file no record names, neither queue describes
    /// anything left on disk.
    pub(crate) fn clear_blob_lifecycle(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM blob_write_intents", [])?;
        tx.execute("DELETE FROM blob_pending_deletion", [])?;
        tx.commit()?;
        Ok(())
    }
}
