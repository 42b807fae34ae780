//! Every SQL statement of the key store, in one place: the schema (plain SQL, portable to
//! PostgreSQL), its additive migrations, and one typed method per query. `Kms` holds the
//! connection and decides *what* to do; this module only knows *how* rows are read and written,
//! so a later storage seam can put a trait here without touching the key logic.
//!
//! [`Db`] wraps a connection or an open transaction (a `Transaction` derefs to a `Connection`):
//! whatever runs on a `Db` made from a transaction commits or rolls back with it.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension};

use crate::grants::{Grant, GrantConstraints};
use crate::kms::{KeyRecord, MaterialInfo};
use crate::spec::{ExpirationModel, GrantOperation, KeySpec, KeyUsage, Origin, WrappingAlgorithm, WrappingKeySpec};
use crate::KmsError;

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
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    name TEXT,
    created INTEGER NOT NULL,
    grantee TEXT NOT NULL,
    retiring TEXT,
    operations TEXT NOT NULL,
    constraints TEXT
);
CREATE INDEX IF NOT EXISTS grants_by_key ON grants (key_id, grantee);
CREATE INDEX IF NOT EXISTS grants_by_retiring ON grants (retiring);
CREATE TABLE IF NOT EXISTS import_parameters (
    token_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapping_algorithm TEXT NOT NULL,
    wrapping_key_spec TEXT NOT NULL,
    wrapped_private_key BLOB NOT NULL,
    valid_to INTEGER NOT NULL
);
";

/// Columns added to `keys` after the first release (asymmetric, HMAC and imported keys). Added
/// in place when missing, with defaults that describe every key an older build made.
const ADDED_KEY_COLUMNS: &[(&str, &str)] = &[
    ("key_spec", "TEXT NOT NULL DEFAULT 'SYMMETRIC_DEFAULT'"),
    ("key_usage", "TEXT NOT NULL DEFAULT 'ENCRYPT_DECRYPT'"),
    ("origin", "TEXT NOT NULL DEFAULT 'AWS_KMS'"),
    ("expiration_model", "TEXT"),
    ("valid_to", "INTEGER"),
    ("imported_material_id", "TEXT"),
];

const KEY_COLUMNS: &str = "key_id, description, state, key_manager, hidden, created, deletion_date, pending_days, \
     rotation_enabled, rotation_period_days, next_rotation, on_demand_rotations, policy, \
     key_spec, key_usage, origin, expiration_model, valid_to, imported_material_id";

const GRANT_COLUMNS: &str = "grant_id, key_id, name, created, grantee, retiring, operations, constraints";

/// Opens the store file with the durability settings every KMS write relies on, creating or
/// migrating the schema.
pub(crate) fn open(path: &Path) -> Result<Connection, KmsError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Deleted rows (destroyed key material, even though wrapped) are overwritten, not just
    // unlinked: crypto-shredding should not leave the bytes in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    migrate(&conn)?;
    Ok(conn)
}

/// The schema, with columns older stores lack added in place.
pub(crate) fn migrate(conn: &Connection) -> Result<(), KmsError> {
    conn.execute_batch(SCHEMA)?;
    let existing: Vec<String> = {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('keys')")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for (name, decl) in ADDED_KEY_COLUMNS {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE keys ADD COLUMN {name} {decl}"))?;
        }
    }
    Ok(())
}

fn parsed<T>(r: &rusqlite::Row<'_>, idx: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, format!("unknown value {s:?}").into())
    })
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    let expiration: Option<String> = r.get(16)?;
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
        key_spec: parsed(r, 13, KeySpec::parse)?,
        key_usage: parsed(r, 14, KeyUsage::parse)?,
        origin: parsed(r, 15, Origin::parse)?,
        expiration_model: expiration.as_deref().and_then(ExpirationModel::parse),
        valid_to: r.get(17)?,
        imported_material_id: r.get(18)?,
    })
}

fn constraints_json(c: &GrantConstraints) -> String {
    let mut v = serde_json::Map::new();
    if let Some(s) = &c.subset {
        v.insert("EncryptionContextSubset".into(), serde_json::json!(s));
    }
    if let Some(e) = &c.equals {
        v.insert("EncryptionContextEquals".into(), serde_json::json!(e));
    }
    serde_json::Value::Object(v).to_string()
}

fn constraints_from_json(s: &str) -> Option<GrantConstraints> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let map = |field: &str| -> Option<BTreeMap<String, String>> { serde_json::from_value(v.get(field)?.clone()).ok() };
    Some(GrantConstraints { subset: map("EncryptionContextSubset"), equals: map("EncryptionContextEquals") })
}

fn grant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    let ops: String = r.get(6)?;
    let constraints: Option<String> = r.get(7)?;
    Ok(Grant {
        grant_id: r.get(0)?,
        key_id: r.get(1)?,
        name: r.get(2)?,
        created: r.get(3)?,
        grantee: r.get(4)?,
        retiring: r.get(5)?,
        operations: ops.split(',').filter_map(GrantOperation::parse).collect(),
        constraints: constraints.as_deref().and_then(constraints_from_json),
    })
}

/// A wrapped import wrapping key, as GetParametersForImport stored it.
pub(crate) struct ImportParameters {
    pub key_id: String,
    pub algorithm: WrappingAlgorithm,
    pub key_spec: WrappingKeySpec,
    pub wrapped_private_key: Vec<u8>,
    pub valid_to: i64,
}

/// One stored material version with what its wrapping AAD needs (for root key changes).
pub(crate) struct WrappedMaterial {
    pub key_id: String,
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
}

/// The store's queries over a connection or a transaction.
pub(crate) struct Db<'c>(pub &'c Connection);

impl Db<'_> {
    // ---- kms_meta ----

    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, KmsError> {
        Ok(self.0.query_row("SELECT value FROM kms_meta WHERE name = ?1", params![name], |r| r.get(0)).optional()?)
    }

    pub fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), KmsError> {
        self.0.execute(
            "INSERT INTO kms_meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![name, value],
        )?;
        Ok(())
    }

    // ---- keys ----

    pub fn key(&self, key_id: &str) -> Result<Option<KeyRecord>, KmsError> {
        Ok(self
            .0
            .query_row(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_id = ?1"), params![key_id], key_from_row)
            .optional()?)
    }

    pub fn key_by_alias(&self, alias: &str) -> Result<Option<KeyRecord>, KmsError> {
        Ok(self
            .0
            .query_row(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM keys WHERE key_id = (SELECT key_id FROM aliases WHERE alias_name = ?1)"
                ),
                params![alias],
                key_from_row,
            )
            .optional()?)
    }

    pub fn list_keys(&self) -> Result<Vec<KeyRecord>, KmsError> {
        let mut stmt =
            self.0.prepare(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE hidden = 0 ORDER BY created, key_id"))?;
        let rows = stmt.query_map([], key_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn insert_key(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        self.0.execute(
            &format!(
                "INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
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
                rec.policy,
                rec.key_spec.as_str(),
                rec.key_usage.as_str(),
                rec.origin.as_str(),
                rec.expiration_model.map(ExpirationModel::as_str),
                rec.valid_to,
                rec.imported_material_id,
            ],
        )?;
        Ok(())
    }

    /// Writes back everything about a key that can change (spec, usage and origin cannot).
    pub fn update_key(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        self.0.execute(
            "UPDATE keys SET description = ?2, state = ?3, deletion_date = ?4, pending_days = ?5, rotation_enabled = ?6,
                 rotation_period_days = ?7, next_rotation = ?8, on_demand_rotations = ?9, policy = ?10,
                 expiration_model = ?11, valid_to = ?12, imported_material_id = ?13 WHERE key_id = ?1",
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
                rec.policy,
                rec.expiration_model.map(ExpirationModel::as_str),
                rec.valid_to,
                rec.imported_material_id,
            ],
        )?;
        Ok(())
    }

    /// Enabled keys with automatic rotation whose next date has come.
    pub fn keys_due_for_rotation(&self, now: i64) -> Result<Vec<String>, KmsError> {
        self.ids(
            "SELECT key_id FROM keys WHERE state = 'Enabled' AND rotation_enabled = 1 AND next_rotation <= ?1",
            now,
        )
    }

    pub fn keys_past_deletion(&self, now: i64) -> Result<Vec<String>, KmsError> {
        self.ids("SELECT key_id FROM keys WHERE state = 'PendingDeletion' AND deletion_date <= ?1", now)
    }

    /// Keys whose imported material has reached its ValidTo and is still present.
    pub fn keys_with_expired_material(&self, now: i64) -> Result<Vec<String>, KmsError> {
        self.ids(
            "SELECT key_id FROM keys WHERE origin = 'EXTERNAL' AND valid_to <= ?1
                 AND EXISTS (SELECT 1 FROM key_material m WHERE m.key_id = keys.key_id)",
            now,
        )
    }

    fn ids(&self, sql: &str, now: i64) -> Result<Vec<String>, KmsError> {
        let mut stmt = self.0.prepare(sql)?;
        let rows = stmt.query_map(params![now], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes a key and everything that belongs to it: material, aliases, tags, grants,
    /// import parameters.
    pub fn delete_key(&self, key_id: &str) -> Result<(), KmsError> {
        for sql in [
            "DELETE FROM key_material WHERE key_id = ?1",
            "DELETE FROM aliases WHERE key_id = ?1",
            "DELETE FROM key_tags WHERE key_id = ?1",
            "DELETE FROM grants WHERE key_id = ?1",
            "DELETE FROM import_parameters WHERE key_id = ?1",
            "DELETE FROM keys WHERE key_id = ?1",
        ] {
            self.0.execute(sql, params![key_id])?;
        }
        Ok(())
    }

    /// Lets SQLite reuse (and, with secure_delete, overwrite) pages freed by deletions.
    pub fn checkpoint(&self) {
        let _ = self.0.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    // ---- key material ----

    pub fn next_material_version(&self, key_id: &str) -> Result<u32, KmsError> {
        Ok(self.0.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM key_material WHERE key_id = ?1",
            params![key_id],
            |r| r.get(0),
        )?)
    }

    pub fn insert_material(&self, key_id: &str, m: &MaterialInfo, wrapped: &[u8]) -> Result<(), KmsError> {
        self.0.execute(
            "INSERT INTO key_material (key_id, version, material_id, created, rotation_type, wrapped) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key_id, m.version, m.material_id, m.created, m.rotation_type, wrapped],
        )?;
        Ok(())
    }

    /// (wrapped bytes, material id) of one version.
    pub fn material(&self, key_id: &str, version: u32) -> Result<Option<(Vec<u8>, String)>, KmsError> {
        Ok(self
            .0
            .query_row(
                "SELECT wrapped, material_id FROM key_material WHERE key_id = ?1 AND version = ?2",
                params![key_id, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn newest_version(&self, key_id: &str) -> Result<Option<u32>, KmsError> {
        Ok(self
            .0
            .query_row("SELECT MAX(version) FROM key_material WHERE key_id = ?1", params![key_id], |r| r.get(0))?)
    }

    pub fn materials(&self, key_id: &str) -> Result<Vec<MaterialInfo>, KmsError> {
        let mut stmt = self.0.prepare(
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

    pub fn delete_materials(&self, key_id: &str) -> Result<(), KmsError> {
        self.0.execute("DELETE FROM key_material WHERE key_id = ?1", params![key_id])?;
        Ok(())
    }

    pub fn all_wrapped_materials(&self) -> Result<Vec<WrappedMaterial>, KmsError> {
        let mut stmt = self.0.prepare(
            "SELECT m.key_id, m.version, m.wrapped, k.key_spec, k.key_usage FROM key_material m JOIN keys k ON k.key_id = m.key_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(WrappedMaterial {
                key_id: r.get(0)?,
                version: r.get(1)?,
                wrapped: r.get(2)?,
                key_spec: parsed(r, 3, KeySpec::parse)?,
                key_usage: parsed(r, 4, KeyUsage::parse)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn set_wrapped_material(&self, key_id: &str, version: u32, wrapped: &[u8]) -> Result<(), KmsError> {
        self.0.execute(
            "UPDATE key_material SET wrapped = ?3 WHERE key_id = ?1 AND version = ?2",
            params![key_id, version, wrapped],
        )?;
        Ok(())
    }

    // ---- aliases ----

    pub fn alias_target(&self, alias: &str) -> Result<Option<String>, KmsError> {
        Ok(self
            .0
            .query_row("SELECT key_id FROM aliases WHERE alias_name = ?1", params![alias], |r| r.get(0))
            .optional()?)
    }

    /// false when the alias exists already.
    pub fn insert_alias(&self, alias: &str, key_id: &str, now: i64) -> Result<bool, KmsError> {
        Ok(self.0.execute(
            "INSERT INTO aliases (alias_name, key_id, created, updated) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (alias_name) DO NOTHING",
            params![alias, key_id, now],
        )? == 1)
    }

    /// false when the alias does not exist.
    pub fn repoint_alias(&self, alias: &str, key_id: &str, now: i64) -> Result<bool, KmsError> {
        Ok(self.0.execute(
            "UPDATE aliases SET key_id = ?2, updated = ?3 WHERE alias_name = ?1",
            params![alias, key_id, now],
        )? == 1)
    }

    pub fn delete_alias(&self, alias: &str) -> Result<bool, KmsError> {
        Ok(self.0.execute("DELETE FROM aliases WHERE alias_name = ?1", params![alias])? == 1)
    }

    /// (alias name, key id, created, updated), optionally for one key; internal aliases hidden.
    pub fn list_aliases(&self, key_id: Option<&str>) -> Result<Vec<(String, String, i64, i64)>, KmsError> {
        let mut stmt = self.0.prepare(
            "SELECT alias_name, key_id, created, updated FROM aliases WHERE (?1 IS NULL OR key_id = ?1) AND alias_name NOT LIKE 'alias/sealbox/internal/%' ORDER BY alias_name",
        )?;
        let rows = stmt.query_map(params![key_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    // ---- tags ----

    pub fn tags(&self, key_id: &str) -> Result<Vec<(String, String)>, KmsError> {
        let mut stmt = self.0.prepare("SELECT tag_key, tag_value FROM key_tags WHERE key_id = ?1 ORDER BY tag_key")?;
        let rows = stmt.query_map(params![key_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn put_tag(&self, key_id: &str, tag_key: &str, tag_value: &str) -> Result<(), KmsError> {
        self.0.execute(
            "INSERT OR REPLACE INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
            params![key_id, tag_key, tag_value],
        )?;
        Ok(())
    }

    pub fn delete_tag(&self, key_id: &str, tag_key: &str) -> Result<(), KmsError> {
        self.0.execute("DELETE FROM key_tags WHERE key_id = ?1 AND tag_key = ?2", params![key_id, tag_key])?;
        Ok(())
    }

    pub fn tag_count(&self, key_id: &str) -> Result<i64, KmsError> {
        Ok(self.0.query_row("SELECT COUNT(*) FROM key_tags WHERE key_id = ?1", params![key_id], |r| r.get(0))?)
    }

    // ---- grants ----

    pub fn insert_grant(&self, g: &Grant) -> Result<(), KmsError> {
        let ops: Vec<&str> = g.operations.iter().map(|o| o.as_str()).collect();
        self.0.execute(
            &format!("INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                g.grant_id,
                g.key_id,
                g.name,
                g.created,
                g.grantee,
                g.retiring,
                ops.join(","),
                g.constraints.as_ref().map(constraints_json)
            ],
        )?;
        Ok(())
    }

    pub fn grant(&self, grant_id: &str) -> Result<Option<Grant>, KmsError> {
        Ok(self
            .0
            .query_row(
                &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE grant_id = ?1"),
                params![grant_id],
                grant_from_row,
            )
            .optional()?)
    }

    /// Grants of a key, optionally only those of one grantee, oldest first.
    pub fn grants_of_key(&self, key_id: &str, grantee: Option<&str>) -> Result<Vec<Grant>, KmsError> {
        let mut stmt = self.0.prepare(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE key_id = ?1 AND (?2 IS NULL OR grantee = ?2) ORDER BY created, grant_id"
        ))?;
        let rows = stmt.query_map(params![key_id, grantee], grant_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn grants_retirable_by(&self, principal: &str) -> Result<Vec<Grant>, KmsError> {
        let mut stmt = self
            .0
            .prepare(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE retiring = ?1 ORDER BY created, grant_id"))?;
        let rows = stmt.query_map(params![principal], grant_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn grant_count(&self, key_id: &str) -> Result<i64, KmsError> {
        Ok(self.0.query_row("SELECT COUNT(*) FROM grants WHERE key_id = ?1", params![key_id], |r| r.get(0))?)
    }

    pub fn delete_grant(&self, grant_id: &str) -> Result<bool, KmsError> {
        Ok(self.0.execute("DELETE FROM grants WHERE grant_id = ?1", params![grant_id])? == 1)
    }

    // ---- import parameters ----

    pub fn insert_import_parameters(&self, token_id: &str, p: &ImportParameters) -> Result<(), KmsError> {
        self.0.execute(
            "INSERT INTO import_parameters (token_id, key_id, wrapping_algorithm, wrapping_key_spec, wrapped_private_key, valid_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![token_id, p.key_id, p.algorithm.as_str(), p.key_spec.as_str(), p.wrapped_private_key, p.valid_to],
        )?;
        Ok(())
    }

    pub fn import_parameters(&self, token_id: &str) -> Result<Option<ImportParameters>, KmsError> {
        Ok(self
            .0
            .query_row(
                "SELECT key_id, wrapping_algorithm, wrapping_key_spec, wrapped_private_key, valid_to FROM import_parameters WHERE token_id = ?1",
                params![token_id],
                |r| {
                    Ok(ImportParameters {
                        key_id: r.get(0)?,
                        algorithm: parsed(r, 1, WrappingAlgorithm::parse)?,
                        key_spec: parsed(r, 2, WrappingKeySpec::parse)?,
                        wrapped_private_key: r.get(3)?,
                        valid_to: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// (token id, key id, wrapped private key) of every stored wrapping key.
    pub fn all_import_parameters(&self) -> Result<Vec<(String, String, Vec<u8>)>, KmsError> {
        let mut stmt = self.0.prepare("SELECT token_id, key_id, wrapped_private_key FROM import_parameters")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn set_wrapped_import_key(&self, token_id: &str, wrapped: &[u8]) -> Result<(), KmsError> {
        self.0.execute(
            "UPDATE import_parameters SET wrapped_private_key = ?2 WHERE token_id = ?1",
            params![token_id, wrapped],
        )?;
        Ok(())
    }

    /// Wrapping keys past their 24 hours are useless: delete them.
    pub fn delete_expired_import_parameters(&self, now: i64) -> Result<usize, KmsError> {
        Ok(self.0.execute("DELETE FROM import_parameters WHERE valid_to < ?1", params![now])?)
    }
}
