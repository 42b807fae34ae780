use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row};

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
        migrate_objects_generation(&conn)?;
        conn.execute_batch(LIFECYCLE_SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back),
        // so a poisoned mutex is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- buckets ----

    pub fn create_bucket(&self, name: &str, now_ms: i64) -> Result<()> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO buckets (name, created_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, now_ms],
        )?;
        if inserted == 0 {
            return Err(StoreError::BucketExists(name.to_owned()));
        }
        Ok(())
    }

    pub fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT name, created_ms, encryption, policy, versioning FROM buckets WHERE name = ?1",
                params![name],
                bucket_from_row,
            )
            .optional()?)
    }

    pub fn require_bucket(&self, name: &str) -> Result<BucketRecord> {
        self.bucket(name)?.ok_or_else(|| StoreError::NoSuchBucket(name.to_owned()))
    }

    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT name, created_ms, encryption, policy, versioning FROM buckets ORDER BY name")?;
        let rows = stmt.query_map([], bucket_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
            BucketConfig::Encryption => "UPDATE buckets SET encryption = ?2 WHERE name = ?1",
            BucketConfig::Policy => "UPDATE buckets SET policy = ?2 WHERE name = ?1",
            BucketConfig::Versioning => "UPDATE buckets SET versioning = ?2 WHERE name = ?1",
        };
        let changed = self.conn().execute(sql, params![name, value])?;
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
    pub fn set_object_tags(&self, bucket: &str, key: &str, tags: &BTreeMap<String, String>) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(mut current) = object_tx(&tx, bucket, key)? else { return Ok(false) };
        current.tags = tags.clone();
        let doc = serde_json::to_string(&current).map_err(|e| StoreError::Corrupt(e.to_string()))?;
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

/// Users, access keys and inline user policies (the IAM subset sealbox serves).
impl MetaStore {
    pub fn create_user(&self, user: &UserRecord) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT INTO users (name, user_id, path, created_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
            params![user.name, user.user_id, user.path, user.created_ms],
        )?;
        Ok(n == 1)
    }

    pub fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        Ok(self
            .conn()
            .query_row("SELECT name, user_id, path, created_ms FROM users WHERE name = ?1", params![name], |r| {
                Ok(UserRecord { name: r.get(0)?, user_id: r.get(1)?, path: r.get(2)?, created_ms: r.get(3)? })
            })
            .optional()?)
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, user_id, path, created_ms FROM users ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(UserRecord { name: r.get(0)?, user_id: r.get(1)?, path: r.get(2)?, created_ms: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
        self.conn().execute(
            "INSERT INTO access_keys (access_key_id, user_name, secret_wrapped, status, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (access_key_id) DO UPDATE SET status = excluded.status",
            params![key.access_key_id, key.user_name, key.secret_wrapped, key.status, key.created_ms],
        )?;
        Ok(())
    }

    pub fn delete_access_key(&self, user: &str, access_key_id: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM access_keys WHERE user_name = ?1 AND access_key_id = ?2",
            params![user, access_key_id],
        )? == 1)
    }

    /// Access keys of one user, or of everyone with `None`.
    pub fn list_access_keys(&self, user: Option<&str>) -> Result<Vec<AccessKeyRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT access_key_id, user_name, secret_wrapped, status, created_ms FROM access_keys
             WHERE ?1 IS NULL OR user_name = ?1 ORDER BY created_ms, access_key_id",
        )?;
        let rows = stmt.query_map(params![user], |r| {
            Ok(AccessKeyRecord {
                access_key_id: r.get(0)?,
                user_name: r.get(1)?,
                secret_wrapped: r.get(2)?,
                status: r.get(3)?,
                created_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn put_user_policy(&self, user: &str, policy: &str, document: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO user_policies (user_name, policy_name, document) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_name, policy_name) DO UPDATE SET document = excluded.document",
            params![user, policy, document],
        )?;
        Ok(())
    }

    pub fn user_policy(&self, user: &str, policy: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT document FROM user_policies WHERE user_name = ?1 AND policy_name = ?2",
                params![user, policy],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn delete_user_policy(&self, user: &str, policy: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM user_policies WHERE user_name = ?1 AND policy_name = ?2", params![user, policy])?
            == 1)
    }

    /// (policy name, document) pairs of a user, by name.
    pub fn user_policies(&self, user: &str) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT policy_name, document FROM user_policies WHERE user_name = ?1 ORDER BY policy_name")?;
        let rows = stmt.query_map(params![user], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
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

fn bucket_from_row(row: &Row<'_>) -> rusqlite::Result<BucketRecord> {
    Ok(BucketRecord {
        name: row.get(0)?,
        created_ms: row.get(1)?,
        encryption: row.get(2)?,
        policy: row.get(3)?,
        versioning: row.get(4)?,
    })
}

fn key_from_blob(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("object key is not UTF-8".into()))
}

fn object_from_row(row: &Row<'_>) -> rusqlite::Result<Result<ObjectRecord>> {
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

fn upload_from_row(row: &Row<'_>) -> rusqlite::Result<Result<UploadRecord>> {
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
