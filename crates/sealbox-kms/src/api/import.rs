//! Imported key material: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::{bounded_blob, missing, opt_str, opt_time, supported_enum, Access, Ctx};
use crate::kms::epoch;
use crate::spec::{
    ExpirationModel, WrappingAlgorithm, WrappingKeySpec, UNSUPPORTED_WRAPPING_ALGORITHMS,
    UNSUPPORTED_WRAPPING_KEY_SPECS,
};
use crate::KmsError;

pub(super) fn get_parameters_for_import(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let algorithm = supported_enum::<WrappingAlgorithm>(ctx.req, "WrappingAlgorithm", UNSUPPORTED_WRAPPING_ALGORITHMS)?
        .ok_or_else(|| missing("WrappingAlgorithm"))?;
    let key_spec = supported_enum::<WrappingKeySpec>(ctx.req, "WrappingKeySpec", UNSUPPORTED_WRAPPING_KEY_SPECS)?
        .ok_or_else(|| missing("WrappingKeySpec"))?;
    let access = Access::default()
        .condition("kms:WrappingAlgorithm", algorithm.as_str())
        .condition("kms:WrappingKeySpec", key_spec.as_str());
    let rec = ctx.target("KeyId", false, "kms:GetParametersForImport", access)?;
    let p = ctx.kms.parameters_for_import(&rec, algorithm, key_spec)?;
    Ok(json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "ImportToken": B64.encode(&p.import_token),
              "PublicKey": B64.encode(&p.public_key), "ParametersValidTo": epoch(p.valid_to)}))
}

pub(super) fn import_key_material(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let token = bounded_blob(ctx.req, "ImportToken", 6144)?;
    let encrypted = bounded_blob(ctx.req, "EncryptedKeyMaterial", 6144)?;
    // AWS: "The default is KEY_MATERIAL_EXPIRES", which needs a ValidTo.
    let model = supported_enum::<ExpirationModel>(ctx.req, "ExpirationModel", &[])?
        .unwrap_or(ExpirationModel::KeyMaterialExpires);
    let valid_to = opt_time(ctx.req, "ValidTo")?;
    let now = ctx.kms.now();
    match (model, valid_to) {
        (ExpirationModel::KeyMaterialExpires, None) => {
            return Err(KmsError::Validation(
                "A ValidTo date must be set when the ExpirationModel is KEY_MATERIAL_EXPIRES.".into(),
            ))
        }
        (ExpirationModel::KeyMaterialDoesNotExpire, Some(_)) => {
            return Err(KmsError::Validation(
                "ValidTo must not be set when the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.".into(),
            ))
        }
        (_, Some(v)) if v <= now || v > now + crate::import::MAX_VALID_TO_SECS => {
            return Err(KmsError::Validation("ValidTo must be in the future and at most 365 days from now.".into()))
        }
        _ => {}
    }
    let mut access = Access::default().condition("kms:ExpirationModel", model.as_str());
    if let Some(v) = valid_to {
        access = access.condition("kms:ValidTo", v.to_string());
    }
    let rec = ctx.target("KeyId", false, "kms:ImportKeyMaterial", access)?;
    let import_type = opt_str(ctx.req, "ImportType")?;
    match import_type {
        None | Some("EXISTING_KEY_MATERIAL") => {}
        Some("NEW_KEY_MATERIAL") if rec.imported_material_id.is_none() => {}
        Some("NEW_KEY_MATERIAL") => {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} already has imported key material: sealbox keeps one imported key material per key (no rotation of imported material).",
                ctx.kms.key_arn(&rec.key_id)
            )))
        }
        Some(other) => {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'importType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]"
            )))
        }
    }
    // A KeyMaterialId names material imported before; the import then checks it is that material.
    if let Some(want) = opt_str(ctx.req, "KeyMaterialId")? {
        if rec.imported_material_id.as_deref() != Some(want) {
            return Err(KmsError::IncorrectKeyMaterial(format!(
                "{want} is not the key material of {}.",
                ctx.kms.key_arn(&rec.key_id)
            )));
        }
    }
    let material_id = ctx.kms.import_key_material(&rec, &token, &encrypted, model, valid_to)?;
    Ok(json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "KeyMaterialId": material_id}))
}

pub(super) fn delete_imported_key_material(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:DeleteImportedKeyMaterial", Access::default())?;
    if let Some(want) = opt_str(ctx.req, "KeyMaterialId")? {
        if rec.imported_material_id.as_deref() != Some(want) {
            return Err(KmsError::NotFound(format!(
                "Key material {want} is not associated with {}.",
                ctx.kms.key_arn(&rec.key_id)
            )));
        }
    }
    let deleted = ctx.kms.delete_imported_key_material(&rec)?;
    let mut out = json!({"KeyId": ctx.kms.key_arn(&rec.key_id)});
    if let Some(id) = deleted {
        out["KeyMaterialId"] = json!(id);
    }
    Ok(out)
}
