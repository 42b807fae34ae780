//! Grants on keys: creation (with AWS's idempotency by Name), lookup, retirement and revocation,
//! and whether a grant allows a request. Grants only ever allow: the server combines their
//! answer with key and IAM policies, where an explicit Deny still wins.

use std::collections::BTreeMap;

use super::{KeyRecord, Kms};
use crate::grants::{Grant, GrantConstraints};
use crate::spec::GrantOperation;
use crate::store::Db;
use crate::KmsError;

/// AWS's quota of grants per KMS key.
const MAX_GRANTS_PER_KEY: i64 = 50_000;

/// What CreateGrant asks for.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub grantee: String,
    pub retiring: Option<String>,
    pub operations: Vec<GrantOperation>,
    pub constraints: Option<GrantConstraints>,
    pub name: Option<String>,
}

impl Kms {
    /// CreateGrant on a usable key. With a `Name`, a retry with identical parameters returns the
    /// existing grant's id ("the original GrantId is returned without creating a new grant").
    pub fn create_grant(&self, rec: &KeyRecord, new: &NewGrant) -> Result<Grant, KmsError> {
        self.require_usable(rec)?;
        let now = self.now();
        let mut ops = new.operations.clone();
        ops.sort();
        ops.dedup();
        let conn = self.conn();
        let db = Db(&conn);
        if let Some(name) = &new.name {
            let same = db.grants_of_key(&rec.key_id, Some(&new.grantee))?.into_iter().find(|g| {
                let mut theirs = g.operations.clone();
                theirs.sort();
                g.name.as_deref() == Some(name)
                    && g.retiring == new.retiring
                    && theirs == ops
                    && g.constraints == new.constraints
            });
            if let Some(g) = same {
                return Ok(g);
            }
        }
        if db.grant_count(&rec.key_id)? >= MAX_GRANTS_PER_KEY {
            return Err(KmsError::LimitExceeded(format!(
                "{} already has {MAX_GRANTS_PER_KEY} grants.",
                self.key_arn(&rec.key_id)
            )));
        }
        let grant = Grant {
            grant_id: hex::encode(crate::root::random::<32>()?),
            key_id: rec.key_id.clone(),
            name: new.name.clone(),
            created: now,
            grantee: new.grantee.clone(),
            retiring: new.retiring.clone(),
            operations: ops,
            constraints: new.constraints.clone(),
        };
        db.insert_grant(&grant)?;
        Ok(grant)
    }

    pub fn grant(&self, grant_id: &str) -> Result<Option<Grant>, KmsError> {
        Db(&self.conn()).grant(grant_id)
    }

    pub fn grants_of_key(&self, key_id: &str, grantee: Option<&str>) -> Result<Vec<Grant>, KmsError> {
        Db(&self.conn()).grants_of_key(key_id, grantee)
    }

    pub fn grants_retirable_by(&self, principal: &str) -> Result<Vec<Grant>, KmsError> {
        Db(&self.conn()).grants_retirable_by(principal)
    }

    /// Retire or revoke: false when there was no such grant.
    pub fn delete_grant(&self, grant_id: &str) -> Result<bool, KmsError> {
        Db(&self.conn()).delete_grant(grant_id)
    }

    /// Whether a grant on `rec` lets `principal` perform `op` with `context` (for operations
    /// that have one).
    pub fn grant_allows(
        &self,
        principal: &str,
        rec: &KeyRecord,
        op: GrantOperation,
        context: Option<&BTreeMap<String, String>>,
    ) -> Result<bool, KmsError> {
        if principal.is_empty() {
            return Ok(false);
        }
        Ok(self.grants_of_key(&rec.key_id, Some(principal))?.iter().any(|g| g.allows(principal, op, context)))
    }

    /// Whether a grant on `rec` with CreateGrant lets `principal` create a grant for
    /// `operations` under `constraints` (equally or more restrictive than the parent).
    pub fn grant_allows_child(
        &self,
        principal: &str,
        rec: &KeyRecord,
        operations: &[GrantOperation],
        constraints: Option<&GrantConstraints>,
    ) -> Result<bool, KmsError> {
        if principal.is_empty() {
            return Ok(false);
        }
        Ok(self
            .grants_of_key(&rec.key_id, Some(principal))?
            .iter()
            .any(|g| g.allows_child(principal, operations, constraints)))
    }
}
