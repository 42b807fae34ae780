//! Authenticated configuration rows.
//!
//! Bucket policies, bucket default encryption and versioning, IAM users, access keys and user
//! policies decide who may do what, so an edit of `meta.db` must never change a decision. Every
//! such row carries a MAC over a canonical, versioned encoding of its fields (`Canonical`). The
//! store encodes rows and checks MACs on every read; the key comes from the server (derived from
//! a secret sealed by the root key) through [`RowAuthenticator`], so this crate does no crypto.
//!
//! A row that fails its check is reported and refused with [`StoreError::Tampered`]: the caller
//! fails the request, never treats it as "no policy". Row deletions that would widen access are
//! caught too: a bucket setting's MAC also covers its absence (`NULL`), and a user's MAC covers
//! the names of the user's policies, so dropping a Deny policy row breaks the user's row.
//!
//! Stores written before this existed are migrated once, in one transaction that also stores the
//! sealed key ([`MetaStore::authenticate_legacy_rows`]); after that a row without a MAC is
//! tampered with, like a row with a wrong one.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use crate::meta::{BucketConfig, MetaStore};
use crate::records::{ObjectRecord, UploadRecord};
use crate::{Result, StoreError};

/// Makes and checks MACs of encoded rows. Implemented by the server with a root-derived key.
pub trait RowAuthenticator: Send + Sync {
    /// The MAC of one canonically encoded row.
    fn mac(&self, row: &[u8]) -> Vec<u8>;
    /// Checks a MAC in constant time.
    fn verify(&self, row: &[u8], mac: &[u8]) -> bool;
    /// Told about every row that fails its check (metrics, audit trail) before the error returns.
    fn report(&self, what: &str);
}

/// A canonical, unambiguous byte encoding: every field is length-prefixed (u32 big-endian),
/// optional fields carry a presence byte, maps are counted and sorted. Two different rows never
/// encode alike, and the leading label + version separates kinds of rows and future formats.
#[derive(Debug, Clone)]
pub struct Canonical(Vec<u8>);

impl Canonical {
    /// Starts an encoding; `label` names the kind of record and its format version.
    pub fn new(label: &str) -> Self {
        Canonical(Vec::with_capacity(256)).bytes(label.as_bytes())
    }
    pub fn bytes(mut self, b: &[u8]) -> Self {
        // Records are far below 4 GiB; a longer field would be a bug, not data.
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn opt(mut self, v: Option<&str>) -> Self {
        match v {
            None => {
                self.0.push(0);
                self
            }
            Some(s) => {
                self.0.push(1);
                self.str(s)
            }
        }
    }
    pub fn map<'a>(self, pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut pairs: Vec<_> = pairs.into_iter().collect();
        pairs.sort();
        let mut out = self.u64(pairs.len() as u64);
        for (k, v) in pairs {
            out = out.str(k).str(v);
        }
        out
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

const ROW_LABEL: &str = "sealbox meta row v1";

fn bucket_config_row(bucket: &str, field: BucketConfig, value: Option<&str>) -> Vec<u8> {
    let name = match field {
        BucketConfig::Encryption => "encryption",
        BucketConfig::Policy => "policy",
        BucketConfig::Versioning => "versioning",
    };
    Canonical::new(ROW_LABEL).str("bucket-config").str(bucket).str(name).opt(value).into_bytes()
}

pub(crate) fn user_row(u: &crate::meta::UserRecord, policy_names: &[String]) -> Vec<u8> {
    let mut c = Canonical::new(ROW_LABEL)
        .str("user")
        .str(&u.name)
        .str(&u.user_id)
        .str(&u.path)
        .u64(u.created_ms as u64)
        .u64(policy_names.len() as u64);
    for n in policy_names {
        c = c.str(n);
    }
    c.into_bytes()
}

pub(crate) fn access_key_row(k: &crate::meta::AccessKeyRecord) -> Vec<u8> {
    Canonical::new(ROW_LABEL)
        .str("access-key")
        .str(&k.access_key_id)
        .str(&k.user_name)
        .bytes(&k.secret_wrapped)
        .str(&k.status)
        .u64(k.created_ms as u64)
        .into_bytes()
}

pub(crate) fn user_policy_row(user: &str, policy: &str, document: &str) -> Vec<u8> {
    Canonical::new(ROW_LABEL).str("user-policy").str(user).str(policy).str(document).into_bytes()
}

pub(crate) const BUCKET_FIELDS: [BucketConfig; 3] =
    [BucketConfig::Encryption, BucketConfig::Policy, BucketConfig::Versioning];

/// Columns added to the original schema; added in place when an older `meta.db` is opened.
const ADDED_COLUMNS: [(&str, &str); 6] = [
    ("buckets", "encryption_mac"),
    ("buckets", "policy_mac"),
    ("buckets", "versioning_mac"),
    ("users", "mac"),
    ("access_keys", "mac"),
    ("user_policies", "mac"),
];

pub(crate) fn upgrade_schema(conn: &Connection) -> Result<()> {
    for (table, column) in ADDED_COLUMNS {
        let present: bool = conn
            .query_row(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"), params![column], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} BLOB"))?;
        }
    }
    conn.execute_batch("CREATE TABLE IF NOT EXISTS meta_integrity (name TEXT PRIMARY KEY, value BLOB NOT NULL)")?;
    Ok(())
}

/// What the one-time migration of a store from before authenticated metadata bound.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LegacyCounts {
    pub config_rows: u64,
    pub objects: u64,
    pub uploads: u64,
}

impl MetaStore {
    /// Installs the key that authenticates configuration rows. Until then (unit tests, tools
    /// that only read objects) rows are neither tagged nor checked.
    pub fn set_row_authenticator(&self, auth: Arc<dyn RowAuthenticator>) {
        let _ = self.rows.set(auth);
    }

    pub(crate) fn row_mac(&self, row: &[u8]) -> Option<Vec<u8>> {
        self.rows.get().map(|a| a.mac(row))
    }

    /// Checks one row; a missing or wrong MAC is reported and refused.
    pub(crate) fn check_row(&self, row: &[u8], mac: Option<&[u8]>, what: impl FnOnce() -> String) -> Result<()> {
        let Some(auth) = self.rows.get() else { return Ok(()) };
        if mac.is_some_and(|m| auth.verify(row, m)) {
            return Ok(());
        }
        Err(self.refuse_row(what()))
    }

    /// Reports a row that must not be used and returns the error that refuses it.
    pub(crate) fn refuse_row(&self, what: String) -> StoreError {
        if let Some(auth) = self.rows.get() {
            auth.report(&what);
        }
        StoreError::Tampered(what)
    }

    pub(crate) fn bucket_config_mac(&self, bucket: &str, field: BucketConfig, value: Option<&str>) -> Option<Vec<u8>> {
        self.row_mac(&bucket_config_row(bucket, field, value))
    }

    pub(crate) fn check_bucket_config(
        &self,
        bucket: &str,
        field: BucketConfig,
        value: Option<&str>,
        mac: Option<&[u8]>,
    ) -> Result<()> {
        self.check_row(&bucket_config_row(bucket, field, value), mac, || {
            format!("{} of bucket {bucket}", field.describe())
        })
    }

    /// The sealed metadata key stored with this store, if it has been authenticated.
    pub fn integrity_key(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.conn().query_row("SELECT value FROM meta_integrity WHERE name = 'key'", [], |r| r.get(0)).optional()?)
    }

    /// True when any row carries a MAC: the store was authenticated before, so a missing key
    /// means it was removed, not that the store predates authentication. (`"row_mac":` can only
    /// be a key of the JSON document: inside string values its quotes would be escaped.)
    pub fn has_authenticated_rows(&self) -> Result<bool> {
        let conn = self.conn();
        let found: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM buckets WHERE encryption_mac IS NOT NULL OR policy_mac IS NOT NULL OR versioning_mac IS NOT NULL
                 UNION ALL SELECT 1 FROM users WHERE mac IS NOT NULL
                 UNION ALL SELECT 1 FROM access_keys WHERE mac IS NOT NULL
                 UNION ALL SELECT 1 FROM user_policies WHERE mac IS NOT NULL
                 UNION ALL SELECT 1 FROM objects WHERE doc LIKE '%\"row_mac\":%'
                 UNION ALL SELECT 1 FROM uploads WHERE doc LIKE '%\"row_mac\":%'
                 LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Authenticates a store written before authenticated metadata, in one transaction: stores
    /// `sealed_key`, tags every configuration row with the installed authenticator and gives
    /// every object record and upload template its row MAC (`object_mac`, `upload_mac`, made by
    /// the S3 layer). All or nothing: a crash leaves the store as it was, and the next start
    /// runs it again.
    pub fn authenticate_legacy_rows(
        &self,
        sealed_key: &[u8],
        object_mac: &dyn Fn(&ObjectRecord) -> String,
        upload_mac: &dyn Fn(&UploadRecord) -> String,
    ) -> Result<LegacyCounts> {
        if self.rows.get().is_none() {
            return Err(StoreError::Corrupt("no row authenticator installed".into()));
        }
        let mut counts = LegacyCounts::default();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("INSERT INTO meta_integrity (name, value) VALUES ('key', ?1)", params![sealed_key])?;
        counts.config_rows += self.tag_legacy_config(&tx)?;
        counts.objects = self.tag_legacy_objects(&tx, object_mac)?;
        counts.uploads = self.tag_legacy_uploads(&tx, upload_mac)?;
        tx.commit()?;
        Ok(counts)
    }

    fn tag_legacy_config(&self, tx: &Connection) -> Result<u64> {
        let mut n = 0;
        let buckets: Vec<(String, [Option<String>; 3])> = {
            let mut stmt = tx.prepare("SELECT name, encryption, policy, versioning FROM buckets")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?])))?;
            rows.collect::<Result<_, _>>()?
        };
        for (name, values) in buckets {
            let [e, p, v] = BUCKET_FIELDS.map(|f| self.bucket_config_mac(&name, f, values[f as usize].as_deref()));
            tx.execute(
                "UPDATE buckets SET encryption_mac = ?2, policy_mac = ?3, versioning_mac = ?4 WHERE name = ?1",
                params![name, e, p, v],
            )?;
            n += 3;
        }
        for user in crate::meta::users_tx(tx)? {
            let names = crate::meta::policy_names_tx(tx, &user.name)?;
            tx.execute(
                "UPDATE users SET mac = ?2 WHERE name = ?1",
                params![user.name, self.row_mac(&user_row(&user, &names))],
            )?;
            n += 1;
        }
        for key in crate::meta::access_keys_tx(tx, None)?.into_iter().map(|(k, _)| k) {
            tx.execute(
                "UPDATE access_keys SET mac = ?2 WHERE access_key_id = ?1",
                params![key.access_key_id, self.row_mac(&access_key_row(&key))],
            )?;
            n += 1;
        }
        let policies: Vec<(String, String, String)> = {
            let mut stmt = tx.prepare("SELECT user_name, policy_name, document FROM user_policies")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (user, policy, doc) in policies {
            tx.execute(
                "UPDATE user_policies SET mac = ?3 WHERE user_name = ?1 AND policy_name = ?2",
                params![user, policy, self.row_mac(&user_policy_row(&user, &policy, &doc))],
            )?;
            n += 1;
        }
        Ok(n)
    }

    /// Pages through the objects by primary key so memory stays bounded on large stores.
    fn tag_legacy_objects(&self, tx: &Connection, object_mac: &dyn Fn(&ObjectRecord) -> String) -> Result<u64> {
        let mut n = 0;
        let mut after: (String, Vec<u8>) = (String::new(), Vec::new());
        loop {
            let page: Vec<ObjectRecord> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT bucket, key, size, etag, last_modified_ms, doc, generation FROM objects
                     WHERE (bucket, key) > (?1, ?2) ORDER BY bucket, key LIMIT 500",
                )?;
                let rows = stmt.query_map(params![after.0, after.1], crate::meta::object_from_row)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(row??);
                }
                out
            };
            let Some(last) = page.last() else { break };
            after = (last.bucket.clone(), last.key.as_bytes().to_vec());
            for mut rec in page {
                if rec.row_mac.is_some() {
                    continue;
                }
                rec.row_mac = Some(object_mac(&rec));
                let doc = serde_json::to_string(&rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                tx.execute(
                    "UPDATE objects SET doc = ?3 WHERE bucket = ?1 AND key = ?2",
                    params![rec.bucket, rec.key.as_bytes(), doc],
                )?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn tag_legacy_uploads(&self, tx: &Connection, upload_mac: &dyn Fn(&UploadRecord) -> String) -> Result<u64> {
        let uploads: Vec<UploadRecord> = {
            let mut stmt = tx.prepare("SELECT upload_id, bucket, key, initiated_ms, doc FROM uploads")?;
            let rows = stmt.query_map([], crate::meta::upload_from_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row??);
            }
            out
        };
        let mut n = 0;
        for mut up in uploads {
            if up.template.row_mac.is_some() {
                continue;
            }
            up.template.row_mac = Some(upload_mac(&up));
            tx.execute(
                "UPDATE uploads SET doc = ?2 WHERE upload_id = ?1",
                params![up.upload_id, crate::meta::template_doc(&up.template)?],
            )?;
            n += 1;
        }
        Ok(n)
    }
}

impl BucketConfig {
    fn describe(self) -> &'static str {
        match self {
            BucketConfig::Encryption => "default encryption",
            BucketConfig::Policy => "bucket policy",
            BucketConfig::Versioning => "versioning setting",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_unambiguous() {
        let a = Canonical::new("x").str("ab").str("c").into_bytes();
        let b = Canonical::new("x").str("a").str("bc").into_bytes();
        assert_ne!(a, b);
        assert_ne!(Canonical::new("x").opt(None).into_bytes(), Canonical::new("x").opt(Some("")).into_bytes());
        assert_ne!(
            bucket_config_row("b", BucketConfig::Policy, None),
            bucket_config_row("b", BucketConfig::Encryption, None)
        );
        assert_ne!(user_policy_row("a", "b", "c"), user_policy_row("a", "bc", ""));
    }
}
