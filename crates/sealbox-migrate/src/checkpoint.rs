//! The local SQLite checkpoint. A row in `objects` means "this destination object was written
//! AND verified"; nothing else ever inserts there, so a killed run can only lose work, never
//! count unverified work as done.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::MigrateError;

/// One verified object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DoneRecord {
    pub dst_bucket: String,
    pub dst_key: String,
    pub src_key: String,
    /// What identifies this version of the source: ETag for S3, size+mtime for files.
    pub src_tag: String,
    pub size: u64,
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
    pub dst_etag: String,
    /// The destination's x-amz-checksum-sha256 (may be composite, `...-N`).
    pub dst_checksum: Option<String>,
    /// Multipart parts this run took over from a killed one (not stored).
    pub resumed_parts: u32,
}

/// A multipart upload started and not yet completed or aborted.
#[derive(Debug, Clone)]
pub(crate) struct OpenUpload {
    pub dst_bucket: String,
    pub dst_key: String,
    pub upload_id: String,
    /// The source version being uploaded; a resumed run reuses the upload only for the same one.
    pub src_tag: String,
    pub part_size: u64,
}

/// A part uploaded (and acknowledged with its checksum) inside an open upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadedPart {
    pub number: i32,
    pub etag: String,
    /// Base64 SHA-256 of the part's plaintext, as sent in x-amz-checksum-sha256.
    pub sha256_b64: String,
}

pub(crate) struct Checkpoint {
    path: PathBuf,
    db: Mutex<Connection>,
}

impl Checkpoint {
    /// Opens (creating if needed) the checkpoint for `job`; refuses one written for another job,
    /// since its "done" rows would describe other objects.
    pub(crate) fn open(path: &Path, job: &str) -> Result<Self, MigrateError> {
        let err = |source| MigrateError::Checkpoint { path: path.to_owned(), source };
        let db = Connection::open(path).map_err(err)?;
        // WAL + NORMAL: a power cut may lose the last few "done" rows (they are redone), never
        // invent one.
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS job(name TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS objects(
                dst_bucket TEXT NOT NULL, dst_key TEXT NOT NULL, src_key TEXT NOT NULL,
                src_tag TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
                dst_etag TEXT NOT NULL, dst_checksum TEXT, done_at TEXT NOT NULL,
                PRIMARY KEY(dst_bucket, dst_key));
             CREATE TABLE IF NOT EXISTS uploads(
                dst_bucket TEXT NOT NULL, dst_key TEXT NOT NULL, upload_id TEXT NOT NULL,
                src_tag TEXT NOT NULL, part_size INTEGER NOT NULL,
                PRIMARY KEY(dst_bucket, dst_key, upload_id));
             CREATE TABLE IF NOT EXISTS parts(
                upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, etag TEXT NOT NULL,
                sha256 TEXT NOT NULL, PRIMARY KEY(upload_id, part_number));",
        )
        .map_err(err)?;
        let existing: Option<String> =
            db.query_row("SELECT value FROM job WHERE name = 'job'", [], |r| r.get(0)).optional().map_err(err)?;
        match existing {
            Some(j) if j != job => {
                return Err(MigrateError::BadArgument(format!(
                    "checkpoint {} belongs to another migration ({j}); use another --checkpoint file",
                    path.display()
                )))
            }
            Some(_) => {}
            None => {
                db.execute("INSERT INTO job(name, value) VALUES('job', ?1)", params![job]).map_err(err)?;
            }
        }
        Ok(Checkpoint { path: path.to_owned(), db: Mutex::new(db) })
    }

    fn err(&self, source: rusqlite::Error) -> MigrateError {
        MigrateError::Checkpoint { path: self.path.clone(), source }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each call is one statement).
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn done(&self, dst_bucket: &str, dst_key: &str) -> Result<Option<DoneRecord>, MigrateError> {
        self.lock()
            .query_row(
                "SELECT src_key, src_tag, size, sha256, dst_etag, dst_checksum FROM objects
                 WHERE dst_bucket = ?1 AND dst_key = ?2",
                params![dst_bucket, dst_key],
                |r| {
                    Ok(DoneRecord {
                        dst_bucket: dst_bucket.to_owned(),
                        dst_key: dst_key.to_owned(),
                        src_key: r.get(0)?,
                        src_tag: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        sha256: r.get(3)?,
                        dst_etag: r.get(4)?,
                        dst_checksum: r.get(5)?,
                        resumed_parts: 0,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub(crate) fn mark_done(&self, rec: &DoneRecord) -> Result<(), MigrateError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO objects
                 (dst_bucket, dst_key, src_key, src_tag, size, sha256, dst_etag, dst_checksum, done_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    rec.dst_bucket,
                    rec.dst_key,
                    rec.src_key,
                    rec.src_tag,
                    rec.size as i64,
                    rec.sha256,
                    rec.dst_etag,
                    rec.dst_checksum,
                    now
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub(crate) fn forget(&self, dst_bucket: &str, dst_key: &str) -> Result<(), MigrateError> {
        self.lock()
            .execute("DELETE FROM objects WHERE dst_bucket = ?1 AND dst_key = ?2", params![dst_bucket, dst_key])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub(crate) fn add_upload(&self, u: &OpenUpload) -> Result<(), MigrateError> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO uploads(dst_bucket, dst_key, upload_id, src_tag, part_size)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![u.dst_bucket, u.dst_key, u.upload_id, u.src_tag, u.part_size as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub(crate) fn remove_upload(&self, u: &OpenUpload) -> Result<(), MigrateError> {
        let db = self.lock();
        db.execute("DELETE FROM parts WHERE upload_id = ?1", params![u.upload_id]).map_err(|e| self.err(e))?;
        db.execute(
            "DELETE FROM uploads WHERE dst_bucket = ?1 AND dst_key = ?2 AND upload_id = ?3",
            params![u.dst_bucket, u.dst_key, u.upload_id],
        )
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    pub(crate) fn add_part(&self, upload_id: &str, part: &UploadedPart) -> Result<(), MigrateError> {
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO parts(upload_id, part_number, etag, sha256) VALUES (?1, ?2, ?3, ?4)",
                params![upload_id, part.number, part.etag, part.sha256_b64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub(crate) fn parts(&self, upload_id: &str) -> Result<Vec<UploadedPart>, MigrateError> {
        let db = self.lock();
        let mut st = db
            .prepare("SELECT part_number, etag, sha256 FROM parts WHERE upload_id = ?1 ORDER BY part_number")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![upload_id], |r| {
                Ok(UploadedPart { number: r.get(0)?, etag: r.get(1)?, sha256_b64: r.get(2)? })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Uploads a killed run left open (to abort before starting again).
    pub(crate) fn open_uploads(&self) -> Result<Vec<OpenUpload>, MigrateError> {
        let db = self.lock();
        let mut st = db
            .prepare("SELECT dst_bucket, dst_key, upload_id, src_tag, part_size FROM uploads")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(OpenUpload {
                    dst_bucket: r.get(0)?,
                    dst_key: r.get(1)?,
                    upload_id: r.get(2)?,
                    src_tag: r.get(3)?,
                    part_size: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_rows_round_trip_and_jobs_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.sqlite");
        let cp = Checkpoint::open(&path, "a -> b").unwrap();
        let rec = DoneRecord {
            dst_bucket: "b".into(),
            dst_key: "k".into(),
            src_key: "k".into(),
            src_tag: "etag".into(),
            size: 3,
            sha256: "00".into(),
            dst_etag: "\"e\"".into(),
            dst_checksum: None,
            resumed_parts: 0,
        };
        assert_eq!(cp.done("b", "k").unwrap(), None);
        cp.mark_done(&rec).unwrap();
        drop(cp);
        let cp = Checkpoint::open(&path, "a -> b").unwrap();
        assert_eq!(cp.done("b", "k").unwrap(), Some(rec));
        drop(cp);
        assert!(Checkpoint::open(&path, "c -> d").is_err());
    }
}
