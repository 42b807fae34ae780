use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::integrity::{access_key_row, upgrade_schema, user_policy_row, user_row, RowAuthenticator, BUCKET_FIELDS};
use crate::lifecycle::{claim_written_tx, next_generation, queue_deletion_tx, LIFECYCLE_SCHEMA};
use crate::records::{BucketRecord, ObjectRecord, PartRecord, StoredPart, UploadRecord};
use crate::{Result, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    encryption TEXT,
    policy TEXT,
    versioning TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    doc TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    initiated_ms INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, initiated_ms);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    secret_wrapped BLOB NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS user_policies (
    user_name TEXT NOT NULL REFERENCES users (name),
    policy_name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (user_name, policy_name)
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
";

/// Guards a conditional write (S3 conditional PUT / Complete / Copy), checked inside the
/// transaction that commits the write, so of concurrent writers exactly one can win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    None,
    /// `If-None-Match: *`: only if no object exists under the key (else `PreconditionFailed`).
    IfAbsent,
    /// `If-Match: "etag"`: only if the current object has this ETag (else `PreconditionFailed`).
    /// The caller has seen the object exist when the request started, so an object gone by
    /// commit time was deleted meanwhile: `ConditionalConflict`.
    IfEtag(String),
}

/// The metadata half of the store. One connection behind a mutex: SQLite serialises writers
/// anyway, and every call is short. All methods block; async callers use `spawn_blocking`.
pub struct MetaStore {
    conn: Mutex<Connection>,
    /// MACs configuration rows (see `integrity.rs`); installed by the server after start-up.
    pub(crate) rows: OnceLock<Arc<dyn RowAuthenticator>>,
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None` when
/// no such bound exists (empty prefix or all 0xFF).
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xFF {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

impl MetaStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        // WAL + FULL: a committed transaction survives power loss; readers never block the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        upgrade_schema(&conn)?;
        migrate_objects_generation(&conn)?;
        conn.execute_batch(LIFECYCLE_SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn), rows: OnceLock::new() })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back),
        // so a poisoned mutex is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- buckets ----

    pub fn create_bucket(&self, name: &str, now_ms: i64) -> Result<()> {
        // A new bucket has no settings; their MACs cover that absence, so a setting removed later
        // by editing meta.db is detected like a changed one.
        let [e, p, v] = BUCKET_FIELDS.map(|f| self.bucket_config_mac(name, f, None));
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO buckets (name, created_ms, encryption_mac, policy_mac, versioning_mac) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            params![name, now_ms, e, p, v],
        )?;
        if inserted == 0 {
            return Err(StoreError::BucketExists(name.to_owned()));
        }
        Ok(())
    }

    /// A bucket and its settings, each checked against its MAC.
    pub fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let row = self
            .conn()
            .query_row(&format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"), params![name], bucket_row)
            .optional()?;
        row.map(|r| self.verified_bucket(r)).transpose()
    }

    /// Whether a bucket exists, without reading its settings: lets the root user replace a
    /// setting that failed its integrity check.
    pub fn bucket_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM buckets WHERE name = ?1", params![name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn verified_bucket(&self, (rec, macs): (BucketRecord, [Option<Vec<u8>>; 3])) -> Result<BucketRecord> {
        for (field, mac) in BUCKET_FIELDS.into_iter().zip(&macs) {
            let value = match field {
                BucketConfig::Encryption => rec.encryption.as_deref(),
                BucketConfig::Policy => rec.policy.as_deref(),
                BucketConfig::Versioning => rec.versioning.as_deref(),
            };
            self.check_bucket_config(&rec.name, field, value, mac.as_deref())?;
        }
        Ok(rec)
    }

    pub fn require_bucket(&self, name: &str) -> Result<BucketRecord> {
        self.bucket(name)?.ok_or_else(|| StoreError::NoSuchBucket(name.to_owned()))
    }

    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        let rows = {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name"))?;
            let rows = stmt.query_map([], bucket_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        rows.into_iter().map(|r| self.verified_bucket(r)).collect()
    }

    /// Objects in a bucket and their plaintext bytes (one indexed scan of the bucket's rows).
    pub fn bucket_usage(&self, name: &str) -> Result<(u64, u64)> {
        let conn = self.conn();
        let (count, bytes): (i64, i64) = conn.query_row(
            "SELECT count(*), coalesce(sum(size), 0) FROM objects WHERE bucket = ?1",
            params![name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((count.max(0) as u64, bytes.max(0) as u64))
    }

    pub fn delete_bucket(&self, name: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM buckets WHERE name = ?1", params![name], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if !exists {
            return Err(StoreError::NoSuchBucket(name.to_owned()));
        }
        let has_objects: bool = tx
            .query_row("SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1", params![name], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if has_objects {
            return Err(StoreError::BucketNotEmpty(name.to_owned()));
        }
        // In-progress uploads do not keep a bucket alive on AWS either; their parts are dropped
        // and their blobs queued for deletion.
        let mut blobs = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT upload_id, part_number, last_modified_ms, doc FROM parts
                 WHERE upload_id IN (SELECT upload_id FROM uploads WHERE bucket = ?1)",
            )?;
            for row in stmt.query_map(params![name], part_from_row)? {
                blobs.push(row??.part.blob);
            }
        }
        queue_deletion_tx(&tx, blobs.iter().map(String::as_str))?;
        tx.execute(
            "DELETE FROM parts WHERE upload_id IN (SELECT upload_id FROM uploads WHERE bucket = ?1)",
            params![name],
        )?;
        tx.execute("DELETE FROM uploads WHERE bucket = ?1", params![name])?;
        tx.execute("DELETE FROM buckets WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(())
    }

    /// Sets one of the bucket's configuration documents (`encryption`, `policy`, `versioning`).
    pub fn set_bucket_config(&self, name: &str, field: BucketConfig, value: Option<&str>) -> Result<()> {
        let sql = match field {
            BucketConfig::Encryption => "UPDATE buckets SET encryption = ?2, encryption_mac = ?3 WHERE name = ?1",
            BucketConfig::Policy => "UPDATE buckets SET policy = ?2, policy_mac = ?3 WHERE name = ?1",
            BucketConfig::Versioning => "UPDATE buckets SET versioning = ?2, versioning_mac = ?3 WHERE name = ?1",
        };
        // Each setting has its own MAC, so replacing one never re-tags (launders) another.
        let mac = self.bucket_config_mac(name, field, value);
        let changed = self.conn().execute(sql, params![name, value, mac])?;
        if changed == 0 {
            return Err(StoreError::NoSuchBucket(name.to_owned()));
        }
        Ok(())
    }

    // ---- objects ----

    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT bucket, key, size, etag, last_modified_ms, doc, generation FROM objects WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes()],
            object_from_row,
        )
        .optional()?
        .transpose()
    }

    /// Commits an object record, replacing any previous one under the same key, with a fresh
    /// generation. The record's new blobs must have been written through [`crate::BlobWriter`];
    /// the replaced record's blobs are queued for deletion in the same transaction (removed after
    /// the grace period). Returns the replaced record.
    pub fn put_object(&self, record: &ObjectRecord, condition: &WriteCondition) -> Result<Option<ObjectRecord>> {
        let doc = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_bucket_tx(&tx, &record.bucket)?;
        let previous = tx
            .query_row(
                "SELECT bucket, key, size, etag, last_modified_ms, doc, generation FROM objects WHERE bucket = ?1 AND key = ?2",
                params![record.bucket, record.key.as_bytes()],
                object_from_row,
            )
            .optional()?
            .transpose()?;
        check_condition(previous.as_ref(), condition)?;
        let old: HashSet<&str> = previous.iter().flat_map(ObjectRecord::blob_ids).collect();
        claim_written_tx(&tx, record.blob_ids().filter(|b| !old.contains(b)))?;
        upsert_object_tx(&tx, record, &doc)?;
        queue_replaced_tx(&tx, previous.as_ref(), record)?;
        tx.commit()?;
        Ok(previous)
    }

    /// Replaces only the descriptive document of an existing object (re-wrapped keys) if the row
    /// is still at `record.generation`, i.e. nothing wrote it since the caller read it: a stale
    /// update can never write back blob ids an overwrite replaced. The blobs themselves cannot
    /// change this way. False when the row moved on (or is gone): re-read and retry.
    pub fn update_object_doc(&self, record: &ObjectRecord) -> Result<bool> {
        let doc = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(current) = object_tx(&tx, &record.bucket, &record.key)? else { return Ok(false) };
        if current.generation != record.generation {
            return Ok(false);
        }
        if !current.blob_ids().eq(record.blob_ids()) {
            return Err(StoreError::Corrupt("a metadata update may not change an object's blobs".into()));
        }
        let generation = next_generation(&tx)?;
        tx.execute(
            "UPDATE objects SET doc = ?3, generation = ?4 WHERE bucket = ?1 AND key = ?2",
            params![record.bucket, record.key.as_bytes(), doc, generation],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Sets the tags of whatever object is current under the key (S3 tags the current object),
    /// reading and writing the row in one transaction so no concurrent write is undone. False
    /// when there is no such object.
    /// `seal(current, next)` is the S3 layer's check of the record as stored and the new row MAC
    /// of the record with its new tags (`sealbox-s3` `integrity.rs`); its error aborts the update.
    pub fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &BTreeMap<String, String>,
        seal: impl FnOnce(&ObjectRecord, &mut ObjectRecord) -> Result<()>,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(current) = object_tx(&tx, bucket, key)? else { return Ok(false) };
        let mut next = current.clone();
        next.tags = tags.clone();
        seal(&current, &mut next)?;
        let doc = serde_json::to_string(&next).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let generation = next_generation(&tx)?;
        tx.execute(
            "UPDATE objects SET doc = ?3, generation = ?4 WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes(), doc, generation],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Changes the descriptive fields of whatever object is current under the key (RestoreObject
    /// state), reading and writing the row in one transaction so no concurrent write is undone.
    /// `change` gets the stored record and edits a copy of it; its error aborts the update, and it
    /// may not change the object's blobs. Returns the new record and what `change` returned, or
    /// `None` when there is no object.
    pub fn update_object_meta<T>(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&ObjectRecord, &mut ObjectRecord) -> Result<T>,
    ) -> Result<Option<(ObjectRecord, T)>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(current) = object_tx(&tx, bucket, key)? else { return Ok(None) };
        let mut next = current.clone();
        let outcome = change(&current, &mut next)?;
        if !current.blob_ids().eq(next.blob_ids()) {
            return Err(StoreError::Corrupt("a metadata update may not change an object's blobs".into()));
        }
        let doc = serde_json::to_string(&next).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let generation = next_generation(&tx)?;
        tx.execute(
            "UPDATE objects SET doc = ?3, generation = ?4 WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes(), doc, generation],
        )?;
        tx.commit()?;
        next.generation = generation;
        Ok(Some((next, outcome)))
    }

    /// Removes an object's record and queues its blobs for deletion; returns the record.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_bucket_tx(&tx, bucket)?;
        let previous = tx
            .query_row(
                "SELECT bucket, key, size, etag, last_modified_ms, doc, generation FROM objects WHERE bucket = ?1 AND key = ?2",
                params![bucket, key.as_bytes()],
                object_from_row,
            )
            .optional()?
            .transpose()?;
        if let Some(prev) = &previous {
            tx.execute("DELETE FROM objects WHERE bucket = ?1 AND key = ?2", params![bucket, key.as_bytes()])?;
            queue_deletion_tx(&tx, prev.blob_ids())?;
        }
        tx.commit()?;
        Ok(previous)
    }

    /// Objects in key order (bytewise) whose keys start with `prefix`, beginning at `start`
    /// (`(key, inclusive)`), at most `limit` of them.
    pub fn list_objects(
        &self,
        bucket: &str,
        prefix: &[u8],
        start: Option<(&[u8], bool)>,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>> {
        let upper = prefix_upper_bound(prefix);
        let (lower, inclusive): (&[u8], bool) = match start {
            Some((s, incl)) if s >= prefix => (s, incl),
            _ => (prefix, true),
        };
        let conn = self.conn();
        let sql = format!(
            "SELECT bucket, key, size, etag, last_modified_ms, doc, generation FROM objects
             WHERE bucket = ?1 AND key {} ?2 AND (?3 IS NULL OR key < ?3)
             ORDER BY key LIMIT ?4",
            if inclusive { ">=" } else { ">" }
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![bucket, lower, upper, limit as i64], object_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    // ---- multipart ----

    pub fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        let doc = serde_json::to_string(&TemplateDoc::from(&upload.template))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_bucket_tx(&tx, &upload.bucket)?;
        tx.execute(
            "INSERT INTO uploads (upload_id, bucket, key, initiated_ms, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![upload.upload_id, upload.bucket, upload.key.as_bytes(), upload.initiated_ms, doc],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT upload_id, bucket, key, initiated_ms, doc FROM uploads WHERE upload_id = ?1",
            params![upload_id],
            upload_from_row,
        )
        .optional()?
        .transpose()
    }

    /// Uploads of a bucket ordered by (key, initiated, id), after the given markers.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &[u8],
        key_marker: Option<&[u8]>,
        upload_id_marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>> {
        let conn = self.conn();
        let upper = prefix_upper_bound(prefix);
        let mut stmt = conn.prepare_cached(
            "SELECT upload_id, bucket, key, initiated_ms, doc FROM uploads
             WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
             ORDER BY key, initiated_ms, upload_id",
        )?;
        let rows = stmt.query_map(params![bucket, prefix, upper], upload_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            let up = row??;
            if let Some(marker) = key_marker {
                let k = up.key.as_bytes();
                let past = match upload_id_marker {
                    // With an upload-id marker, uploads of the marker key after that id count too.
                    Some(id) => k > marker || (k == marker && up.upload_id.as_str() > id),
                    None => k > marker,
                };
                if !past {
                    continue;
                }
            }
            out.push(up);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Records a part (its blob written through [`crate::BlobWriter`]); the part it replaced (same
    /// number) is returned and its blob queued for deletion.
    pub fn put_part(&self, part: &PartRecord) -> Result<Option<PartRecord>> {
        let doc = serde_json::to_string(&part.part).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM uploads WHERE upload_id = ?1", params![part.upload_id], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if !exists {
            return Err(StoreError::NoSuchUpload(part.upload_id.clone()));
        }
        let previous = tx
            .query_row(
                "SELECT upload_id, part_number, last_modified_ms, doc FROM parts WHERE upload_id = ?1 AND part_number = ?2",
                params![part.upload_id, part.part_number],
                part_from_row,
            )
            .optional()?
            .transpose()?;
        claim_written_tx(&tx, [part.part.blob.as_str()])?;
        tx.execute(
            "INSERT INTO parts (upload_id, part_number, last_modified_ms, doc) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (upload_id, part_number) DO UPDATE SET last_modified_ms = excluded.last_modified_ms, doc = excluded.doc",
            params![part.upload_id, part.part_number, part.last_modified_ms, doc],
        )?;
        if let Some(prev) = &previous {
            queue_deletion_tx(&tx, [prev.part.blob.as_str()])?;
        }
        tx.commit()?;
        Ok(previous)
    }

    pub fn list_parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<PartRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT upload_id, part_number, last_modified_ms, doc FROM parts
             WHERE upload_id = ?1 AND part_number > ?2 ORDER BY part_number LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![upload_id, after, limit as i64], part_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Atomically turns an upload into an object: inserts the object record (whose parts were
    /// chosen by the caller), removes the upload and all its part records. The replaced object's
    /// blobs and the unused parts' blobs are queued for deletion; both are returned.
    pub fn complete_upload(
        &self,
        upload_id: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<(Option<ObjectRecord>, Vec<PartRecord>)> {
        let doc = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM uploads WHERE upload_id = ?1", params![upload_id], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if !exists {
            return Err(StoreError::NoSuchUpload(upload_id.to_owned()));
        }
        require_bucket_tx(&tx, &record.bucket)?;
        let previous = tx
            .query_row(
                "SELECT bucket, key, size, etag, last_modified_ms, doc, generation FROM objects WHERE bucket = ?1 AND key = ?2",
                params![record.bucket, record.key.as_bytes()],
                object_from_row,
            )
            .optional()?
            .transpose()?;
        check_condition(previous.as_ref(), condition)?;
        let mut unused = Vec::new();
        {
            let mut stmt =
                tx.prepare("SELECT upload_id, part_number, last_modified_ms, doc FROM parts WHERE upload_id = ?1")?;
            let used: HashSet<&str> = record.blob_ids().collect();
            for row in stmt.query_map(params![upload_id], part_from_row)? {
                let part = row??;
                if !used.contains(part.part.blob.as_str()) {
                    unused.push(part);
                }
            }
        }
        upsert_object_tx(&tx, record, &doc)?;
        queue_replaced_tx(&tx, previous.as_ref(), record)?;
        queue_deletion_tx(&tx, unused.iter().map(|p| p.part.blob.as_str()))?;
        tx.execute("DELETE FROM parts WHERE upload_id = ?1", params![upload_id])?;
        tx.execute("DELETE FROM uploads WHERE upload_id = ?1", params![upload_id])?;
        tx.commit()?;
        Ok((previous, unused))
    }

    /// Drops an upload, queues its parts' blobs for deletion and returns the parts.
    pub fn abort_upload(&self, upload_id: &str) -> Result<Vec<PartRecord>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM uploads WHERE upload_id = ?1", params![upload_id], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if !exists {
            return Err(StoreError::NoSuchUpload(upload_id.to_owned()));
        }
        let mut parts = Vec::new();
        {
            let mut stmt =
                tx.prepare("SELECT upload_id, part_number, last_modified_ms, doc FROM parts WHERE upload_id = ?1")?;
            for row in stmt.query_map(params![upload_id], part_from_row)? {
                parts.push(row??);
            }
        }
        queue_deletion_tx(&tx, parts.iter().map(|p| p.part.blob.as_str()))?;
        tx.execute("DELETE FROM parts WHERE upload_id = ?1", params![upload_id])?;
        tx.execute("DELETE FROM uploads WHERE upload_id = ?1", params![upload_id])?;
        tx.commit()?;
        Ok(parts)
    }

    /// Every blob id any record names: what the orphan sweep must keep.
    pub fn referenced_blobs(&self) -> Result<HashSet<String>> {
        let conn = self.conn();
        let mut set = HashSet::new();
        let mut stmt = conn.prepare("SELECT doc FROM objects")?;
        for doc in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let rec: ObjectRecord = serde_json::from_str(&doc?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            set.extend(rec.parts.into_iter().map(|p| p.blob));
        }
        let mut stmt = conn.prepare("SELECT doc FROM parts")?;
        for doc in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let part: StoredPart = serde_json::from_str(&doc?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            set.insert(part.blob);
        }
        Ok(set)
    }
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub user_id: String,
    pub path: String,
    pub created_ms: i64,
}

/// An access key; the secret is kept only wrapped (by the root key, in the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub user_name: String,
    pub secret_wrapped: Vec<u8>,
    pub status: String,
    pub created_ms: i64,
}

/// Users, access keys and inline user policies (the IAM subset sealbox serves). Every row is
/// checked against its MAC on read; a user's MAC also covers the names of the user's policies.
impl MetaStore {
    pub fn create_user(&self, user: &UserRecord) -> Result<bool> {
        let mac = self.row_mac(&user_row(user, &[]));
        let n = self.conn().execute(
            "INSERT INTO users (name, user_id, path, created_ms, mac) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
            params![user.name, user.user_id, user.path, user.created_ms, mac],
        )?;
        Ok(n == 1)
    }

    pub fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        let conn = self.conn();
        self.verified_user_tx(&conn, name)
    }

    /// A user row checked against its MAC and the user's current policy names.
    fn verified_user_tx(&self, conn: &Connection, name: &str) -> Result<Option<UserRecord>> {
        let row = conn
            .query_row(
                "SELECT name, user_id, path, created_ms, mac FROM users WHERE name = ?1",
                params![name],
                user_from_row,
            )
            .optional()?;
        let Some((user, mac)) = row else { return Ok(None) };
        let names = policy_names_tx(conn, name)?;
        self.check_row(&user_row(&user, &names), mac.as_deref(), || format!("IAM user {name}"))?;
        Ok(Some(user))
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>> {
        let conn = self.conn();
        let names: Vec<String> = users_tx(&conn)?.into_iter().map(|u| u.name).collect();
        names.iter().filter_map(|n| self.verified_user_tx(&conn, n).transpose()).collect()
    }

    /// Deletes a user; false when there was none. IAM refuses to delete a user that still has
    /// access keys or policies (DeleteConflict): callers check `user_has_dependents` first.
    pub fn delete_user(&self, name: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM users WHERE name = ?1", params![name])? == 1)
    }

    pub fn user_has_dependents(&self, name: &str) -> Result<bool> {
        let conn = self.conn();
        let keys: i64 =
            conn.query_row("SELECT COUNT(*) FROM access_keys WHERE user_name = ?1", params![name], |r| r.get(0))?;
        let pols: i64 =
            conn.query_row("SELECT COUNT(*) FROM user_policies WHERE user_name = ?1", params![name], |r| r.get(0))?;
        Ok(keys + pols > 0)
    }

    pub fn put_access_key(&self, key: &AccessKeyRecord) -> Result<()> {
        let mac = self.row_mac(&access_key_row(key));
        self.conn().execute(
            "INSERT INTO access_keys (access_key_id, user_name, secret_wrapped, status, created_ms, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (access_key_id) DO UPDATE SET status = excluded.status, mac = excluded.mac",
            params![key.access_key_id, key.user_name, key.secret_wrapped, key.status, key.created_ms, mac],
        )?;
        Ok(())
    }

    pub fn delete_access_key(&self, user: &str, access_key_id: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM access_keys WHERE user_name = ?1 AND access_key_id = ?2",
            params![user, access_key_id],
        )? == 1)
    }

    /// Access keys of one user, or of everyone with `None`. A key whose row fails its MAC is
    /// reported and left out: refusing a key is the safe side (it can no longer sign anything).
    pub fn list_access_keys(&self, user: Option<&str>) -> Result<Vec<AccessKeyRecord>> {
        let rows = access_keys_tx(&self.conn(), user)?;
        Ok(rows
            .into_iter()
            .filter(|(k, mac)| {
                self.check_row(&access_key_row(k), mac.as_deref(), || format!("access key {}", k.access_key_id)).is_ok()
            })
            .map(|(k, _)| k)
            .collect())
    }

    /// Adds or replaces a user policy and re-tags the user (whose MAC covers its policy names),
    /// in one transaction, after checking the user row as it was.
    pub fn put_user_policy(&self, user: &str, policy: &str, document: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let current = self.verified_user_tx(&tx, user)?;
        tx.execute(
            "INSERT INTO user_policies (user_name, policy_name, document, mac) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_name, policy_name) DO UPDATE SET document = excluded.document, mac = excluded.mac",
            params![user, policy, document, self.row_mac(&user_policy_row(user, policy, document))],
        )?;
        if let Some(u) = current {
            self.retag_user_tx(&tx, &u)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn user_policy(&self, user: &str, policy: &str) -> Result<Option<String>> {
        let row: Option<(String, Option<Vec<u8>>)> = self
            .conn()
            .query_row(
                "SELECT document, mac FROM user_policies WHERE user_name = ?1 AND policy_name = ?2",
                params![user, policy],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((doc, mac)) = row else { return Ok(None) };
        self.check_row(&user_policy_row(user, policy, &doc), mac.as_deref(), || {
            format!("policy {policy} of IAM user {user}")
        })?;
        Ok(Some(doc))
    }

    pub fn delete_user_policy(&self, user: &str, policy: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let current = self.verified_user_tx(&tx, user)?;
        let deleted =
            tx.execute("DELETE FROM user_policies WHERE user_name = ?1 AND policy_name = ?2", params![user, policy])?;
        if let Some(u) = current {
            self.retag_user_tx(&tx, &u)?;
        }
        tx.commit()?;
        Ok(deleted == 1)
    }

    fn retag_user_tx(&self, conn: &Connection, user: &UserRecord) -> Result<()> {
        let names = policy_names_tx(conn, &user.name)?;
        conn.execute(
            "UPDATE users SET mac = ?2 WHERE name = ?1",
            params![user.name, self.row_mac(&user_row(user, &names))],
        )?;
        Ok(())
    }

    /// (policy name, document) pairs of a user, by name: every row checked, and the user's row
    /// too, so a policy row deleted from meta.db (a Deny dropped) is refused like an edited one.
    pub fn user_policies(&self, user: &str) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let rows: Vec<(String, String, Option<Vec<u8>>)> = {
            let mut stmt = conn.prepare(
                "SELECT policy_name, document, mac FROM user_policies WHERE user_name = ?1 ORDER BY policy_name",
            )?;
            let rows = stmt.query_map(params![user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        if self.verified_user_tx(&conn, user)?.is_none() && !rows.is_empty() && self.rows.get().is_some() {
            // Policies of a user that does not exist: rows added behind sealbox's back.
            return Err(self.refuse_row(format!("policies of unknown IAM user {user}")));
        }
        let mut out = Vec::with_capacity(rows.len());
        for (name, doc, mac) in rows {
            self.check_row(&user_policy_row(user, &name, &doc), mac.as_deref(), || {
                format!("policy {name} of IAM user {user}")
            })?;
            out.push((name, doc));
        }
        Ok(out)
    }
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<(UserRecord, Option<Vec<u8>>)> {
    Ok((UserRecord { name: r.get(0)?, user_id: r.get(1)?, path: r.get(2)?, created_ms: r.get(3)? }, r.get(4)?))
}

pub(crate) fn users_tx(conn: &Connection) -> Result<Vec<UserRecord>> {
    let mut stmt = conn.prepare("SELECT name, user_id, path, created_ms, mac FROM users ORDER BY name")?;
    let rows = stmt.query_map([], user_from_row)?;
    Ok(rows.map(|r| r.map(|(u, _)| u)).collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn policy_names_tx(conn: &Connection, user: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT policy_name FROM user_policies WHERE user_name = ?1 ORDER BY policy_name")?;
    let rows = stmt.query_map(params![user], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn access_keys_tx(conn: &Connection, user: Option<&str>) -> Result<Vec<(AccessKeyRecord, Option<Vec<u8>>)>> {
    let mut stmt = conn.prepare(
        "SELECT access_key_id, user_name, secret_wrapped, status, created_ms, mac FROM access_keys
         WHERE ?1 IS NULL OR user_name = ?1 ORDER BY created_ms, access_key_id",
    )?;
    let rows = stmt.query_map(params![user], |r| {
        Ok((
            AccessKeyRecord {
                access_key_id: r.get(0)?,
                user_name: r.get(1)?,
                secret_wrapped: r.get(2)?,
                status: r.get(3)?,
                created_ms: r.get(4)?,
            },
            r.get(5)?,
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Which bucket configuration document to set.
#[derive(Debug, Clone, Copy)]
pub enum BucketConfig {
    Encryption,
    Policy,
    Versioning,
}

/// Adds a column to `objects` in meta.db files made before it existed (rows start at 0; every
/// write from now on takes a fresh generation from the counter, which starts above 0).
fn migrate_objects_generation(conn: &Connection) -> Result<()> {
    let has_generation: bool =
        conn.prepare("SELECT 1 FROM pragma_table_info('objects') WHERE name = 'generation'")?.exists([])?;
    if !has_generation {
        conn.execute_batch("ALTER TABLE objects ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

fn object_tx(tx: &rusqlite::Transaction<'_>, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
    tx.query_row(
        "SELECT bucket, key, size, etag, last_modified_ms, doc, generation FROM objects WHERE bucket = ?1 AND key = ?2",
        params![bucket, key.as_bytes()],
        object_from_row,
    )
    .optional()?
    .transpose()
}

/// Writes an object row with a fresh generation (a new object or an overwrite).
fn upsert_object_tx(tx: &rusqlite::Transaction<'_>, record: &ObjectRecord, doc: &str) -> Result<()> {
    let generation = next_generation(tx)?;
    tx.execute(
        "INSERT INTO objects (bucket, key, size, etag, last_modified_ms, doc, generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, etag = excluded.etag,
             last_modified_ms = excluded.last_modified_ms, doc = excluded.doc, generation = excluded.generation",
        params![
            record.bucket,
            record.key.as_bytes(),
            record.size as i64,
            record.etag,
            record.last_modified_ms,
            doc,
            generation
        ],
    )?;
    Ok(())
}

/// Queues the blobs of a replaced record that the new record does not keep.
fn queue_replaced_tx(
    tx: &rusqlite::Transaction<'_>,
    previous: Option<&ObjectRecord>,
    record: &ObjectRecord,
) -> Result<()> {
    if let Some(prev) = previous {
        let keep: HashSet<&str> = record.blob_ids().collect();
        queue_deletion_tx(tx, prev.blob_ids().filter(|b| !keep.contains(b)))?;
    }
    Ok(())
}

fn check_condition(current: Option<&ObjectRecord>, condition: &WriteCondition) -> Result<()> {
    match (condition, current) {
        (WriteCondition::None, _) => Ok(()),
        (WriteCondition::IfAbsent, None) => Ok(()),
        (WriteCondition::IfAbsent, Some(_)) => Err(StoreError::PreconditionFailed),
        (WriteCondition::IfEtag(etag), Some(cur)) if cur.etag == *etag => Ok(()),
        (WriteCondition::IfEtag(_), Some(_)) => Err(StoreError::PreconditionFailed),
        (WriteCondition::IfEtag(_), None) => Err(StoreError::ConditionalConflict),
    }
}

fn require_bucket_tx(tx: &rusqlite::Transaction<'_>, bucket: &str) -> Result<()> {
    let exists: bool = tx
        .query_row("SELECT 1 FROM buckets WHERE name = ?1", params![bucket], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    if exists {
        Ok(())
    } else {
        Err(StoreError::NoSuchBucket(bucket.to_owned()))
    }
}

const BUCKET_COLUMNS: &str =
    "name, created_ms, encryption, policy, versioning, encryption_mac, policy_mac, versioning_mac";

/// A bucket row and the MACs of its three settings (in `BUCKET_FIELDS` order).
fn bucket_row(row: &Row<'_>) -> rusqlite::Result<(BucketRecord, [Option<Vec<u8>>; 3])> {
    Ok((
        BucketRecord {
            name: row.get(0)?,
            created_ms: row.get(1)?,
            encryption: row.get(2)?,
            policy: row.get(3)?,
            versioning: row.get(4)?,
        },
        [row.get(5)?, row.get(6)?, row.get(7)?],
    ))
}

fn key_from_blob(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("object key is not UTF-8".into()))
}

pub(crate) fn object_from_row(row: &Row<'_>) -> rusqlite::Result<Result<ObjectRecord>> {
    let bucket: String = row.get(0)?;
    let key: Vec<u8> = row.get(1)?;
    let size: i64 = row.get(2)?;
    let etag: String = row.get(3)?;
    let last_modified_ms: i64 = row.get(4)?;
    let doc: String = row.get(5)?;
    let generation: i64 = row.get(6)?;
    Ok((|| {
        let mut rec: ObjectRecord = serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        rec.generation = generation;
        rec.bucket = bucket;
        rec.key = key_from_blob(key)?;
        rec.size = size as u64;
        rec.etag = etag;
        rec.last_modified_ms = last_modified_ms;
        Ok(rec)
    })())
}

/// The upload's object template is stored whole (its `#[serde(skip)]` columns included).
#[derive(serde::Serialize, serde::Deserialize)]
struct TemplateDoc {
    record: ObjectRecord,
}

impl From<&ObjectRecord> for TemplateDoc {
    fn from(r: &ObjectRecord) -> Self {
        TemplateDoc { record: r.clone() }
    }
}

pub(crate) fn template_doc(template: &ObjectRecord) -> Result<String> {
    serde_json::to_string(&TemplateDoc::from(template)).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn upload_from_row(row: &Row<'_>) -> rusqlite::Result<Result<UploadRecord>> {
    let upload_id: String = row.get(0)?;
    let bucket: String = row.get(1)?;
    let key: Vec<u8> = row.get(2)?;
    let initiated_ms: i64 = row.get(3)?;
    let doc: String = row.get(4)?;
    Ok((|| {
        let t: TemplateDoc = serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let key = key_from_blob(key)?;
        let mut template = t.record;
        template.bucket = bucket.clone();
        template.key = key.clone();
        Ok(UploadRecord { upload_id, bucket, key, initiated_ms, template })
    })())
}

fn part_from_row(row: &Row<'_>) -> rusqlite::Result<Result<PartRecord>> {
    let upload_id: String = row.get(0)?;
    let part_number: u32 = row.get(1)?;
    let last_modified_ms: i64 = row.get(2)?;
    let doc: String = row.get(3)?;
    Ok((|| {
        let part: StoredPart = serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(PartRecord { upload_id, part_number, last_modified_ms, part })
    })())
}
