//! Key management operations: create, describe, list, aliases, state changes, deletion,
//! rotation, policies, tags.

use serde_json::{json, Value};

use super::{missing, opt_bool, opt_int, opt_str, page, paged, req_str, supported_enum, Access, Ctx};
use crate::kms::{check_alias_name, epoch, KeyRecord, Kms, NewKey};
use crate::spec::{
    KeyFamily, KeySpec, KeyUsage, Origin, UNSUPPORTED_KEY_SPECS, UNSUPPORTED_KEY_USAGES, UNSUPPORTED_ORIGINS,
};
use crate::KmsError;

/// `KeyMetadata` as DescribeKey and CreateKey return it: algorithm lists only for the key's
/// usage, material id only for symmetric keys, expiration only for imported keys.
pub(super) fn key_metadata(kms: &Kms, k: &KeyRecord) -> Value {
    let mut m = json!({
        "AWSAccountId": kms.config.account_id,
        "KeyId": k.key_id,
        "Arn": kms.key_arn(&k.key_id),
        "CreationDate": epoch(k.created),
        "Enabled": k.state == "Enabled",
        "Description": k.description,
        "KeyUsage": k.key_usage.as_str(),
        "KeyState": k.state,
        "Origin": k.origin.as_str(),
        "KeyManager": k.key_manager,
        "CustomerMasterKeySpec": k.key_spec.as_str(),
        "KeySpec": k.key_spec.as_str(),
        "MultiRegion": false,
    });
    let names = |v: Vec<&'static str>| json!(v);
    match k.key_usage {
        KeyUsage::EncryptDecrypt => {
            m["EncryptionAlgorithms"] =
                names(k.key_spec.encryption_algorithms(k.key_usage).iter().map(|a| a.as_str()).collect())
        }
        KeyUsage::SignVerify => {
            m["SigningAlgorithms"] =
                names(k.key_spec.signing_algorithms(k.key_usage).iter().map(|a| a.as_str()).collect())
        }
        KeyUsage::GenerateVerifyMac => {
            m["MacAlgorithms"] = names(k.key_spec.mac_algorithms().iter().map(|a| a.as_str()).collect())
        }
    }
    if k.key_spec == KeySpec::SymmetricDefault {
        if let Some(last) = kms.materials(&k.key_id).ok().and_then(|mats| mats.last().cloned()) {
            m["CurrentKeyMaterialId"] = json!(last.material_id);
        }
    }
    if k.origin == Origin::External {
        if let Some(e) = k.expiration_model {
            m["ExpirationModel"] = json!(e.as_str());
        }
        if let Some(v) = k.valid_to {
            m["ValidTo"] = json!(epoch(v));
        }
    }
    if let Some(d) = k.deletion_date {
        m["DeletionDate"] = json!(epoch(d));
        m["PendingDeletionWindowInDays"] = json!(k.pending_days);
    }
    m
}

fn tags_in(ctx: &Ctx<'_>) -> Result<Vec<(String, String)>, KmsError> {
    let Some(v) = ctx.req.get("Tags") else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or_else(|| KmsError::Serialization("Tags must be a list".into()))?;
    arr.iter()
        .map(|t| {
            let k = t
                .get("TagKey")
                .and_then(Value::as_str)
                .ok_or_else(|| KmsError::Tag("Each tag needs a TagKey".into()))?;
            let v = t
                .get("TagValue")
                .and_then(Value::as_str)
                .ok_or_else(|| KmsError::Tag("Each tag needs a TagValue".into()))?;
            if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
                return Err(KmsError::Tag(format!("Tag {k} is not valid: keys are 1-128 and values 0-256 characters")));
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn check_policy(policy: &str) -> Result<(), KmsError> {
    if policy.len() > 32 * 1024 {
        return Err(KmsError::LimitExceeded("Key policies must be at most 32 KB".into()));
    }
    sealbox_policy::PolicyDocument::parse_for(policy, sealbox_policy::PolicyKind::Resource)
        .map(|_| ())
        .map_err(|e| KmsError::MalformedPolicyDocument(e.to_string()))
}

/// KeySpec (or the deprecated CustomerMasterKeySpec), KeyUsage and Origin of CreateKey, checked
/// against each other as AWS does.
fn new_key(ctx: &Ctx<'_>) -> Result<NewKey, KmsError> {
    let spec = match supported_enum::<KeySpec>(ctx.req, "KeySpec", UNSUPPORTED_KEY_SPECS)? {
        Some(s) => Some(s),
        None => supported_enum::<KeySpec>(ctx.req, "CustomerMasterKeySpec", UNSUPPORTED_KEY_SPECS)?,
    }
    .unwrap_or(KeySpec::SymmetricDefault);
    let usage = match supported_enum::<KeyUsage>(ctx.req, "KeyUsage", UNSUPPORTED_KEY_USAGES)? {
        Some(u) => u,
        None if spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
        None => {
            return Err(KmsError::Validation(format!(
                "You must specify a KeyUsage value for a {spec} KMS key: one of {}.",
                spec.usages().iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    };
    if !spec.usages().contains(&usage) {
        return Err(KmsError::Validation(format!("KeyUsage {usage} is not compatible with KeySpec {spec}")));
    }
    let origin = supported_enum::<Origin>(ctx.req, "Origin", UNSUPPORTED_ORIGINS)?.unwrap_or(Origin::AwsKms);
    Ok(NewKey { key_spec: spec, key_usage: usage, origin })
}

pub(super) fn create_key(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let new = new_key(ctx)?;
    let conditions = [
        ("kms:KeySpec".to_owned(), new.key_spec.to_string()),
        ("kms:KeyUsage".to_owned(), new.key_usage.to_string()),
        ("kms:KeyOrigin".to_owned(), new.origin.to_string()),
    ];
    ctx.allow_account("kms:CreateKey", "*", &conditions)?;
    if opt_bool(ctx.req, "MultiRegion")? == Some(true) {
        return Err(KmsError::UnsupportedOperation("Multi-Region keys are not supported.".into()));
    }
    if opt_str(ctx.req, "CustomKeyStoreId")?.is_some() || opt_str(ctx.req, "XksKeyId")?.is_some() {
        return Err(KmsError::UnsupportedOperation("Custom key stores are not supported.".into()));
    }
    let description = opt_str(ctx.req, "Description")?.unwrap_or("");
    if description.len() > 8192 {
        return Err(KmsError::Validation("Description must be at most 8192 characters".into()));
    }
    let policy = opt_str(ctx.req, "Policy")?;
    if let Some(p) = policy {
        check_policy(p)?;
    }
    let tags = tags_in(ctx)?;
    let rec = ctx.kms.create_key_with(new, description, policy, &tags)?;
    ctx.key_arn = Some(ctx.kms.key_arn(&rec.key_id));
    Ok(json!({"KeyMetadata": key_metadata(ctx.kms, &rec)}))
}

pub(super) fn describe_key(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", true, "kms:DescribeKey", Access::default())?;
    Ok(json!({"KeyMetadata": key_metadata(ctx.kms, &rec)}))
}

pub(super) fn list_keys(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    ctx.allow_account("kms:ListKeys", "*", &[])?;
    // Sorted as the store lists them: by creation date, then id.
    let keys: Vec<(String, Value)> = ctx
        .kms
        .list_keys()?
        .iter()
        .map(|k| {
            let sort_key = format!("{:020}/{}", k.created.max(0), k.key_id);
            (sort_key, json!({"KeyId": k.key_id, "KeyArn": ctx.kms.key_arn(&k.key_id)}))
        })
        .collect();
    let (items, next) = page(keys, ctx.req, 1000, 100)?;
    Ok(paged("Keys", items, next))
}

pub(super) fn create_or_update_alias(ctx: &mut Ctx<'_>, op: &str) -> Result<Value, KmsError> {
    let alias = req_str(ctx.req, "AliasName")?;
    check_alias_name(alias)?;
    let rec = ctx.target("TargetKeyId", false, &format!("kms:{op}"), Access::default())?;
    if rec.key_manager == "AWS" {
        return Err(KmsError::UnsupportedOperation("Aliases cannot point at AWS managed keys.".into()));
    }
    if op == "CreateAlias" {
        ctx.kms.create_alias(alias, &rec)?;
    } else {
        ctx.kms.update_alias(alias, &rec)?;
    }
    Ok(json!({}))
}

pub(super) fn delete_alias(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let alias = req_str(ctx.req, "AliasName")?;
    ctx.allow_account("kms:DeleteAlias", &ctx.kms.alias_arn(alias), &[])?;
    ctx.kms.delete_alias(alias)?;
    Ok(json!({}))
}

pub(super) fn list_aliases(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    ctx.allow_account("kms:ListAliases", "*", &[])?;
    let key_id = match opt_str(ctx.req, "KeyId")? {
        Some(k) => Some(ctx.kms.resolve(k, false)?.key_id),
        None => None,
    };
    // The AWS-managed alias is listed once it exists, as in AWS.
    let aliases: Vec<(String, Value)> = ctx
        .kms
        .list_aliases(key_id.as_deref())?
        .into_iter()
        .map(|(name, id, created, updated)| {
            let v = json!({"AliasName": name, "AliasArn": ctx.kms.alias_arn(&name), "TargetKeyId": id,
                   "CreationDate": epoch(created), "LastUpdatedDate": epoch(updated)});
            (name, v)
        })
        .collect();
    let (items, next) = page(aliases, ctx.req, 100, 50)?;
    Ok(paged("Aliases", items, next))
}

pub(super) fn enable_or_disable(ctx: &mut Ctx<'_>, op: &str) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, &format!("kms:{op}"), Access::default())?;
    if op == "EnableKey" {
        ctx.kms.enable_key(&rec)?;
    } else {
        ctx.kms.disable_key(&rec)?;
    }
    Ok(json!({}))
}

pub(super) fn schedule_deletion(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:ScheduleKeyDeletion", Access::default())?;
    let days = opt_int(ctx.req, "PendingWindowInDays")?.unwrap_or(30);
    let rec = ctx.kms.schedule_deletion(&rec, days)?;
    Ok(json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "DeletionDate": rec.deletion_date.map(epoch),
              "KeyState": rec.state, "PendingWindowInDays": rec.pending_days}))
}

pub(super) fn cancel_deletion(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:CancelKeyDeletion", Access::default())?;
    let rec = ctx.kms.cancel_deletion(&rec)?;
    Ok(json!({"KeyId": ctx.kms.key_arn(&rec.key_id)}))
}

pub(super) fn set_rotation(ctx: &mut Ctx<'_>, op: &str) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, &format!("kms:{op}"), Access::default())?;
    ctx.kms.set_rotation(&rec, op == "EnableKeyRotation", opt_int(ctx.req, "RotationPeriodInDays")?)?;
    Ok(json!({}))
}

pub(super) fn rotation_status(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:GetKeyRotationStatus", Access::default())?;
    let (enabled, period, next) = ctx.kms.rotation_status(&rec)?;
    let mut out = json!({"KeyRotationEnabled": enabled, "KeyId": ctx.kms.key_arn(&rec.key_id)});
    if enabled {
        out["RotationPeriodInDays"] = json!(period);
        if let Some(n) = next {
            out["NextRotationDate"] = json!(epoch(n));
        }
    }
    Ok(out)
}

pub(super) fn rotate_on_demand(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:RotateKeyOnDemand", Access::default())?;
    ctx.kms.rotate_on_demand(&rec)?;
    Ok(json!({"KeyId": ctx.kms.key_arn(&rec.key_id)}))
}

pub(super) fn list_rotations(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:ListKeyRotations", Access::default())?;
    if rec.key_spec.family() != KeyFamily::Symmetric {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is a {} key: only symmetric encryption keys have key material rotations.",
            ctx.kms.key_arn(&rec.key_id),
            rec.key_spec
        )));
    }
    let all = opt_str(ctx.req, "IncludeKeyMaterial")? == Some("ALL_KEY_MATERIAL");
    let mats = ctx.kms.materials(&rec.key_id)?;
    let newest = mats.last().map(|m| m.version);
    let rows: Vec<(String, Value)> = mats
        .iter()
        .filter(|m| all || m.rotation_type.is_some())
        .map(|m| {
            let mut r = json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "KeyMaterialId": m.material_id,
                               "KeyMaterialState": if Some(m.version) == newest { "CURRENT" } else { "NON_CURRENT" }});
            if let Some(t) = &m.rotation_type {
                r["RotationDate"] = json!(epoch(m.created));
                r["RotationType"] = json!(t);
            }
            if rec.origin == Origin::External {
                r["ImportState"] = json!("IMPORTED");
                if let Some(e) = rec.expiration_model {
                    r["ExpirationModel"] = json!(e.as_str());
                }
                if let Some(v) = rec.valid_to {
                    r["ValidTo"] = json!(epoch(v));
                }
            }
            (format!("{:010}", m.version), r)
        })
        .collect();
    let (items, next) = page(rows, ctx.req, 1000, 100)?;
    Ok(paged("Rotations", items, next))
}

pub(super) fn get_policy(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:GetKeyPolicy", Access::default())?;
    if let Some(n) = opt_str(ctx.req, "PolicyName")? {
        if n != "default" {
            return Err(KmsError::NotFound(format!("No such policy: {n}")));
        }
    }
    Ok(json!({"Policy": rec.policy, "PolicyName": "default"}))
}

pub(super) fn put_policy(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:PutKeyPolicy", Access::default())?;
    if let Some(n) = opt_str(ctx.req, "PolicyName")? {
        if n != "default" {
            return Err(KmsError::Validation("PolicyName must be 'default'".into()));
        }
    }
    let policy = req_str(ctx.req, "Policy")?;
    check_policy(policy)?;
    ctx.kms.set_policy(&rec, policy)?;
    Ok(json!({}))
}

pub(super) fn list_policies(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    ctx.target("KeyId", false, "kms:ListKeyPolicies", Access::default())?;
    Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
}

pub(super) fn tag(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:TagResource", Access::default())?;
    if ctx.req.get("Tags").is_none() {
        return Err(missing("Tags"));
    }
    ctx.kms.tag(&rec, &tags_in(ctx)?)?;
    Ok(json!({}))
}

pub(super) fn untag(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:UntagResource", Access::default())?;
    let keys: Vec<String> = ctx
        .req
        .get("TagKeys")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("TagKeys"))?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    ctx.kms.untag(&rec, &keys)?;
    Ok(json!({}))
}

pub(super) fn list_tags(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:ListResourceTags", Access::default())?;
    let tags: Vec<(String, Value)> = ctx
        .kms
        .tags(&rec.key_id)?
        .into_iter()
        .map(|(k, v)| {
            let tag = json!({"TagKey": k, "TagValue": v});
            (k, tag)
        })
        .collect();
    let (items, next) = page(tags, ctx.req, 50, 50)?;
    Ok(paged("Tags", items, next))
}

pub(super) fn update_description(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", false, "kms:UpdateKeyDescription", Access::default())?;
    let d = opt_str(ctx.req, "Description")?.ok_or_else(|| missing("Description"))?;
    ctx.kms.set_description(&rec, d)?;
    Ok(json!({}))
}
