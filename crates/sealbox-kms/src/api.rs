//! The AWS KMS JSON protocol: `handle(operation, body)` -> (status, JSON). Field names, base64
//! blobs, epoch-number timestamps, ARNs in output `KeyId`s and `__type` errors as AWS (contract D).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::kms::{check_alias_name, epoch, Caller, KeyRecord, Kms};
use crate::KmsError;

/// A JSON answer: HTTP status and body.
pub struct ApiReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Decides whether the caller may perform `action` (e.g. `kms:Decrypt`) on `resource` (a key ARN,
/// or `*`), given the key (and so its key policy) when there is one. The server implements it
/// with sealbox-policy; `Err` is usually `AccessDeniedException`.
pub type Authorize<'a> = &'a dyn Fn(&str, &str, Option<&KeyRecord>) -> Result<(), KmsError>;

/// What a handled call did, for the audit trail.
#[derive(Debug, Default, Clone)]
pub struct CallSummary {
    /// ARN of the key the call used, if any.
    pub key_arn: Option<String>,
    /// Request parameters safe to log (no Plaintext, no CiphertextBlob).
    pub request_parameters: Value,
}

pub fn handle(
    kms: &Kms,
    operation: &str,
    body: &[u8],
    caller: &Caller,
    authorize: Authorize<'_>,
) -> (ApiReply, CallSummary) {
    let mut summary = CallSummary::default();
    let result = parse_body(body).and_then(|req| {
        summary.request_parameters = loggable(&req);
        dispatch(kms, operation, &req, caller, authorize, &mut summary)
    });
    let reply = match result {
        Ok(v) => ApiReply { status: 200, body: serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec()) },
        Err(e) => error_reply(&e),
    };
    (reply, summary)
}

pub fn error_reply(e: &KmsError) -> ApiReply {
    let body = json!({"__type": e.aws_type(), "message": e.to_string()});
    ApiReply { status: e.status(), body: serde_json::to_vec(&body).unwrap_or_default() }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, KmsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(KmsError::Serialization("Start of structure or map expected".into())),
        Err(e) => Err(KmsError::Serialization(format!("Could not parse the request body: {e}"))),
    }
}

/// Drops secrets and bulky blobs from what the audit trail records (CloudTrail does the same).
fn loggable(req: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in req {
        if matches!(k.as_str(), "Plaintext" | "CiphertextBlob" | "Policy") {
            continue;
        }
        let mut chars = k.chars();
        let lower = match chars.next() {
            Some(f) => f.to_lowercase().collect::<String>() + chars.as_str(),
            None => String::new(),
        };
        out.insert(lower, v.clone());
    }
    Value::Object(out)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn missing(field: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
        lower_first(field)
    ))
}

fn opt_str<'a>(req: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, KmsError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KmsError::Serialization(format!("Expected a string for {field}"))),
    }
}

fn req_str<'a>(req: &'a Map<String, Value>, field: &str) -> Result<&'a str, KmsError> {
    let s = opt_str(req, field)?.ok_or_else(|| missing(field))?;
    if s.is_empty() {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '' at '{}' failed to satisfy constraint: Member must have length greater than or equal to 1",
            lower_first(field)
        )));
    }
    Ok(s)
}

fn opt_int(req: &Map<String, Value>, field: &str) -> Result<Option<i64>, KmsError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| KmsError::Serialization(format!("Expected an integer for {field}")))
        }
        Some(_) => Err(KmsError::Serialization(format!("Expected an integer for {field}"))),
    }
}

fn opt_bool(req: &Map<String, Value>, field: &str) -> Result<Option<bool>, KmsError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(KmsError::Serialization(format!("Expected a boolean for {field}"))),
    }
}

fn req_blob(req: &Map<String, Value>, field: &str) -> Result<Vec<u8>, KmsError> {
    let s = opt_str(req, field)?.ok_or_else(|| missing(field))?;
    B64.decode(s).map_err(|_| KmsError::Serialization(format!("{field} is not valid base64")))
}

/// A `CiphertextBlob` within the model's bounds (1..6144 bytes).
fn ciphertext_blob(req: &Map<String, Value>) -> Result<Vec<u8>, KmsError> {
    let blob = req_blob(req, "CiphertextBlob")?;
    if blob.is_empty() || blob.len() > 6144 {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length between 1 and 6144".into(),
        ));
    }
    Ok(blob)
}

fn context(req: &Map<String, Value>, field: &str) -> Result<BTreeMap<String, String>, KmsError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(KmsError::Serialization(format!("{field} values must be strings"))),
            })
            .collect(),
        Some(_) => Err(KmsError::Serialization(format!("Expected a map for {field}"))),
    }
}

fn limit(req: &Map<String, Value>, max: i64, default: i64) -> Result<usize, KmsError> {
    match opt_int(req, "Limit")? {
        None => Ok(default as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

/// Pages a list sorted by a unique key. The marker is the (hex-encoded) sort key of the last
/// item returned, and the next page starts after it: so deleting items while paging (a "list
/// and delete every alias" loop) skips nothing, which an offset marker would.
fn page<T>(
    items: Vec<(String, T)>,
    req: &Map<String, Value>,
    max: i64,
    default: i64,
) -> Result<(Vec<T>, Option<String>), KmsError> {
    let lim = limit(req, max, default)?;
    let after = match opt_str(req, "Marker")? {
        None => None,
        Some(m) => Some(
            hex::decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| KmsError::InvalidMarker("The marker is invalid.".into()))?,
        ),
    };
    let mut rest = items.into_iter().filter(|(k, _)| after.as_ref().is_none_or(|a| k > a)).peekable();
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < lim {
        let Some((k, v)) = rest.next() else { break };
        last = Some(k);
        out.push(v);
    }
    let next = if rest.peek().is_some() { last.map(hex::encode) } else { None };
    Ok((out, next))
}

fn key_metadata(kms: &Kms, k: &KeyRecord) -> Value {
    let mut m = json!({
        "AWSAccountId": kms.config.account_id,
        "KeyId": k.key_id,
        "Arn": kms.key_arn(&k.key_id),
        "CreationDate": epoch(k.created),
        "Enabled": k.state == "Enabled",
        "Description": k.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": k.state,
        "Origin": "AWS_KMS",
        "KeyManager": k.key_manager,
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": false,
    });
    if let Ok(mats) = kms.materials(&k.key_id) {
        if let Some(last) = mats.last() {
            m["CurrentKeyMaterialId"] = json!(last.material_id);
        }
    }
    if let Some(d) = k.deletion_date {
        m["DeletionDate"] = json!(epoch(d));
        m["PendingDeletionWindowInDays"] = json!(k.pending_days);
    }
    m
}

fn tags_in(req: &Map<String, Value>) -> Result<Vec<(String, String)>, KmsError> {
    let Some(v) = req.get("Tags") else { return Ok(Vec::new()) };
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

/// Resolves `KeyId` and checks the caller may use it for `action`.
fn target(
    kms: &Kms,
    req: &Map<String, Value>,
    field: &str,
    allow_alias: bool,
    action: &str,
    authorize: Authorize<'_>,
    summary: &mut CallSummary,
) -> Result<KeyRecord, KmsError> {
    let key_ref = req_str(req, field)?;
    let rec = kms.resolve(key_ref, allow_alias)?;
    let arn = kms.key_arn(&rec.key_id);
    authorize(action, &arn, Some(&rec))?;
    summary.key_arn = Some(arn);
    Ok(rec)
}

fn data_key_len(req: &Map<String, Value>) -> Result<usize, KmsError> {
    match (opt_str(req, "KeySpec")?, opt_int(req, "NumberOfBytes")?) {
        (Some(_), Some(_)) => Err(KmsError::Validation("Please specify either number of bytes or key spec.".into())),
        (None, None) => Err(KmsError::Validation("Please specify either number of bytes or key spec.".into())),
        (Some("AES_256"), None) => Ok(32),
        (Some("AES_128"), None) => Ok(16),
        (Some(other), None) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
        ))),
        (None, Some(n)) if (1..=1024).contains(&n) => Ok(n as usize),
        (None, Some(n)) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"
        ))),
    }
}

/// `DryRun: true`: everything was checked (input, key state, permission); stop before acting.
fn stop_if_dry_run(req: &Map<String, Value>) -> Result<(), KmsError> {
    match opt_bool(req, "DryRun")? {
        Some(true) => Err(KmsError::DryRun),
        _ => Ok(()),
    }
}

fn check_algorithm(req: &Map<String, Value>, field: &str) -> Result<(), KmsError> {
    match opt_str(req, field)? {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        // A real algorithm, but for asymmetric keys: AWS answers InvalidKeyUsage.
        Some(alg @ ("RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "SM2PKE")) => Err(KmsError::InvalidKeyUsage(format!(
            "{alg} is not a supported encryption algorithm for a SYMMETRIC_DEFAULT key."
        ))),
        Some(other) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{other}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]",
            lower_first(field)
        ))),
    }
}

fn dispatch(
    kms: &Kms,
    op: &str,
    req: &Map<String, Value>,
    _caller: &Caller,
    authorize: Authorize<'_>,
    summary: &mut CallSummary,
) -> Result<Value, KmsError> {
    let action = format!("kms:{op}");
    match op {
        "CreateKey" => {
            authorize(&action, "*", None)?;
            if let Some(spec) = opt_str(req, "KeySpec")?.or(opt_str(req, "CustomerMasterKeySpec")?) {
                if spec != "SYMMETRIC_DEFAULT" {
                    return Err(KmsError::UnsupportedOperation(format!(
                        "KeySpec {spec} is not supported by sealbox: only SYMMETRIC_DEFAULT keys"
                    )));
                }
            }
            if let Some(u) = opt_str(req, "KeyUsage")? {
                if u != "ENCRYPT_DECRYPT" {
                    return Err(KmsError::UnsupportedOperation(format!(
                        "KeyUsage {u} is not supported: only ENCRYPT_DECRYPT"
                    )));
                }
            }
            if let Some(o) = opt_str(req, "Origin")? {
                if o != "AWS_KMS" {
                    return Err(KmsError::UnsupportedOperation(format!("Origin {o} is not supported: only AWS_KMS")));
                }
            }
            if opt_bool(req, "MultiRegion")? == Some(true) {
                return Err(KmsError::UnsupportedOperation("Multi-Region keys are not supported.".into()));
            }
            let description = opt_str(req, "Description")?.unwrap_or("");
            if description.len() > 8192 {
                return Err(KmsError::Validation("Description must be at most 8192 characters".into()));
            }
            let policy = opt_str(req, "Policy")?;
            if let Some(p) = policy {
                check_policy(p)?;
            }
            let tags = tags_in(req)?;
            let rec = kms.create_key(description, policy, &tags)?;
            summary.key_arn = Some(kms.key_arn(&rec.key_id));
            Ok(json!({"KeyMetadata": key_metadata(kms, &rec)}))
        }
        "DescribeKey" => {
            let rec = target(kms, req, "KeyId", true, &action, authorize, summary)?;
            Ok(json!({"KeyMetadata": key_metadata(kms, &rec)}))
        }
        "ListKeys" => {
            authorize(&action, "*", None)?;
            // Sorted as the store lists them: by creation date, then id.
            let keys: Vec<(String, Value)> = kms
                .list_keys()?
                .iter()
                .map(|k| {
                    let sort_key = format!("{:020}/{}", k.created.max(0), k.key_id);
                    (sort_key, json!({"KeyId": k.key_id, "KeyArn": kms.key_arn(&k.key_id)}))
                })
                .collect();
            let (items, next) = page(keys, req, 1000, 100)?;
            let mut out = json!({"Keys": items, "Truncated": next.is_some()});
            if let Some(n) = next {
                out["NextMarker"] = json!(n);
            }
            Ok(out)
        }
        "CreateAlias" | "UpdateAlias" => {
            let alias = req_str(req, "AliasName")?;
            check_alias_name(alias)?;
            let rec = target(kms, req, "TargetKeyId", false, &action, authorize, summary)?;
            if rec.key_manager == "AWS" {
                return Err(KmsError::UnsupportedOperation("Aliases cannot point at AWS managed keys.".into()));
            }
            if op == "CreateAlias" {
                kms.create_alias(alias, &rec)?;
            } else {
                kms.update_alias(alias, &rec)?;
            }
            Ok(json!({}))
        }
        "DeleteAlias" => {
            let alias = req_str(req, "AliasName")?;
            authorize(&action, &kms.alias_arn(alias), None)?;
            kms.delete_alias(alias)?;
            Ok(json!({}))
        }
        "ListAliases" => {
            authorize(&action, "*", None)?;
            let key_id = match opt_str(req, "KeyId")? {
                Some(k) => Some(kms.resolve(k, false)?.key_id),
                None => None,
            };
            // The AWS-managed alias is listed once it exists, as in AWS.
            let aliases: Vec<(String, Value)> = kms
                .list_aliases(key_id.as_deref())?
                .into_iter()
                .map(|(name, id, created, updated)| {
                    let v = json!({"AliasName": name, "AliasArn": kms.alias_arn(&name), "TargetKeyId": id,
                           "CreationDate": epoch(created), "LastUpdatedDate": epoch(updated)});
                    (name, v)
                })
                .collect();
            let (items, next) = page(aliases, req, 100, 50)?;
            let mut out = json!({"Aliases": items, "Truncated": next.is_some()});
            if let Some(n) = next {
                out["NextMarker"] = json!(n);
            }
            Ok(out)
        }
        "EnableKey" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            kms.enable_key(&rec)?;
            Ok(json!({}))
        }
        "DisableKey" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            kms.disable_key(&rec)?;
            Ok(json!({}))
        }
        "ScheduleKeyDeletion" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            let days = opt_int(req, "PendingWindowInDays")?.unwrap_or(30);
            let rec = kms.schedule_deletion(&rec, days)?;
            Ok(json!({"KeyId": kms.key_arn(&rec.key_id), "DeletionDate": rec.deletion_date.map(epoch),
                      "KeyState": rec.state, "PendingWindowInDays": rec.pending_days}))
        }
        "CancelKeyDeletion" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            let rec = kms.cancel_deletion(&rec)?;
            Ok(json!({"KeyId": kms.key_arn(&rec.key_id)}))
        }
        "EnableKeyRotation" | "DisableKeyRotation" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            kms.set_rotation(&rec, op == "EnableKeyRotation", opt_int(req, "RotationPeriodInDays")?)?;
            Ok(json!({}))
        }
        "GetKeyRotationStatus" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            let enabled = rec.rotation_enabled && rec.state != "PendingDeletion";
            let mut out = json!({"KeyRotationEnabled": enabled, "KeyId": kms.key_arn(&rec.key_id)});
            if enabled {
                out["RotationPeriodInDays"] = json!(rec.rotation_period_days);
                if let Some(n) = rec.next_rotation {
                    out["NextRotationDate"] = json!(epoch(n));
                }
            }
            Ok(out)
        }
        "RotateKeyOnDemand" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            kms.rotate_on_demand(&rec)?;
            Ok(json!({"KeyId": kms.key_arn(&rec.key_id)}))
        }
        "ListKeyRotations" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            let all = opt_str(req, "IncludeKeyMaterial")? == Some("ALL_KEY_MATERIAL");
            let mats = kms.materials(&rec.key_id)?;
            let newest = mats.last().map(|m| m.version);
            let rows: Vec<(String, Value)> = mats
                .iter()
                .filter(|m| all || m.rotation_type.is_some())
                .map(|m| {
                    let mut r = json!({"KeyId": kms.key_arn(&rec.key_id), "KeyMaterialId": m.material_id,
                                       "KeyMaterialState": if Some(m.version) == newest { "CURRENT" } else { "NON_CURRENT" }});
                    if let Some(t) = &m.rotation_type {
                        r["RotationDate"] = json!(epoch(m.created));
                        r["RotationType"] = json!(t);
                    }
                    (format!("{:010}", m.version), r)
                })
                .collect();
            let (items, next) = page(rows, req, 1000, 100)?;
            let mut out = json!({"Rotations": items, "Truncated": next.is_some()});
            if let Some(n) = next {
                out["NextMarker"] = json!(n);
            }
            Ok(out)
        }
        "Encrypt" => {
            check_algorithm(req, "EncryptionAlgorithm")?;
            let rec = target(kms, req, "KeyId", true, &action, authorize, summary)?;
            let plaintext = req_blob(req, "Plaintext")?;
            if plaintext.is_empty() || plaintext.len() > 4096 {
                return Err(KmsError::Validation("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096".into()));
            }
            let ctx = context(req, "EncryptionContext")?;
            kms.require_usable(&rec)?;
            stop_if_dry_run(req)?;
            let (blob, _) = kms.encrypt_with(&rec, &plaintext, &ctx)?;
            kms.stats.encrypt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(
                json!({"CiphertextBlob": B64.encode(blob), "KeyId": kms.key_arn(&rec.key_id), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
            )
        }
        "Decrypt" => {
            check_algorithm(req, "EncryptionAlgorithm")?;
            let blob = ciphertext_blob(req)?;
            let ctx = context(req, "EncryptionContext")?;
            let expected = match opt_str(req, "KeyId")? {
                Some(k) => Some(kms.resolve(k, true)?),
                None => None,
            };
            let (rec, d) = kms.decrypt_blob(&blob, &ctx, expected.as_ref())?;
            if rec.hidden {
                return Err(KmsError::InvalidCiphertext("The ciphertext is invalid.".into()));
            }
            authorize(&action, &d.key_arn, Some(&rec))?;
            summary.key_arn = Some(d.key_arn.clone());
            stop_if_dry_run(req)?;
            kms.stats.decrypt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(
                json!({"KeyId": d.key_arn, "Plaintext": B64.encode(&d.plaintext[..]), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                      "KeyMaterialId": d.material_id}),
            )
        }
        "ReEncrypt" => {
            check_algorithm(req, "SourceEncryptionAlgorithm")?;
            check_algorithm(req, "DestinationEncryptionAlgorithm")?;
            let blob = ciphertext_blob(req)?;
            let src_ctx = context(req, "SourceEncryptionContext")?;
            let dst_ctx = context(req, "DestinationEncryptionContext")?;
            let expected = match opt_str(req, "SourceKeyId")? {
                Some(k) => Some(kms.resolve(k, true)?),
                None => None,
            };
            let (src, d) = kms.decrypt_blob(&blob, &src_ctx, expected.as_ref())?;
            if src.hidden {
                return Err(KmsError::InvalidCiphertext("The ciphertext is invalid.".into()));
            }
            authorize("kms:ReEncryptFrom", &d.key_arn, Some(&src))?;
            let dst = kms.resolve(req_str(req, "DestinationKeyId")?, true)?;
            authorize("kms:ReEncryptTo", &kms.key_arn(&dst.key_id), Some(&dst))?;
            kms.require_usable(&dst)?;
            stop_if_dry_run(req)?;
            let (out, _) = kms.encrypt_with(&dst, &d.plaintext, &dst_ctx)?;
            summary.key_arn = Some(kms.key_arn(&dst.key_id));
            Ok(json!({"CiphertextBlob": B64.encode(out), "SourceKeyId": d.key_arn, "KeyId": kms.key_arn(&dst.key_id),
                      "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"}))
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            let rec = target(kms, req, "KeyId", true, &action, authorize, summary)?;
            let len = data_key_len(req)?;
            let ctx = context(req, "EncryptionContext")?;
            kms.require_usable(&rec)?;
            stop_if_dry_run(req)?;
            let g = kms.generate_data_key_with(&rec, len, &ctx)?;
            let mut out = json!({"CiphertextBlob": B64.encode(&g.ciphertext_blob), "KeyId": g.key_arn, "KeyMaterialId": g.material_id});
            if op == "GenerateDataKey" {
                out["Plaintext"] = json!(B64.encode(&g.plaintext[..]));
            }
            Ok(out)
        }
        "GenerateRandom" => {
            authorize(&action, "*", None)?;
            let n = opt_int(req, "NumberOfBytes")?.ok_or_else(|| missing("NumberOfBytes"))?;
            if !(1..=1024).contains(&n) {
                return Err(KmsError::Validation(format!("1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024")));
            }
            let mut b = vec![0u8; n as usize];
            aws_lc_rs::rand::fill(&mut b).map_err(|_| KmsError::Internal("randomness".into()))?;
            Ok(json!({"Plaintext": B64.encode(b)}))
        }
        "GetKeyPolicy" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            if let Some(n) = opt_str(req, "PolicyName")? {
                if n != "default" {
                    return Err(KmsError::NotFound(format!("No such policy: {n}")));
                }
            }
            Ok(json!({"Policy": rec.policy, "PolicyName": "default"}))
        }
        "PutKeyPolicy" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            if let Some(n) = opt_str(req, "PolicyName")? {
                if n != "default" {
                    return Err(KmsError::Validation("PolicyName must be 'default'".into()));
                }
            }
            let policy = req_str(req, "Policy")?;
            check_policy(policy)?;
            kms.set_policy(&rec, policy)?;
            Ok(json!({}))
        }
        "ListKeyPolicies" => {
            target(kms, req, "KeyId", false, &action, authorize, summary)?;
            Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
        }
        "TagResource" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            if req.get("Tags").is_none() {
                return Err(missing("Tags"));
            }
            kms.tag(&rec, &tags_in(req)?)?;
            Ok(json!({}))
        }
        "UntagResource" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            let keys: Vec<String> = req
                .get("TagKeys")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("TagKeys"))?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            kms.untag(&rec, &keys)?;
            Ok(json!({}))
        }
        "ListResourceTags" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            let tags: Vec<(String, Value)> = kms
                .tags(&rec.key_id)?
                .into_iter()
                .map(|(k, v)| {
                    let tag = json!({"TagKey": k, "TagValue": v});
                    (k, tag)
                })
                .collect();
            let (items, next) = page(tags, req, 50, 50)?;
            let mut out = json!({"Tags": items, "Truncated": next.is_some()});
            if let Some(n) = next {
                out["NextMarker"] = json!(n);
            }
            Ok(out)
        }
        "UpdateKeyDescription" => {
            let rec = target(kms, req, "KeyId", false, &action, authorize, summary)?;
            let d = opt_str(req, "Description")?.ok_or_else(|| missing("Description"))?;
            kms.set_description(&rec, d)?;
            Ok(json!({}))
        }
        "Sign"
        | "Verify"
        | "GenerateMac"
        | "VerifyMac"
        | "GetPublicKey"
        | "GenerateDataKeyPair"
        | "GenerateDataKeyPairWithoutPlaintext"
        | "ImportKeyMaterial"
        | "GetParametersForImport"
        | "DeleteImportedKeyMaterial"
        | "CreateCustomKeyStore"
        | "ReplicateKey"
        | "CreateGrant"
        | "ListGrants"
        | "RetireGrant"
        | "RevokeGrant"
        | "ListRetirableGrants"
        | "DeriveSharedSecret" => Err(KmsError::UnsupportedOperation(format!(
            "{op} is not supported by sealbox (symmetric keys only, no grants yet)."
        ))),
        _ => Err(KmsError::UnknownOperation(format!("Unknown operation {op}"))),
    }
}
