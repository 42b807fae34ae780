//! The key service: keys, material versions, aliases, rotation, deletion, crypto operations.
//! Everything is stored in one SQLite file (every statement in `store.rs`); key material only
//! wrapped by the root key. Asymmetric and HMAC operations are in `kms/asymmetric.rs`,
//! imported material in `kms/byok.rs`, grants in `kms/grants.rs`.

mod asymmetric;
mod byok;
mod grants;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::asym::{HmacKey, PrivateKey};
use crate::blob::{self, MaterialKey};
use crate::root::{random, RootKey};
use crate::spec::{ExpirationModel, KeyFamily, KeySpec, KeyUsage, Origin};
use crate::store::{self, Db};
use crate::{Clock, KmsError};

pub use asymmetric::DataKeyPair;
pub use byok::ImportParametersOut;
pub use grants::NewGrant;

pub const S3_DEFAULT_ALIAS: &str = "alias/aws/s3";
/// The hidden key behind SSE-S3; never listed, never usable through the API.
const SSE_S3_ALIAS: &str = "alias/sealbox/internal/sse-s3";
const CHECK_AAD: &[u8] = b"sealbox kms root check v1";
/// What the check value wraps: opening it proves the root key is the one this store was made with.
const ROOT_CHECK_PLAINTEXT: &[u8] = b"sealbox root key check";
const MAX_ON_DEMAND_ROTATIONS: i64 = 25;

/// Account and region used in ARNs.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    pub account_id: String,
    pub region: String,
}

/// Who is calling (for audit, grants and policies).
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
    /// `Enabled | Disabled | PendingDeletion | PendingImport`.
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
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
    /// Imported keys: whether (and when) the current import expires.
    pub expiration_model: Option<ExpirationModel>,
    pub valid_to: Option<i64>,
    /// Imported keys: the id of the material first imported; only the same material may be
    /// imported again (IncorrectKeyMaterialException otherwise).
    pub imported_material_id: Option<String>,
}

/// What CreateKey asks for beyond description, policy and tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewKey {
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
}

impl Default for NewKey {
    fn default() -> Self {
        NewKey { key_spec: KeySpec::SymmetricDefault, key_usage: KeyUsage::EncryptDecrypt, origin: Origin::AwsKms }
    }
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

/// One material version, unwrapped and ready: the AEAD of a symmetric key, the private key of
/// an asymmetric one, or the HMAC key.
pub(crate) enum Material {
    Symmetric(MaterialKey),
    Private { key: PrivateKey },
    Hmac { key: Box<HmacKey> },
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
    /// Imported material that expired when a request found it past its ValidTo, handed out by
    /// the next [`Kms::expire_imported_material`] call for the audit trail.
    unreported_expirations: Mutex<Vec<String>>,
    /// Unwrapped material of the versions in use, so a hot key costs no root-key unwrap and no
    /// extra query per call. A version's material never changes once written; entries of a
    /// purged key or deleted import are dropped with it (and every use checks the key row first).
    material_cache: Mutex<HashMap<(String, u32), Arc<Material>>>,
    pub config: KmsConfig,
    pub stats: KmsStats,
}

/// More versions than any deployment keeps hot; past it the cache simply starts over.
const MATERIAL_CACHE_LIMIT: usize = 4096;

/// AAD of a wrapped material version. Symmetric keys keep the original form; other kinds bind
/// their key spec and usage too, so an edited `keys` row cannot make a signing key decrypt or
/// an HMAC key act as AES material: the unwrap fails instead.
fn material_aad(key_id: &str, version: u32, spec: KeySpec, usage: KeyUsage) -> Vec<u8> {
    let mut a = if spec == KeySpec::SymmetricDefault {
        b"sealbox kms material v1".to_vec()
    } else {
        b"sealbox kms material v2".to_vec()
    };
    a.extend_from_slice(key_id.as_bytes());
    a.extend_from_slice(&version.to_be_bytes());
    if spec != KeySpec::SymmetricDefault {
        a.extend_from_slice(format!("{spec}/{usage}").as_bytes());
    }
    a
}

impl Kms {
    /// Opens (or creates) the key store at `path`. With an existing store, a root key that does
    /// not open its check value is refused before anything is touched.
    pub fn open(path: &Path, root: RootKey, clock: Arc<dyn Clock>, config: KmsConfig) -> Result<Self, KmsError> {
        let conn = store::open(path)?;
        match Db(&conn).meta("root_check")? {
            Some(w) => {
                root.unwrap(&w, CHECK_AAD)?;
            }
            None => Db(&conn).put_meta("root_check", &root.wrap(ROOT_CHECK_PLAINTEXT, CHECK_AAD)?)?,
        }
        Ok(Kms {
            conn: Mutex::new(conn),
            root: RwLock::new(root),
            clock,
            unreported_rotations: Mutex::new(Vec::new()),
            unreported_expirations: Mutex::new(Vec::new()),
            material_cache: Mutex::new(HashMap::new()),
            config,
            stats: KmsStats::default(),
        })
    }

    /// The passphrase salt stored beside the keys (created on first use), for `RootKey::from_passphrase`.
    pub fn passphrase_salt(path: &Path) -> Result<Vec<u8>, KmsError> {
        let conn = Connection::open(path)?;
        store::migrate(&conn)?;
        match Db(&conn).meta("passphrase_salt")? {
            Some(s) => Ok(s),
            None => {
                let s = random::<16>()?.to_vec();
                Db(&conn).put_meta("passphrase_salt", &s)?;
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

    fn forget_material(&self, key_id: &str) {
        self.material_cache.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _), _| id != key_id);
    }

    // ---- lookups ----

    /// A key by id, as it is now (imported material past its ValidTo is expired first).
    pub fn key(&self, key_id: &str) -> Result<Option<KeyRecord>, KmsError> {
        let rec = Db(&self.conn()).key(key_id)?;
        match rec {
            Some(r) if self.material_expired(&r) => self.expire_now(&r.key_id).map(Some),
            other => Ok(other),
        }
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
            let id = Db(&self.conn()).alias_target(local)?;
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
        Db(&self.conn()).materials(key_id)
    }

    pub fn list_keys(&self) -> Result<Vec<KeyRecord>, KmsError> {
        Db(&self.conn()).list_keys()
    }

    /// (alias name, key id, created, updated), optionally for one key.
    pub fn list_aliases(&self, key_id: Option<&str>) -> Result<Vec<(String, String, i64, i64)>, KmsError> {
        Db(&self.conn()).list_aliases(key_id)
    }

    pub fn tags(&self, key_id: &str) -> Result<Vec<(String, String)>, KmsError> {
        Db(&self.conn()).tags(key_id)
    }

    // ---- key lifecycle ----

    /// Stores `plaintext` as the next material version of `rec`, wrapped at once, on the
    /// caller's transaction. `material_id` is given for imported material (stable across
    /// re-imports); generated material gets the digest of its first wrapped form.
    fn store_material(
        &self,
        db: &Db<'_>,
        rec: &KeyRecord,
        plaintext: &[u8],
        material_id: Option<String>,
        rotation_type: Option<&str>,
    ) -> Result<MaterialInfo, KmsError> {
        let version = db.next_material_version(&rec.key_id)?;
        let wrapped = self.root().wrap(plaintext, &material_aad(&rec.key_id, version, rec.key_spec, rec.key_usage))?;
        // Public and stable (it survives a root key change): a digest, never the material.
        let material_id = material_id
            .unwrap_or_else(|| hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &wrapped).as_ref()));
        let info =
            MaterialInfo { version, material_id, created: self.now(), rotation_type: rotation_type.map(str::to_owned) };
        db.insert_material(&rec.key_id, &info, &wrapped)?;
        Ok(info)
    }

    /// Fresh material of a key spec: 32 random bytes, an HMAC key, or a private key as PKCS#8.
    fn fresh_material(spec: KeySpec, usage: KeyUsage) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        Ok(match spec.family() {
            KeyFamily::Symmetric => Zeroizing::new(random::<32>()?.to_vec()),
            KeyFamily::Hmac => {
                let (len, _) = spec.hmac_key_lengths().unwrap_or((32, 32..=32));
                let mut m = Zeroizing::new(vec![0u8; len]);
                aws_lc_rs::rand::fill(&mut m[..]).map_err(|_| KmsError::Internal("randomness".into()))?;
                m
            }
            KeyFamily::Asymmetric => match (spec.rsa_bits(), usage) {
                (Some(bits), KeyUsage::EncryptDecrypt) => crate::asym::generate_rsa_decryption_key(bits)?.0,
                _ => crate::asym::generate_key_pair(spec)?.0,
            },
        })
    }

    /// Generates fresh material for `rec` and stores it as the next version.
    fn add_material(
        &self,
        db: &Db<'_>,
        rec: &KeyRecord,
        rotation_type: Option<&str>,
    ) -> Result<MaterialInfo, KmsError> {
        let material = Self::fresh_material(rec.key_spec, rec.key_usage)?;
        self.store_material(db, rec, &material, None, rotation_type)
    }

    /// CreateKey of a symmetric encryption key.
    pub fn create_key(
        &self,
        description: &str,
        policy: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<KeyRecord, KmsError> {
        self.create_key_with(NewKey::default(), description, policy, tags)
    }

    /// CreateKey of any supported spec and usage; `Origin: EXTERNAL` keys start in
    /// `PendingImport` with no material. The caller checked the spec/usage combination.
    pub fn create_key_with(
        &self,
        new: NewKey,
        description: &str,
        policy: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<KeyRecord, KmsError> {
        let key_id = Uuid::new_v4().to_string();
        let external = new.origin == Origin::External;
        let rec = KeyRecord {
            key_id: key_id.clone(),
            description: description.to_owned(),
            state: if external { "PendingImport" } else { "Enabled" }.into(),
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
            key_spec: new.key_spec,
            key_usage: new.key_usage,
            origin: new.origin,
            expiration_model: None,
            valid_to: None,
            imported_material_id: None,
        };
        // RSA key generation takes a while: make the material before taking the store lock.
        let material = if external { None } else { Some(Self::fresh_material(rec.key_spec, rec.key_usage)?) };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let db = Db(&tx);
        db.insert_key(&rec)?;
        if let Some(m) = material {
            self.store_material(&db, &rec, &m, None, None)?;
        }
        for (k, v) in tags {
            db.put_tag(&key_id, k, v)?;
        }
        tx.commit()?;
        Ok(rec)
    }

    /// A key managed by sealbox itself (alias/aws/s3, the SSE-S3 service key): rotated yearly.
    /// Made on first use; the lookup and the creation happen under one lock and one transaction,
    /// so concurrent first uses (parallel PUTs) all get the same key.
    fn managed_key(&self, alias: &str, hidden: bool, description: &str) -> Result<KeyRecord, KmsError> {
        let mut conn = self.conn();
        if let Some(k) = Db(&conn).key_by_alias(alias)? {
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
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin: Origin::AwsKms,
            expiration_model: None,
            valid_to: None,
            imported_material_id: None,
        };
        let tx = conn.transaction()?;
        let db = Db(&tx);
        db.insert_key(&rec)?;
        self.add_material(&db, &rec, None)?;
        db.insert_alias(alias, &key_id, now)?;
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
        f: impl FnOnce(&Db<'_>, &mut KeyRecord) -> Result<T, KmsError>,
    ) -> Result<(KeyRecord, T), KmsError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let db = Db(&tx);
        let mut rec = db.key(key_id)?.ok_or_else(|| self.not_found(key_id))?;
        let out = f(&db, &mut rec)?;
        db.update_key(&rec)?;
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
    fn rotate_if_due(&self, db: &Db<'_>, rec: &mut KeyRecord) -> Result<Option<RotationEvent>, KmsError> {
        let now = self.now();
        let due = rec.state == "Enabled" && rec.rotation_enabled && rec.next_rotation.is_some_and(|n| n <= now);
        if !due {
            return Ok(None);
        }
        let m = self.add_material(db, rec, Some("AUTOMATIC"))?;
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

    fn pending_import(&self, rec: &KeyRecord) -> KmsError {
        KmsError::InvalidState(format!("{} is pending import.", self.key_arn(&rec.key_id)))
    }

    /// Usable for cryptography? (D.3: Disabled -> DisabledException, PendingDeletion and
    /// PendingImport -> KMSInvalidStateException.)
    pub fn require_usable(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        match rec.state.as_str() {
            "Enabled" => Ok(()),
            "Disabled" => Err(KmsError::Disabled(format!("{} is disabled.", self.key_arn(&rec.key_id)))),
            "PendingImport" => Err(self.pending_import(rec)),
            _ => Err(KmsError::InvalidState(format!("{} is pending deletion.", self.key_arn(&rec.key_id)))),
        }
    }

    /// Automatic rotation, its status and on-demand rotation exist only for symmetric
    /// encryption keys with generated material (AWS's key-state table, notes 6 and 7).
    fn require_rotatable(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        let arn = self.key_arn(&rec.key_id);
        if rec.origin == Origin::External {
            return Err(KmsError::UnsupportedOperation(format!(
                "{arn} origin is EXTERNAL which is not valid for this operation."
            )));
        }
        if rec.key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::UnsupportedOperation(format!(
                "{arn} has key spec {} which is not valid for this operation: only symmetric encryption keys rotate.",
                rec.key_spec
            )));
        }
        Ok(())
    }

    /// A symmetric encryption key (Encrypt/Decrypt blobs, data keys); InvalidKeyUsage otherwise.
    pub fn require_symmetric_encryption(&self, rec: &KeyRecord, operation: &str) -> Result<(), KmsError> {
        if rec.key_spec == KeySpec::SymmetricDefault {
            return Ok(());
        }
        Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} and key spec is {}, which is not valid for {operation}: it needs a SYMMETRIC_DEFAULT key.",
            self.key_arn(&rec.key_id),
            rec.key_usage,
            rec.key_spec
        )))
    }

    /// EnableKey. A key that became due for rotation while disabled rotates now (contract E);
    /// that rotation is reported by the next [`Kms::rotate_due_keys`].
    pub fn enable_key(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        let (_, event) = self.modify_key(&rec.key_id, |db, k| {
            self.require_not_pending(k)?;
            if k.state == "PendingImport" {
                return Err(self.pending_import(k));
            }
            k.state = "Enabled".into();
            self.rotate_if_due(db, k)
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
            if k.state == "PendingImport" {
                return Err(self.pending_import(k));
            }
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

    /// CancelKeyDeletion: the key comes back Disabled (AWS), its rotation setting intact; an
    /// imported key whose material is gone comes back PendingImport.
    pub fn cancel_deletion(&self, rec: &KeyRecord) -> Result<KeyRecord, KmsError> {
        Ok(self
            .modify_key(&rec.key_id, |db, k| {
                if k.state != "PendingDeletion" {
                    return Err(KmsError::InvalidState(format!(
                        "{} is not pending deletion.",
                        self.key_arn(&k.key_id)
                    )));
                }
                let has_material = db.newest_version(&k.key_id)?.is_some();
                k.state = if has_material { "Disabled" } else { "PendingImport" }.into();
                k.deletion_date = None;
                k.pending_days = None;
                Ok(())
            })?
            .0)
    }

    /// Enable/DisableKeyRotation. Enabling (again) sets the period and restarts the schedule:
    /// the first rotation comes one period from now.
    pub fn set_rotation(&self, rec: &KeyRecord, enabled: bool, period_days: Option<i64>) -> Result<(), KmsError> {
        let now = self.now();
        self.update(&rec.key_id, |k| {
            self.require_customer(k, if enabled { "EnableKeyRotation" } else { "DisableKeyRotation" })?;
            self.require_rotatable(k)?;
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

    /// GetKeyRotationStatus: (enabled, period, next date). Asymmetric and HMAC keys have
    /// rotation off (AWS answers `false` for them); imported keys: UnsupportedOperationException.
    pub fn rotation_status(&self, rec: &KeyRecord) -> Result<(bool, i64, Option<i64>), KmsError> {
        if rec.origin == Origin::External {
            self.require_rotatable(rec)?;
        }
        let enabled = rec.rotation_enabled && rec.state != "PendingDeletion";
        Ok((enabled, rec.rotation_period_days, rec.next_rotation))
    }

    /// RotateKeyOnDemand: a new version now, leaving the automatic schedule alone (AWS); at
    /// most 25 per key; ConflictException while an automatic rotation is due within 20 minutes.
    pub fn rotate_on_demand(&self, rec: &KeyRecord) -> Result<RotationEvent, KmsError> {
        let now = self.now();
        let (_, m) = self.modify_key(&rec.key_id, |db, k| {
            self.require_customer(k, "RotateKeyOnDemand")?;
            self.require_rotatable(k)?;
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
            self.add_material(db, k, Some("ON_DEMAND"))
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
        let due = Db(&self.conn()).keys_due_for_rotation(now)?;
        let mut events: Vec<RotationEvent> =
            std::mem::take(&mut *self.unreported_rotations.lock().unwrap_or_else(|e| e.into_inner()));
        for key_id in due {
            // Re-checked under the lock: the key may have been disabled or deleted meanwhile.
            match self.modify_key(&key_id, |db, k| self.rotate_if_due(db, k)) {
                Ok((_, Some(e))) => events.push(e),
                Ok((_, None)) | Err(KmsError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(events)
    }

    /// Destroys keys whose deletion date passed: rows, every material version, aliases, tags,
    /// grants, import parameters; and drops import parameters past their 24 hours. Anything
    /// encrypted under a destroyed key is unrecoverable from now on (crypto-shredding).
    pub fn purge_deleted_keys(&self) -> Result<Vec<String>, KmsError> {
        let now = self.now();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let db = Db(&tx);
        let ids = db.keys_past_deletion(now)?;
        for id in &ids {
            db.delete_key(id)?;
        }
        let stale_parameters = db.delete_expired_import_parameters(now)?;
        tx.commit()?;
        if !ids.is_empty() || stale_parameters > 0 {
            // Let SQLite reuse the pages that held the destroyed material.
            Db(&conn).checkpoint();
        }
        drop(conn);
        self.material_cache.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _), _| !ids.contains(id));
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
        self.modify_key(&rec.key_id, |db, k| {
            self.require_not_pending(k)?;
            for (tk, tv) in tags {
                db.put_tag(&k.key_id, tk, tv)?;
            }
            if db.tag_count(&k.key_id)? > 50 {
                return Err(KmsError::LimitExceeded("A key may have at most 50 tags.".into()));
            }
            Ok(())
        })?;
        Ok(())
    }

    pub fn untag(&self, rec: &KeyRecord, keys: &[String]) -> Result<(), KmsError> {
        self.modify_key(&rec.key_id, |db, k| {
            self.require_not_pending(k)?;
            for tk in keys {
                db.delete_tag(&k.key_id, tk)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    // ---- aliases ----

    pub fn create_alias(&self, alias: &str, target: &KeyRecord) -> Result<(), KmsError> {
        check_alias_name(alias)?;
        let now = self.now();
        self.modify_key(&target.key_id, |db, k| {
            self.require_not_pending(k)?;
            if !db.insert_alias(alias, &k.key_id, now)? {
                return Err(KmsError::AlreadyExists(format!(
                    "An alias with the name {} already exists",
                    self.alias_arn(alias)
                )));
            }
            Ok(())
        })?;
        Ok(())
    }

    /// UpdateAlias: the new target must not be pending deletion; the old one may be (D.3). The
    /// old and new targets must be of one family (symmetric, asymmetric, HMAC) and one key
    /// usage, "to prevent errors in code that uses aliases".
    pub fn update_alias(&self, alias: &str, target: &KeyRecord) -> Result<(), KmsError> {
        check_alias_name(alias)?;
        let now = self.now();
        self.modify_key(&target.key_id, |db, k| {
            self.require_not_pending(k)?;
            let not_found = || KmsError::NotFound(format!("Alias {} is not found.", self.alias_arn(alias)));
            let current = db.alias_target(alias)?.ok_or_else(not_found)?;
            if let Some(old) = db.key(&current)? {
                if old.key_spec.family() != k.key_spec.family() || old.key_usage != k.key_usage {
                    return Err(KmsError::Validation(format!(
                        "{} is a {} {} key and {} is a {} {} key: UpdateAlias can only move an alias between keys of the same type and key usage.",
                        self.key_arn(&old.key_id),
                        old.key_spec,
                        old.key_usage,
                        self.key_arn(&k.key_id),
                        k.key_spec,
                        k.key_usage
                    )));
                }
            }
            if !db.repoint_alias(alias, &k.key_id, now)? {
                return Err(not_found());
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
        if !Db(&self.conn()).delete_alias(alias)? {
            return Err(KmsError::NotFound(format!("Alias {} is not found.", self.alias_arn(alias))));
        }
        Ok(())
    }

    // ---- cryptography ----

    /// One material version of `rec`, unwrapped (from the cache, or by the root key).
    pub(crate) fn material(&self, rec: &KeyRecord, version: u32) -> Result<Arc<Material>, KmsError> {
        let cache_key = (rec.key_id.clone(), version);
        if let Some(m) = self.material_cache.lock().unwrap_or_else(|e| e.into_inner()).get(&cache_key) {
            return Ok(m.clone());
        }
        let row = Db(&self.conn()).material(&rec.key_id, version)?;
        let (wrapped, material_id) = row.ok_or_else(|| {
            KmsError::InvalidCiphertext("The ciphertext refers to key material that does not exist.".into())
        })?;
        let aad = material_aad(&rec.key_id, version, rec.key_spec, rec.key_usage);
        let plain = self.root().unwrap(&wrapped, &aad)?;
        let m = Arc::new(match rec.key_spec.family() {
            KeyFamily::Symmetric => Material::Symmetric(MaterialKey::new(&plain, material_id)?),
            KeyFamily::Hmac => Material::Hmac { key: Box::new(HmacKey::new(rec.key_spec, &plain)?) },
            KeyFamily::Asymmetric => Material::Private {
                key: PrivateKey::from_pkcs8(rec.key_spec, rec.key_usage, &plain)
                    .map_err(|e| KmsError::Internal(format!("stored private key: {}", e.0)))?,
            },
        });
        let mut cache = self.material_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MATERIAL_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(cache_key, m.clone());
        Ok(m)
    }

    /// The newest material version of a key: what every new encryption uses. Read from the
    /// store each time, so a rotation (also by another node sharing the store) takes effect at once.
    fn newest(&self, rec: &KeyRecord) -> Result<u32, KmsError> {
        Db(&self.conn()).newest_version(&rec.key_id)?.ok_or_else(|| self.pending_import(rec))
    }

    /// The current material of a usable key.
    pub(crate) fn current_material(&self, rec: &KeyRecord) -> Result<Arc<Material>, KmsError> {
        self.require_usable(rec)?;
        let version = self.newest(rec)?;
        self.material(rec, version)
    }

    /// Encrypts under the key's newest material (symmetric encryption keys).
    pub fn encrypt_with(
        &self,
        rec: &KeyRecord,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        self.require_usable(rec)?;
        self.require_symmetric_encryption(rec, "Encrypt")?;
        let uuid = Uuid::parse_str(&rec.key_id).map_err(|e| KmsError::Internal(e.to_string()))?;
        let version = self.newest(rec)?;
        let Material::Symmetric(material) = &*self.material(rec, version)? else {
            return Err(KmsError::Internal("symmetric key without symmetric material".into()));
        };
        let out = blob::seal(material, &uuid, version, plaintext, context)?;
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
        let gone = || {
            KmsError::InvalidCiphertext("The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.".into())
        };
        let rec = self.key(&key_id)?.ok_or_else(gone)?;
        self.require_usable(&rec)?;
        // A blob naming an asymmetric or HMAC key was not made by this service.
        let Material::Symmetric(material) = &*self.material(&rec, h.version)? else {
            return Err(KmsError::InvalidCiphertext("The ciphertext is invalid.".into()));
        };
        let plaintext = blob::open(material, &parsed, context)?;
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
        self.require_symmetric_encryption(rec, "GenerateDataKey")?;
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
        self.generate_sse_s3_key_for(&BTreeMap::new())
    }

    pub fn decrypt_sse_s3_key(&self, blob_bytes: &[u8]) -> Result<Decrypted, KmsError> {
        self.decrypt_sse_s3_key_for(blob_bytes, &BTreeMap::new())
    }

    /// An SSE-S3 data key bound to `context` (S3 passes the object's identity): the blob then
    /// decrypts only with that same context, so it cannot be moved to another object's record.
    pub fn generate_sse_s3_key_for(&self, context: &BTreeMap<String, String>) -> Result<GeneratedDataKey, KmsError> {
        let rec = self.sse_s3_key()?;
        self.generate_data_key_with(&rec, 32, context)
    }

    pub fn decrypt_sse_s3_key_for(
        &self,
        blob_bytes: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Decrypted, KmsError> {
        let rec = self.sse_s3_key()?;
        Ok(self.decrypt_blob(blob_bytes, context, Some(&rec))?.1)
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
        let newest = self.newest(&rec)?;
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

    /// Changes the root key while the service runs: every material version (of every kind),
    /// every import wrapping key and the check value are re-wrapped under `new_root` in one
    /// transaction (all or nothing), then `new_root` replaces the old one. Returns the old root
    /// key (to re-seal secrets kept outside this store with [`Kms::reseal_secret`]) and the
    /// number of material versions re-wrapped. Key ids, material ids, and every ciphertext blob
    /// stay valid: only the wrapping changes.
    pub fn change_root_key(&self, new_root: RootKey) -> Result<(RootKey, usize), KmsError> {
        // The connection lock is held throughout, so no material is added under the old root
        // between the re-wrap and the swap.
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let db = Db(&tx);
        let rows = db.all_wrapped_materials()?;
        {
            let old = self.root();
            for m in &rows {
                let aad = material_aad(&m.key_id, m.version, m.key_spec, m.key_usage);
                let plain = old.unwrap(&m.wrapped, &aad)?;
                db.set_wrapped_material(&m.key_id, m.version, &new_root.wrap(&plain, &aad)?)?;
            }
            for (token, key_id, wrapped) in db.all_import_parameters()? {
                let aad = crate::import::wrapping_key_aad(&token, &key_id);
                let plain = old.unwrap(&wrapped, &aad)?;
                db.set_wrapped_import_key(&token, &new_root.wrap(&plain, &aad)?)?;
            }
        }
        db.put_meta("root_check", &new_root.wrap(ROOT_CHECK_PLAINTEXT, CHECK_AAD)?)?;
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
        let Material::Symmetric(material) = &*kms.material(&key, 1).unwrap() else { panic!("symmetric") };
        let old = blob::seal_v1(material, &Uuid::parse_str(&key.key_id).unwrap(), 1, b"from v1", &ctx);
        let (_, d) = kms.decrypt_blob(&old, &ctx, None).unwrap();
        assert_eq!(&d.plaintext[..], b"from v1");
        assert!(kms.decrypt_blob(&old, &BTreeMap::new(), None).is_err());
        let new = kms.rewrap_blob(&old, &ctx).unwrap();
        assert!(new.is_none(), "same material version: nothing to re-wrap");
    }

    /// The AAD binds spec and usage for new kinds of material, and keeps the v1 form for
    /// symmetric keys (so stores made by earlier builds keep opening).
    #[test]
    fn material_aad_forms() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let mut v1 = b"sealbox kms material v1".to_vec();
        v1.extend_from_slice(id.as_bytes());
        v1.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(material_aad(id, 3, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt), v1);
        assert_ne!(
            material_aad(id, 1, KeySpec::Rsa2048, KeyUsage::SignVerify),
            material_aad(id, 1, KeySpec::Rsa2048, KeyUsage::EncryptDecrypt)
        );
        assert_ne!(
            material_aad(id, 1, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
            material_aad(id, 1, KeySpec::Hmac384, KeyUsage::GenerateVerifyMac)
        );
    }
}
