//! Imported key material (Origin EXTERNAL): GetParametersForImport, ImportKeyMaterial,
//! DeleteImportedKeyMaterial, and expiry at ValidTo. Imported material is stored exactly like
//! generated material (wrapped by the root key, same AAD), as version 1; deleting or expiring it
//! removes the row, and only the same material (same material id) may be imported again, so
//! every blob made before the deletion opens again after the re-import.

use uuid::Uuid;

use super::{KeyRecord, Kms};
use crate::import;
use crate::spec::{ExpirationModel, Origin, WrappingAlgorithm, WrappingKeySpec};
use crate::store::{Db, ImportParameters};
use crate::KmsError;

/// What GetParametersForImport returns.
pub struct ImportParametersOut {
    pub import_token: Vec<u8>,
    /// DER SubjectPublicKeyInfo of the RSA wrapping key.
    pub public_key: Vec<u8>,
    pub valid_to: i64,
}

impl Kms {
    fn require_external(&self, rec: &KeyRecord) -> Result<(), KmsError> {
        if rec.origin != Origin::External {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} origin is {} which is not valid for this operation.",
                self.key_arn(&rec.key_id),
                rec.origin
            )));
        }
        Ok(())
    }

    /// Imported material whose ValidTo has come (it is then deleted before anything uses it).
    pub(crate) fn material_expired(&self, rec: &KeyRecord) -> bool {
        rec.origin == Origin::External && rec.valid_to.is_some_and(|v| v <= self.now())
    }

    /// Deletes `key_id`'s imported material if it is (still) past its ValidTo: the key becomes
    /// PendingImport (unless pending deletion). Reported by the next expire_imported_material.
    pub(crate) fn expire_now(&self, key_id: &str) -> Result<KeyRecord, KmsError> {
        let (rec, expired) = self.modify_key(key_id, |db, k| {
            if !self.material_expired(k) {
                return Ok(false);
            }
            db.delete_materials(&k.key_id)?;
            if k.state != "PendingDeletion" {
                k.state = "PendingImport".into();
            }
            k.valid_to = None;
            Ok(true)
        })?;
        if expired {
            self.forget_material(key_id);
            self.unreported_expirations.lock().unwrap_or_else(|e| e.into_inner()).push(key_id.to_owned());
        }
        Ok(rec)
    }

    /// Deletes every imported material past its ValidTo (at start and every minute, like
    /// rotation) and returns the keys whose material expired since the last call, for the
    /// audit trail's `DeleteExpiredKeyMaterial` service events.
    pub fn expire_imported_material(&self) -> Result<Vec<String>, KmsError> {
        let due = Db(&self.conn()).keys_with_expired_material(self.now())?;
        for id in due {
            match self.expire_now(&id) {
                Ok(_) | Err(KmsError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(std::mem::take(&mut *self.unreported_expirations.lock().unwrap_or_else(|e| e.into_inner())))
    }

    /// GetParametersForImport: a fresh RSA wrapping key (its private half stored wrapped by the
    /// root key for 24 hours) and the import token naming it.
    pub fn parameters_for_import(
        &self,
        rec: &KeyRecord,
        algorithm: WrappingAlgorithm,
        key_spec: WrappingKeySpec,
    ) -> Result<ImportParametersOut, KmsError> {
        self.require_external(rec)?;
        self.require_not_pending(rec)?;
        import::algorithm_fits(rec.key_spec, algorithm)?;
        let (private, public_key) = crate::asym::generate_rsa_decryption_key(key_spec.bits())?;
        let token_id = crate::root::random::<16>()?;
        let token_hex = hex::encode(token_id);
        let wrapped = self.root().wrap(&private, &import::wrapping_key_aad(&token_hex, &rec.key_id))?;
        let valid_to = self.now() + import::PARAMETERS_VALID_SECS;
        let params = ImportParameters {
            key_id: rec.key_id.clone(),
            algorithm,
            key_spec,
            wrapped_private_key: wrapped,
            valid_to,
        };
        Db(&self.conn()).insert_import_parameters(&token_hex, &params)?;
        let uuid = Uuid::parse_str(&rec.key_id).map_err(|e| KmsError::Internal(e.to_string()))?;
        Ok(ImportParametersOut { import_token: import::encode_token(&uuid, &token_id), public_key, valid_to })
    }

    /// ImportKeyMaterial: unwraps, checks the material fits the key (and is the material
    /// imported before, if any), stores it wrapped by the root key, sets the expiration; a
    /// PendingImport key becomes Enabled. Returns the material id.
    pub fn import_key_material(
        &self,
        rec: &KeyRecord,
        token: &[u8],
        encrypted: &[u8],
        expiration: ExpirationModel,
        valid_to: Option<i64>,
    ) -> Result<String, KmsError> {
        self.require_external(rec)?;
        self.require_not_pending(rec)?;
        let (token_key, token_id) = import::decode_token(token)?;
        if token_key.to_string() != rec.key_id {
            return Err(import::invalid_token());
        }
        let params = Db(&self.conn()).import_parameters(&token_id)?.ok_or_else(import::invalid_token)?;
        if params.key_id != rec.key_id {
            return Err(import::invalid_token());
        }
        if params.valid_to < self.now() {
            return Err(KmsError::ExpiredImportToken(
                "The import token has expired: call GetParametersForImport again.".into(),
            ));
        }
        let wrapping =
            self.root().unwrap(&params.wrapped_private_key, &import::wrapping_key_aad(&token_id, &rec.key_id))?;
        let material = import::unwrap_material(&wrapping, params.key_spec.bits(), params.algorithm, encrypted)?;
        import::check_material(rec.key_spec, rec.key_usage, &material)?;
        let material_id = import::material_id(&rec.key_id, &material);
        self.modify_key(&rec.key_id, |db, k| {
            if k.imported_material_id.as_ref().is_some_and(|id| *id != material_id) {
                return Err(KmsError::IncorrectKeyMaterial(format!(
                    "{} accepts only the key material imported into it before.",
                    self.key_arn(&k.key_id)
                )));
            }
            self.require_not_pending(k)?;
            db.delete_materials(&k.key_id)?;
            self.store_material(db, k, &material, Some(material_id.clone()), None)?;
            k.imported_material_id = Some(material_id.clone());
            k.expiration_model = Some(expiration);
            k.valid_to = valid_to;
            if k.state == "PendingImport" {
                k.state = "Enabled".into();
            }
            Ok(())
        })?;
        self.forget_material(&rec.key_id);
        Ok(material_id)
    }

    /// DeleteImportedKeyMaterial: the material row goes (with secure_delete, its bytes too); the
    /// key becomes PendingImport unless pending deletion. Returns the deleted material's id.
    pub fn delete_imported_key_material(&self, rec: &KeyRecord) -> Result<Option<String>, KmsError> {
        self.require_external(rec)?;
        let (_, deleted) = self.modify_key(&rec.key_id, |db, k| {
            let had = db.newest_version(&k.key_id)?.is_some();
            db.delete_materials(&k.key_id)?;
            if k.state != "PendingDeletion" {
                k.state = "PendingImport".into();
            }
            k.expiration_model = None;
            k.valid_to = None;
            Ok(had.then(|| k.imported_material_id.clone()).flatten())
        })?;
        self.forget_material(&rec.key_id);
        Db(&self.conn()).checkpoint();
        Ok(deleted)
    }
}
