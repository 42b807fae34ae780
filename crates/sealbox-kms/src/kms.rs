//! The key service: keys, material versions, aliases, rotation, deletion, crypto operations.
//! Everything is stored in one SQLite file; key material only wrapped by the root key.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::blob::{self, MaterialKey};
use crate::root::{random, RootKey};
use crate::{Clock, KmsError};

pub const S3_DEFAULT_ALIAS: &str = "alias/aws/s3";
/// The hidden key behind SSE-S3; never listed, never usable through the API.
const SSE_S3_ALIAS: &str = "alias/sealbox/internal/sse-s3";
const CHECK_AAD: &[u8] = b"sealbox kms root check v1";
/// What the check value wraps: opening it proves the root key is the one this store was made with.
const ROOT_CHECK_PLAINTEXT: &[u8] = b"sealbox root key check";
const MAX_ON_DEMAND_ROTATIONS: i64 = 25;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kms_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    key_manager TEXT NOT NULL,
    hidden INTEGER NOT NULL,
    created INTEGER NOT NULL,
    deletion_date INTEGER,
    pending_days INTEGER,
    rotation_enabled INTEGER NOT NULL,
    rotation_period_days INTEGER NOT NULL,
    next_rotation INTEGER,
    on_demand_rotations INTEGER NOT NULL,
    policy TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_material (
    key_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    material_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    rotation_type TEXT,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    alias_name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS key_tags (
    key_id TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
";

/// Account and region used in ARNs.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    pub account_id: String,
    pub region: String,
}

/// Who is calling (for audit and policies; the KMS itself trusts the caller to be authorised).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub access_key_id: String,
    pub principal_arn: String,
    pub source_ip: Option<String>,
}

/// A key's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: String,
    pub description: String,
    pub state: String,
    pub key_manager: String,
    pub hidden: bool,
    pub created: i64,
    pub deletion_date: Option<i64>,
    pub pending_days: Option<i64>,
    pub rotation_enabled: bool,
    pub rotation_period_days: i64,
    pub next_rotation: Option<i64>,
    pub on_demand_rotations: i64,
    pub policy: String,
}

/// One version of a key's material (metadata only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialInfo {
    pub version: u32,
    pub material_id: String,
    pub created: i64,
    pub rotation_type: Option<String>,
}

/// A rotation that happened (for the audit trail and ListKeyRotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEvent {
    pub key_arn: String,
    pub key_id: String,
    pub version: u32,
    pub rotation_type: String,
    pub at: i64,
}

/// A freshly generated data key.
pub struct GeneratedDataKey {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
    pub material_id: String,
}

/// A decrypted blob.
pub struct Decrypted {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_arn: String,
    pub material_id: String,
}

/// Counts of cryptographic KMS operations, by caller kind (for the bucket-keys metric).
#[derive(Debug, Default)]
pub struct KmsStats {
    pub generate_data_key: AtomicU64,
    pub decrypt: AtomicU64,
    pub encrypt: AtomicU64,
}

/// The key service. `Send + Sync`: share it behind an `Arc`; every method blocks (SQLite), so
/// async callers run it on `spawn_blocking`.
pub struct Kms {
    /// One connection: SQLite serialises writers anyway, and holding the lock across a
    /// read-check-write makes every state transition atomic within the process.
    conn: Mutex<Connection>,
    /// Behind a lock only so [`Kms::change_root_key`] can swap it while the service runs.
    root: RwLock<RootKey>,
    clock: Arc<dyn Clock>,
    /// Rotations done outside `rotate_due_keys` (an overdue key re-enabled), handed out by the
    /// next `rotate_due_keys` call so the audit trail records them as service events too.
    unreported_rotations: Mutex<Vec<RotationEvent>>,
    /// Unwrapped material of the versions in use, so a hot key costs no root-key unwrap and no
    /// extra query per call. A version's material never changes once written; entries of a
    /// purged key are dropped with it (and every use checks the key row first anyway).
    material_cache: Mutex<HashMap<(String, u32), Arc<MaterialKey>>>,
    pub config: KmsConfig,
    pub stats: KmsStats,
}

/// More versions than any deployment keeps hot; past it the cache simply starts over.
const MATERIAL_CACHE_LIMIT: usize = 4096;

fn material_aad(key_id: &str, version: u32) -> Vec<u8> {
    let mut a = b"sealbox kms material v1".to_vec();
    a.extend_from_slice(key_id.as_bytes());
    a.extend_from_slice(&version.to_be_bytes());
    a
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        key_id: r.get(0)?,
        description: r.get(1)?,
        state: r.get(2)?,
        key_manager: r.get(3)?,
        hidden: r.get::<_, i64>(4)? != 0,
        created: r.get(5)?,
        deletion_date: r.get(6)?,
        pending_days: r.get(7)?,
        rotation_enabled: r.get::<_, i64>(8)? != 0,
        rotation_period_days: r.get(9)?,
        next_rotation: r.get(10)?,
        on_demand_rotations: r.get(11)?,
        policy: r.get(12)?,
    })
}

const KEY_COLUMNS: &str = "key_id, description, state, key_manager, hidden, created, deletion_date, pending_days, \
     rotation_enabled, rotation_period_days, next_rotation, on_demand_rotations, policy";

impl Kms {
    /// Opens (or creates) the key store at `path`. With an existing store, a root key that does
    /// not open its check value is refused before anything is touched.
    pub fn open(path: &Path, root: RootKey, clock: Arc<dyn Clock>, config: KmsConfig) -> Result<Self, KmsError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Deleted rows (destroyed key material, even though wrapped) are overwritten, not just
        // unlinked: crypto-shredding should not leave the bytes in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        let check: Option<Vec<u8>> =
            conn.query_row("SELECT value FROM kms_meta WHERE name = 'root_check'", [], |r| r.get(0)).optional()?;
        match check {
            Some(w) => {
                root.unwrap(&w, CHECK_AAD)?;
            }
            None => {
                let w = root.wrap(ROOT_CHECK_PLAINTEXT, CHECK_AAD)?;
                conn.execute("INSERT INTO kms_meta (name, value) VALUES ('root_check', ?1)", params![w])?;
            }
        }
        Ok(Kms {
            conn: Mutex::new(conn),
            root: RwLock::new(root),
            clock,
            unreported_rotations: Mutex::new(Vec::new()),
            material_cache: Mutex::new(HashMap::new()),
            config,
            stats: KmsStats::default(),
        })
    }

    /// The passphrase salt stored beside the keys (created on first use), for `RootKey::from_passphrase`.
    pub fn passphrase_salt(path: &Path) -> Result<Vec<u8>, KmsError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(SCHEMA)?;
        let salt: Option<Vec<u8>> =
            conn.query_row("SELECT value FROM kms_meta WHERE name = 'passphrase_salt'", [], |r| r.get(0)).optional()?;
        match salt {
            Some(s) => Ok(s),
            None => {
                let s = random::<16>()?.to_vec();
                conn.execute("INSERT INTO kms_meta (name, value) VALUES ('passphrase_salt', ?1)", params![s])?;
                Ok(s)
            }
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn root(&self) -> RwLockReadGuard<'_, RootKey> {
        self.root.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    pub fn key_arn(&self, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{key_id}", self.config.region, self.config.account_id)
    }

    pub fn alias_arn(&self, alias: &str) -> String {
        format!("arn:aws:kms:{}:{}:{alias}", self.config.region, self.config.account_id)
    }

    /// AWS names a missing key by its ARN: "Key 'arn:aws:kms:…:key/<id>' does not exist".
    fn not_found(&self, key: &str) -> KmsError {
        let named =
            if key.starts_with("arn:") || key.starts_with("alias/") { key.to_owned() } else { self.key_arn(key) };
        KmsError::NotFound(format!("Key '{named}' does not exist"))
    }

    // ---- lookups ----

    pub fn key(&self, key_id: &str) -> Result<Option<KeyRecord>, KmsError> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_id = ?1"), params![key_id], key_from_row)
            .optional()?)
    }

    /// Resolves a key id, key ARN, alias name or alias ARN to a visible key.
    pub fn resolve(&self, key_ref: &str, allow_alias: bool) -> Result<KeyRecord, KmsError> {
        let prefix = format!("arn:aws:kms:{}:{}:", self.config.region, self.config.account_id);
        let local = key_ref.strip_prefix(&prefix).unwrap_or(key_ref);
        if key_ref.starts_with("arn:") && !key_ref.starts_with(&prefix) {
            return Err(self.not_found(key_ref));
        }
        let key_id = if let Some(id) = local.strip_prefix("key/") {
            id.to_owned()
        } else if local.starts_with("alias/") {
            if !allow_alias {
                return Err(self.not_found(key_ref));
            }
            if local == S3_DEFAULT_ALIAS {
                return self.s3_default_key();
            }
            let id: Option<String> = self
                .conn()
                .query_row("SELECT key_id FROM aliases WHERE alias_name = ?1", params![local], |r| r.get(0))
                .optional()?;
            id.ok_or_else(|| KmsError::NotFound(format!("Alias {} is not found.", self.alias_arn(local))))?
        } else {
            local.to_owned()
        };
        match self.key(&key_id)? {
            Some(k) if !k.hidden => Ok(k),
            _ => Err(self.not_found(key_ref)),
        }
    }

    pub fn materials(&self, key_id: &str) -> Result<Vec<MaterialInfo>, KmsError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT version, material_id, created, rotation_type FROM key_material WHERE key_id = ?1 ORDER BY version",
        )?;
        let rows = stmt.query_map(params![key_id], |r| {
            Ok(MaterialInfo {
                version: r.get(0)?,
                material_id: r.get(1)?,
                created: r.get(2)?,
                rotation_type: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn list_keys(&self) -> Result<Vec<KeyRecord>, KmsError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE hidden = 0 ORDER BY created, key_id"))?;
        let rows = stmt.query_map([], key_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// (alias name, key id, created, updated), optionally for one key.
    pub fn list_aliases(&self, key_id: Option<&str>) -> Result<Vec<(String, String, i64, i64)>, KmsError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT alias_name, key_id, created, updated FROM aliases WHERE (?1 IS NULL OR key_id = ?1) AND alias_name NOT LIKE 'alias/sealbox/internal/%' ORDER BY alias_name",
        )?;
        let rows = stmt.query_map(params![key_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn tags(&self, key_id: &str) -> Result<Vec<(String, String)>, KmsError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT tag_key, tag_value FROM key_tags WHERE key_id = ?1 ORDER BY tag_key")?;
        let rows = stmt.query_map(params![key_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    // ---- key lifecycle ----

    fn insert_key(conn: &Connection, rec: &KeyRecord) -> Result<(), KmsError> {
        conn.execute(
            &format!(
                "INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            params![
                rec.key_id,
                rec.description,
                rec.state,
                rec.key_manager,
                rec.hidden as i64,
                rec.created,
                rec.deletion_date,
                rec.pending_days,
                rec.rotation_enabled as i64,
                rec.rotation_period_days,
                rec.next_rotation,
                rec.on_demand_rotations,
                rec.policy
            ],
        )?;
        Ok(())
    }

    /// Adds a material version (32 fresh random bytes, stored only wrapped) on the caller's
    /// connection, so it commits or rolls back with the state change it belongs to.
    fn add_material(
        &self,
        conn: &Connection,
        key_id: &str,
        rotation_type: Option<&str>,
    ) -> Result<MaterialInfo, KmsError> {
        let material = Zeroizing::new(random::<32>()?);
        let version: u32 = conn.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM key_material WHERE key_id = ?1",
            params![key_id],
            |r| r.get(0),
        )?;
        let wrapped = self.root().wrap(&material[..], &material_aad(key_id, version))?;
        // Public and stable (it survives a root key change): a digest, never the material.
        let material_id = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &wrapped).as_ref());
        let created = self.now();
        conn.execute(
            "INSERT INTO key_material (key_id, version, material_id, created, rotation_type, wrapped) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key_id, version, material_id, created, rotation_type, wrapped],
        )?;
        Ok(MaterialInfo { version, material_id, created, rotation_type: rotation_type.map(str::to_owned) })
    }

    /// CreateKey (symmetric, ENCRYPT_DECRYPT).
    pub fn create_key(
        &self,
        description: &str,
        policy: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<KeyRecord, KmsError> {
        let key_id = Uuid::new_v4().to_string();
        let rec = KeyRecord {
            key_id: key_id.clone(),
            description: description.to_owned(),
            state: "Enabled".into(),
            key_manager: "CUSTOMER".into(),
            hidden: false,
            created: self.now(),
            deletion_date: None,
            pending_days: None,
            rotation_enabled: false,
            rotation_period_days: 365,
            next_rotation: None,
            on_demand_rotations: 0,
            policy: policy
                .map(str::to_owned)
                .unwrap_or_else(|| sealbox_policy::default_key_policy(&self.config.account_id)),
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        Self::insert_key(&tx, &rec)?;
        self.add_material(&tx, &key_id, None)?;
        for (k, v) in tags {
            tx.execute(
                "INSERT OR REPLACE INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
                params![key_id, k, v],
            )?;
        }
        tx.commit()?;
        Ok(rec)
    }

    /// A key managed by sealbox itself (alias/aws/s3, the SSE-S3 service key): rotated yearly.
    /// Made on first use; the lookup and the creation happen under one lock and one transaction,
    /// so concurrent first uses (parallel PUTs) all get the same key.
    fn managed_key(&self, alias: &str, hidden: bool, description: &str) -> Result<KeyRecord, KmsError> {
        let mut conn = self.conn();
        let existing = conn
            .query_row(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM keys WHERE key_id = (SELECT key_id FROM aliases WHERE alias_name = ?1)"
                ),
                params![alias],
                key_from_row,
            )
            .optional()?;
        if let Some(k) = existing {
            return Ok(k);
        }
        let key_id = Uuid::new_v4().to_string();
        let now = self.now();
        let rec = KeyRecord {
            key_id: key_id.clone(),
            description: description.to_owned(),
            state: "Enabled".into(),
            key_manager: "AWS".into(),
            hidden,
            created: now,
            deletion_date: None,
            pending_days: None,
            rotation_enabled: true,
            rotation_period_days: 365,
            next_rotation: Some(now + 365 * 86_400),
            on_demand_rotations: 0,
            policy: sealbox_policy::default_key_policy(&self.config.account_id),
        };
        let tx = conn.transaction()?;
        Self::insert_key(&tx, &rec)?;
        self.add_material(&tx, &key_id, None)?;
        tx.execute(
            "INSERT INTO aliases (alias_name, key_id, created, updated) VALUES (?1, ?2, ?3, ?3)",
            params![alias, key_id, now],
        )?;
        tx.commit()?;
        Ok(rec)
    }

    /// `alias/aws/s3`: the AWS-managed key SSE-KMS uses when no key is named, made on first use.
    pub fn s3_default_key(&self) -> Result<KeyRecord, KmsError> {
        self.managed_key(
            S3_DEFAULT_ALIAS,
            false,
            "Default key that protects my S3 objects when no other key is defined",
        )
    }

    fn sse_s3_key(&self) -> Result<KeyRecord, KmsError> {
        self.managed_key(SSE_S3_ALIAS, true, "sealbox SSE-S3 service key")
    }

    /// Read-check-modify-write of one key under the connection lock, in one transaction: `f`
    /// sees the key's current state (not the possibly stale record a request resolved), may
    /// refuse, may add material on the same transaction, and its changes are written back.
    /// `f` must not call anything that takes the connection lock.
    fn modify_key<T>(
        &self,
        key_id: &str,
        f: impl FnOnce(&Connection, &mut KeyRecord) -> Result<T, KmsError>,
    ) -> Result<(KeyRecord, T), KmsError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut rec = tx
            .query_row(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_id = ?1"), params![key_id], key_from_row)
            .optional()?
            .ok_or_else(|| self.not_found(key_id))?;
        let out = f(&tx, &mut rec)?;
        tx.execute(
            "UPDATE keys SET description = ?2, state = ?3, deletion_date = ?4, pending_days = ?5, rotation_enabled = ?6,
                 rotation_period_days = ?7, next_rotation = ?8, on_demand_rotations = ?9, policy = ?10 WHERE key_id = ?1",
            params![
                rec.key_id,
                rec.description,
                rec.state,
                rec.deletion_date,
                rec.pending_days,
                rec.rotation_enabled as i64,
                rec.rotation_period_days,
                rec.next_rotation,
                rec.on_demand_rotations,
                rec.policy
            ],
        )?;
        tx.commit()?;
        Ok((rec, out))
    }

    fn update(
        &self,
        key_id: &str,
        f: impl FnOnce(&mut KeyRecord) -> Result<(), KmsError>,
    ) -> Result<KeyRecord, KmsError> {
        Ok(self.modify_key(key_id, |_, rec| f(rec))?.0)
    }

    /// Adds an AUTOMATIC version to `rec` if it is enabled, rotating and due; the schedule then
    /// restarts from now (a key that missed several periods rotates once, not once per period).
    fn rotate_if_due(&self, conn: &Connection, rec: &mut KeyRecord) -> Result<Option<RotationEvent>, KmsError> {
        let now = self.now();
        let due = rec.state == "Enabled" && rec.rotation_enabled && rec.next_rotation.is_some_and(|n| n <= now);
        if !due {
            return Ok(None);
        }
        let m = self.add_material(conn, &rec.key_id, Some("AUTOMATIC"))?;
        rec.next_rotation = Some(now + rec.rotation_period_days * 86_400);
        Ok(Some(RotationEvent {
            key_arn: self.key_arn(&rec.key_id),
            key_id: rec.key_id.clone(),
            version: m.version,
            rotation_type: "AUTOMATIC".into(),
            at: now,
        }))
    }

    fn require_customer(&self, rec: &KeyRecord, what: &str) -> Result<(), KmsError> {
        if rec.key_manager == "AWS" {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is an AWS managed key: {what} is not allowed on it.",
                self.key_arn(&rec.key_id)
            )));
        }
        Ok(())
    }

    fn require_not_pending(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        if rec.state == "PendingDeletion" {
            return Err(KmsError::InvalidState(format!("{} is pending deletion.", self.key_arn(&rec.key_id))));
        }
        Ok(())
    }

    /// Usable for cryptography? (D.3: Disabled -> DisabledException, PendingDeletion -> KMSInvalidState).
    pub fn require_usable(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        match rec.state.as_str() {
            "Enabled" => Ok(()),
            "Disabled" => Err(KmsError::Disabled(format!("{} is disabled.", self.key_arn(&rec.key_id)))),
            _ => Err(KmsError::InvalidState(format!("{} is pending deletion.", self.key_arn(&rec.key_id)))),
        }
    }

    /// EnableKey. A key that became due for rotation while disabled rotates now (contract E);
    /// that rotation is reported by the next [`Kms::rotate_due_keys`].
    pub fn enable_key(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        let (_, event) = self.modify_key(&rec.key_id, |conn, k| {
            self.require_not_pending(k)?;
            k.state = "Enabled".into();
            self.rotate_if_due(conn, k)
        })?;
        if let Some(e) = event {
            self.unreported_rotations.lock().unwrap_or_else(|e| e.into_inner()).push(e);
        }
        Ok(())
    }

    pub fn disable_key(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        self.update(&rec.key_id, |k| {
            self.require_customer(k, "DisableKey")?;
            self.require_not_pending(k)?;
            k.state = "Disabled".into();
            Ok(())
        })?;
        Ok(())
    }

    pub fn schedule_deletion(&self, rec: &KeyRecord, days: i64) -> Result<KeyRecord, KmsError> {
        if !(7..=30).contains(&days) {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
            )));
        }
        let when = self.now() + days * 86_400;
        self.update(&rec.key_id, |k| {
            self.require_customer(k, "ScheduleKeyDeletion")?;
            self.require_not_pending(k)?;
            k.state = "PendingDeletion".into();
            k.deletion_date = Some(when);
            k.pending_days = Some(days);
            Ok(())
        })
    }

    /// CancelKeyDeletion: the key comes back Disabled (AWS), its rotation setting intact.
    pub fn cancel_deletion(&self, rec: &KeyRecord) -> Result<KeyRecord, KmsError> {
        self.update(&rec.key_id, |k| {
            if k.state != "PendingDeletion" {
                return Err(KmsError::InvalidState(format!("{} is not pending deletion.", self.key_arn(&k.key_id))));
            }
            k.state = "Disabled".into();
            k.deletion_date = None;
            k.pending_days = None;
            Ok(())
        })
    }

    /// Enable/DisableKeyRotation. Enabling (again) sets the period and restarts the schedule:
    /// the first rotation comes one period from now.
    pub fn set_rotation(&self, rec: &KeyRecord, enabled: bool, period_days: Option<i64>) -> Result<(), KmsError> {
        let now = self.now();
        self.update(&rec.key_id, |k| {
            self.require_customer(k, if enabled { "EnableKeyRotation" } else { "DisableKeyRotation" })?;
            self.require_usable(k)?;
            let period = period_days.unwrap_or(if enabled { 365 } else { k.rotation_period_days });
            if !(90..=2560).contains(&period) {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value '{period}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560"
                )));
            }
            k.rotation_enabled = enabled;
            k.rotation_period_days = period;
            k.next_rotation = enabled.then_some(now + period * 86_400);
            Ok(())
        })?;
        Ok(())
    }

    /// RotateKeyOnDemand: a new version now, leaving the automatic schedule alone (AWS); at
    /// most 25 per key; ConflictException while an automatic rotation is due within 20 minutes.
    pub fn rotate_on_demand(&self, rec: &KeyRecord) -> Result<RotationEvent, KmsError> {
        let now = self.now();
        let (_, m) = self.modify_key(&rec.key_id, |conn, k| {
            self.require_customer(k, "RotateKeyOnDemand")?;
            self.require_usable(k)?;
            if k.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
                return Err(KmsError::LimitExceeded(format!(
                    "The on-demand rotations limit has been reached for {}.",
                    self.key_arn(&k.key_id)
                )));
            }
            if k.rotation_enabled && k.next_rotation.is_some_and(|n| n <= now + 20 * 60) {
                return Err(KmsError::Conflict(format!(
                    "An automatic rotation of {} is in progress or due within 20 minutes.",
                    self.key_arn(&k.key_id)
                )));
            }
            k.on_demand_rotations += 1;
            self.add_material(conn, &k.key_id, Some("ON_DEMAND"))
        })?;
        Ok(RotationEvent {
            key_arn: self.key_arn(&rec.key_id),
            key_id: rec.key_id.clone(),
            version: m.version,
            rotation_type: "ON_DEMAND".into(),
            at: m.created,
        })
    }

    /// Rotates every enabled key whose next rotation date has passed, including keys that
    /// became due while the server was down (once, however many periods were missed; the
    /// schedule restarts from now), and reports rotations `enable_key` did since the last call.
    /// Disabled and pending-deletion keys never rotate.
    pub fn rotate_due_keys(&self) -> Result<Vec<RotationEvent>, KmsError> {
        let now = self.now();
        let due: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT key_id FROM keys WHERE state = 'Enabled' AND rotation_enabled = 1 AND next_rotation <= ?1",
            )?;
            let rows = stmt.query_map(params![now], |r| r.get(0))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let mut events: Vec<RotationEvent> =
            std::mem::take(&mut *self.unreported_rotations.lock().unwrap_or_else(|e| e.into_inner()));
        for key_id in due {
            // Re-checked under the lock: the key may have been disabled or deleted meanwhile.
            match self.modify_key(&key_id, |conn, k| self.rotate_if_due(conn, k)) {
                Ok((_, Some(e))) => events.push(e),
                Ok((_, None)) | Err(KmsError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(events)
    }

    /// Destroys keys whose deletion date passed: rows, every material version, aliases, tags.
    /// Anything encrypted under them is unrecoverable from now on (crypto-shredding).
    pub fn purge_deleted_keys(&self) -> Result<Vec<String>, KmsError> {
        let now = self.now();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ids: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT key_id FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= ?1")?;
            let rows = stmt.query_map(params![now], |r| r.get(0))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for id in &ids {
            tx.execute("DELETE FROM key_material WHERE key_id = ?1", params![id])?;
            tx.execute("DELETE FROM aliases WHERE key_id = ?1", params![id])?;
            tx.execute("DELETE FROM key_tags WHERE key_id = ?1", params![id])?;
            tx.execute("DELETE FROM keys WHERE key_id = ?1", params![id])?;
        }
        tx.commit()?;
        drop(conn);
        self.material_cache.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _), _| !ids.contains(id));
        if !ids.is_empty() {
            // Let SQLite reuse the pages that held the destroyed material.
            let _ = self.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        }
        Ok(ids)
    }

    pub fn set_description(&self, rec: &KeyRecord, description: &str) -> Result<(), KmsError> {
        self.update(&rec.key_id, |k| {
            self.require_not_pending(k)?;
            k.description = description.to_owned();
            Ok(())
        })?;
        Ok(())
    }

    pub fn set_policy(&self, rec: &KeyRecord, policy: &str) -> Result<(), KmsError> {
        self.update(&rec.key_id, |k| {
            self.require_customer(k, "PutKeyPolicy")?;
            k.policy = policy.to_owned();
            Ok(())
        })?;
        Ok(())
    }

    /// TagResource: all tags or none (a request that would pass 50 tags changes nothing).
    pub fn tag(&self, rec: &KeyRecord, tags: &[(String, String)]) -> Result<(), KmsError> {
        self.modify_key(&rec.key_id, |conn, k| {
            self.require_not_pending(k)?;
            for (tk, tv) in tags {
                conn.execute(
                    "INSERT OR REPLACE INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
                    params![k.key_id, tk, tv],
                )?;
            }
            let n: i64 =
                conn.query_row("SELECT COUNT(*) FROM key_tags WHERE key_id = ?1", params![k.key_id], |r| r.get(0))?;
            if n > 50 {
                return Err(KmsError::LimitExceeded("A key may have at most 50 tags.".into()));
            }
            Ok(())
        })?;
        Ok(())
    }

    pub fn untag(&self, rec: &KeyRecord, keys: &[String]) -> Result<(), KmsError> {
        self.modify_key(&rec.key_id, |conn, k| {
            self.require_not_pending(k)?;
            for tk in keys {
                conn.execute("DELETE FROM key_tags WHERE key_id = ?1 AND tag_key = ?2", params![k.key_id, tk])?;
            }
            Ok(())
        })?;
        Ok(())
    }

    // ---- aliases ----

    pub fn create_alias(&self, alias: &str, target: &KeyRecord) -> Result<(), KmsError> {
        check_alias_name(alias)?;
        let now = self.now();
        self.modify_key(&target.key_id, |conn, k| {
            self.require_not_pending(k)?;
            let n = conn.execute(
                "INSERT INTO aliases (alias_name, key_id, created, updated) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (alias_name) DO NOTHING",
                params![alias, k.key_id, now],
            )?;
            if n == 0 {
                return Err(KmsError::AlreadyExists(format!(
                    "An alias with the name {} already exists",
                    self.alias_arn(alias)
                )));
            }
            Ok(())
        })?;
        Ok(())
    }

    /// UpdateAlias: the new target must not be pending deletion; the old one may be (D.3).
    pub fn update_alias(&self, alias: &str, target: &KeyRecord) -> Result<(), KmsError> {
        check_alias_name(alias)?;
        let now = self.now();
        self.modify_key(&target.key_id, |conn, k| {
            self.require_not_pending(k)?;
            let n = conn.execute(
                "UPDATE aliases SET key_id = ?2, updated = ?3 WHERE alias_name = ?1",
                params![alias, k.key_id, now],
            )?;
            if n == 0 {
                return Err(KmsError::NotFound(format!("Alias {} is not found.", self.alias_arn(alias))));
            }
            Ok(())
        })?;
        Ok(())
    }

    pub fn delete_alias(&self, alias: &str) -> Result<(), KmsError> {
        if !alias.starts_with("alias/") {
            return Err(KmsError::Validation(format!("1 validation error detected: Value '{alias}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$")));
        }
        if alias.starts_with("alias/aws/") {
            return Err(KmsError::InvalidAliasName(format!("Alias {alias} is reserved for AWS managed keys.")));
        }
        let n = self.conn().execute("DELETE FROM aliases WHERE alias_name = ?1", params![alias])?;
        if n == 0 {
            return Err(KmsError::NotFound(format!("Alias {} is not found.", self.alias_arn(alias))));
        }
        Ok(())
    }

    // ---- cryptography ----

    /// The AEAD key of one material version (from the cache, or unwrapped by the root key).
    pub(crate) fn material(&self, key_id: &str, version: u32) -> Result<Arc<MaterialKey>, KmsError> {
        let cache_key = (key_id.to_owned(), version);
        if let Some(m) = self.material_cache.lock().unwrap_or_else(|e| e.into_inner()).get(&cache_key) {
            return Ok(m.clone());
        }
        let row: Option<(Vec<u8>, String)> = self
            .conn()
            .query_row(
                "SELECT wrapped, material_id FROM key_material WHERE key_id = ?1 AND version = ?2",
                params![key_id, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (wrapped, material_id) = row.ok_or_else(|| {
            KmsError::InvalidCiphertext("The ciphertext refers to key material that does not exist.".into())
        })?;
        let material = self.root().unwrap(&wrapped, &material_aad(key_id, version))?;
        let m = Arc::new(MaterialKey::new(&material, material_id)?);
        let mut cache = self.material_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MATERIAL_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(cache_key, m.clone());
        Ok(m)
    }

    /// The newest material version of a key: what every new encryption uses. Read from the
    /// store each time, so a rotation (also by another node sharing the store) takes effect at once.
    fn newest(&self, key_id: &str) -> Result<u32, KmsError> {
        self.conn()
            .query_row("SELECT MAX(version) FROM key_material WHERE key_id = ?1", params![key_id], |r| {
                r.get::<_, Option<u32>>(0)
            })?
            .ok_or_else(|| KmsError::Internal(format!("key {key_id} has no material")))
    }

    /// Encrypts under the key's newest material.
    pub fn encrypt_with(
        &self,
        rec: &KeyRecord,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        self.require_usable(rec)?;
        let uuid = Uuid::parse_str(&rec.key_id).map_err(|e| KmsError::Internal(e.to_string()))?;
        let version = self.newest(&rec.key_id)?;
        let material = self.material(&rec.key_id, version)?;
        let out = blob::seal(&material, &uuid, version, plaintext, context)?;
        Ok((out, material.material_id.clone()))
    }

    /// Decrypts any blob of ours; `expected` (a resolved key) must match the blob's key.
    pub fn decrypt_blob(
        &self,
        blob_bytes: &[u8],
        context: &BTreeMap<String, String>,
        expected: Option<&KeyRecord>,
    ) -> Result<(KeyRecord, Decrypted), KmsError> {
        let parsed = blob::parse(blob_bytes)?;
        let h = &parsed.header;
        let key_id = h.key_id.to_string();
        if let Some(exp) = expected {
            if exp.key_id != key_id {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
        }
        let rec = self.key(&key_id)?.ok_or_else(|| KmsError::InvalidCiphertext("The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.".into()))?;
        self.require_usable(&rec)?;
        let material = self.material(&key_id, h.version)?;
        let plaintext = blob::open(&material, &parsed, context)?;
        let key_arn = self.key_arn(&key_id);
        Ok((rec, Decrypted { plaintext, key_arn, material_id: material.material_id.clone() }))
    }

    /// GenerateDataKey: `len` random bytes, returned plain and encrypted under the key.
    pub fn generate_data_key_with(
        &self,
        rec: &KeyRecord,
        len: usize,
        context: &BTreeMap<String, String>,
    ) -> Result<GeneratedDataKey, KmsError> {
        self.require_usable(rec)?;
        let mut plaintext = Zeroizing::new(vec![0u8; len]);
        aws_lc_rs::rand::fill(&mut plaintext[..]).map_err(|_| KmsError::Internal("randomness".into()))?;
        let (blob, material_id) = self.encrypt_with(rec, &plaintext, context)?;
        self.stats.generate_data_key.fetch_add(1, Ordering::Relaxed);
        Ok(GeneratedDataKey { plaintext, ciphertext_blob: blob, key_arn: self.key_arn(&rec.key_id), material_id })
    }

    // ---- what S3 server-side encryption uses ----

    /// GenerateDataKey (AES_256) under a key reference, or `alias/aws/s3` for `None`.
    pub fn generate_data_key(
        &self,
        key_ref: Option<&str>,
        context: &BTreeMap<String, String>,
    ) -> Result<GeneratedDataKey, KmsError> {
        let rec = match key_ref {
            Some(k) => self.resolve(k, true)?,
            None => self.s3_default_key()?,
        };
        self.generate_data_key_with(&rec, 32, context)
    }

    pub fn decrypt_data_key(
        &self,
        blob_bytes: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Decrypted, KmsError> {
        let (rec, d) = self.decrypt_blob(blob_bytes, context, None)?;
        if rec.hidden {
            return Err(KmsError::InvalidCiphertext("The ciphertext is invalid.".into()));
        }
        self.stats.decrypt.fetch_add(1, Ordering::Relaxed);
        Ok(d)
    }

    pub fn generate_sse_s3_key(&self) -> Result<GeneratedDataKey, KmsError> {
        let rec = self.sse_s3_key()?;
        self.generate_data_key_with(&rec, 32, &BTreeMap::new())
    }

    pub fn decrypt_sse_s3_key(&self, blob_bytes: &[u8]) -> Result<Decrypted, KmsError> {
        let rec = self.sse_s3_key()?;
        Ok(self.decrypt_blob(blob_bytes, &BTreeMap::new(), Some(&rec))?.1)
    }

    /// Re-wraps a blob under its key's newest material (same key, same context): `None` when it
    /// already is. Lets old material be retired without touching object data.
    pub fn rewrap_blob(
        &self,
        blob_bytes: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Option<Vec<u8>>, KmsError> {
        let (rec, d) = self.decrypt_blob(blob_bytes, context, None)?;
        let (_, version) = Kms::blob_key_info(blob_bytes)
            .ok_or_else(|| KmsError::InvalidCiphertext("The ciphertext is invalid.".into()))?;
        let newest = self.newest(&rec.key_id)?;
        if version == newest {
            return Ok(None);
        }
        Ok(Some(self.encrypt_with(&rec, &d.plaintext, context)?.0))
    }

    /// (key id, material version) a blob names, to prove which version wrapped a data key.
    pub fn blob_key_info(blob_bytes: &[u8]) -> Option<(String, u32)> {
        blob::parse(blob_bytes).ok().map(|p| (p.header.key_id.to_string(), p.header.version))
    }

    /// Seals a server secret (access-key secrets, the SSE-C recognition key) under the root key.
    pub fn seal_secret(&self, plaintext: &[u8], purpose: &str) -> Result<Vec<u8>, KmsError> {
        self.root().wrap(plaintext, &secret_aad(purpose))
    }

    pub fn open_secret(&self, sealed: &[u8], purpose: &str) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.root().unwrap(sealed, &secret_aad(purpose))
    }

    /// Re-seals a secret sealed under `old_root` (the key [`Kms::change_root_key`] returned)
    /// under the current root key.
    pub fn reseal_secret(&self, old_root: &RootKey, sealed: &[u8], purpose: &str) -> Result<Vec<u8>, KmsError> {
        let plain = old_root.unwrap(sealed, &secret_aad(purpose))?;
        self.seal_secret(&plain, purpose)
    }

    /// Changes the root key while the service runs: every material version and the check value
    /// are re-wrapped under `new_root` in one transaction (all or nothing), then `new_root`
    /// replaces the old one. Returns the old root key (to re-seal secrets kept outside this
    /// store with [`Kms::reseal_secret`]) and the number of material versions re-wrapped.
    /// Key ids, material ids, and every ciphertext blob stay valid: only the wrapping changes.
    pub fn change_root_key(&self, new_root: RootKey) -> Result<(RootKey, usize), KmsError> {
        // The connection lock is held throughout, so no material is added under the old root
        // between the re-wrap and the swap.
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let rows: Vec<(String, u32, Vec<u8>)> = {
            let mut stmt = tx.prepare("SELECT key_id, version, wrapped FROM key_material")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        {
            let old = self.root();
            for (id, v, w) in &rows {
                let m = old.unwrap(w, &material_aad(id, *v))?;
                let nw = new_root.wrap(&m, &material_aad(id, *v))?;
                tx.execute(
                    "UPDATE key_material SET wrapped = ?3 WHERE key_id = ?1 AND version = ?2",
                    params![id, v, nw],
                )?;
            }
        }
        let check = new_root.wrap(ROOT_CHECK_PLAINTEXT, CHECK_AAD)?;
        tx.execute("UPDATE kms_meta SET value = ?1 WHERE name = 'root_check'", params![check])?;
        tx.commit()?;
        let mut root = self.root.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut *root, new_root);
        Ok((old, rows.len()))
    }
}

fn secret_aad(purpose: &str) -> Vec<u8> {
    format!("sealbox secret v1 {purpose}").into_bytes()
}

/// `alias/` + 1-250 of `[a-zA-Z0-9/_-]`; `alias/aws/` is reserved.
pub(crate) fn check_alias_name(alias: &str) -> Result<(), KmsError> {
    let Some(rest) = alias.strip_prefix("alias/") else {
        return Err(KmsError::Validation(format!("1 validation error detected: Value '{alias}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$")));
    };
    if rest.is_empty() || alias.len() > 256 || !rest.chars().all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c)) {
        return Err(KmsError::Validation(format!("1 validation error detected: Value '{alias}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$")));
    }
    if rest.starts_with("aws/") || rest.starts_with("sealbox/internal/") {
        return Err(KmsError::InvalidAliasName(format!(
            "Alias {alias} cannot begin with 'alias/aws/': it is reserved for AWS managed keys."
        )));
    }
    Ok(())
}

pub(crate) fn epoch(t: i64) -> f64 {
    t as f64
}

#[allow(dead_code)]
pub(crate) fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blobs written before format 2 (random nonce under the material) still decrypt, through
    /// the same path as new ones.
    #[test]
    fn format_1_blobs_still_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let kms = Kms::open(
            &dir.path().join("kms.db"),
            RootKey::from_bytes(&[5u8; 32]).unwrap(),
            Arc::new(crate::FakeClock::at(1_800_000_000)),
            KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
        )
        .unwrap();
        let key = kms.create_key("", None, &[]).unwrap();
        let ctx = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let material = kms.material(&key.key_id, 1).unwrap();
        let old = blob::seal_v1(&material, &Uuid::parse_str(&key.key_id).unwrap(), 1, b"from v1", &ctx);
        let (_, d) = kms.decrypt_blob(&old, &ctx, None).unwrap();
        assert_eq!(&d.plaintext[..], b"from v1");
        assert!(kms.decrypt_blob(&old, &BTreeMap::new(), None).is_err());
        let new = kms.rewrap_blob(&old, &ctx).unwrap();
        assert!(new.is_none(), "same material version: nothing to re-wrap");
    }
}
