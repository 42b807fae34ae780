//! The AWS KMS JSON protocol: `handle(operation, body)` -> (status, JSON). Field names, base64
//! blobs, epoch-number timestamps, ARNs in output `KeyId`s and `__type` errors as AWS (contract D).
//! This file holds the protocol (parsing, input checks, paging, authorisation requests) and the
//! dispatch; the operations live in `api/` by family: keys, crypto, grants, import.

mod crypto;
mod grants;
mod import;
mod keys;

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::kms::{Caller, KeyRecord, Kms};
use crate::spec::{AwsName, GrantOperation};
use crate::KmsError;

/// A JSON answer: HTTP status and body.
pub struct ApiReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One authorisation question: may the caller perform `action` (e.g. `kms:Decrypt`) on
/// `resource` (a key ARN, or `*` for account-level operations)?
pub struct AuthzRequest<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    /// The key, and so its key policy, when the operation names one.
    pub key: Option<&'a KeyRecord>,
    /// KMS condition keys of the request (`kms:EncryptionContext:<k>`, `kms:SigningAlgorithm`,
    /// `kms:GrantOperations`…), repeated for multi-valued keys.
    pub conditions: &'a [(String, String)],
    /// Whether a grant of the key allows this request. Grants only allow: an explicit Deny in
    /// the key policy or an IAM policy still refuses it (AWS's evaluation). A function, so the
    /// grant lookup (a store query) happens only when no policy allows the request already.
    pub grant_allows: &'a dyn Fn() -> Result<bool, KmsError>,
}

/// Decides an [`AuthzRequest`]. The server implements it with sealbox-policy (key policy, IAM
/// policies, grants); `Err` is usually `AccessDeniedException`.
pub type Authorize<'a> = &'a dyn Fn(&AuthzRequest<'_>) -> Result<(), KmsError>;

/// What a handled call did, for the audit trail.
#[derive(Debug, Default, Clone)]
pub struct CallSummary {
    /// ARN of the key the call used, if any.
    pub key_arn: Option<String>,
    /// Request parameters safe to log (no plaintext, ciphertext, message, signature or token).
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
        let mut ctx = Ctx { kms, req: &req, caller, authorize, key_arn: None };
        let out = dispatch(&mut ctx, operation);
        summary.key_arn = ctx.key_arn.take();
        out
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

/// Request fields the audit trail never records: secrets (plaintext, messages one signs or
/// MACs), bulky or bearer values (ciphertexts, signatures, MACs, wrapped key material, import
/// and grant tokens) and policies. CloudTrail omits the same.
const UNLOGGED_FIELDS: &[&str] = &[
    "Plaintext",
    "CiphertextBlob",
    "Policy",
    "Message",
    "Signature",
    "Mac",
    "EncryptedKeyMaterial",
    "ImportToken",
    "GrantTokens",
    "GrantToken",
];

fn loggable(req: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in req {
        if UNLOGGED_FIELDS.contains(&k.as_str()) {
            continue;
        }
        out.insert(lower_first(k), v.clone());
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

// ---- input fields ----

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

/// A timestamp (epoch seconds, fractions allowed), as botocore sends them.
fn opt_time(req: &Map<String, Value>, field: &str) -> Result<Option<i64>, KmsError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f.floor() as i64))
            .ok_or_else(|| KmsError::Serialization(format!("Expected a timestamp for {field}"))),
        Some(_) => Err(KmsError::Serialization(format!("Expected a timestamp for {field}"))),
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

/// A required blob within the model's bounds (e.g. 1..4096 for Plaintext and Message,
/// 1..6144 for ciphertexts and signatures).
fn bounded_blob(req: &Map<String, Value>, field: &str, max: usize) -> Result<Vec<u8>, KmsError> {
    let blob = req_blob(req, field)?;
    if blob.is_empty() || blob.len() > max {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length between 1 and {max}",
            lower_first(field)
        )));
    }
    Ok(blob)
}

fn string_map(v: &Value, field: &str) -> Result<BTreeMap<String, String>, KmsError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(KmsError::Serialization(format!("{field} values must be strings"))),
            })
            .collect(),
        _ => Err(KmsError::Serialization(format!("Expected a map for {field}"))),
    }
}

fn context(req: &Map<String, Value>, field: &str) -> Result<BTreeMap<String, String>, KmsError> {
    req.get(field).map_or(Ok(BTreeMap::new()), |v| string_map(v, field))
}

/// An enum field. `Ok(None)`: absent. `Ok(Some(Err(name)))`: a value AWS's model has but no
/// sealbox key supports (answered once the key is known, as AWS would for a mismatched key).
/// Anything else: ValidationException listing the values.
fn enum_field<T: AwsName>(
    req: &Map<String, Value>,
    field: &str,
    foreign: &'static [&'static str],
) -> Result<Option<Result<T, &'static str>>, KmsError> {
    let Some(s) = opt_str(req, field)? else { return Ok(None) };
    if let Some(v) = T::parse(s) {
        return Ok(Some(Ok(v)));
    }
    if let Some(f) = foreign.iter().find(|f| **f == s) {
        return Ok(Some(Err(f)));
    }
    let mut names: Vec<&str> = T::ALL.iter().map(|v| v.as_str()).collect();
    names.extend_from_slice(foreign);
    Err(KmsError::Validation(format!(
        "1 validation error detected: Value '{s}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        lower_first(field),
        names.join(", ")
    )))
}

/// An enum field whose foreign values are UnsupportedOperationException right away (key specs
/// and algorithms sealbox does not implement, independent of any key).
fn supported_enum<T: AwsName>(
    req: &Map<String, Value>,
    field: &str,
    unsupported: &'static [&'static str],
) -> Result<Option<T>, KmsError> {
    match enum_field::<T>(req, field, unsupported)? {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(name)) => Err(KmsError::UnsupportedOperation(format!("{field} {name} is not supported by sealbox."))),
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

/// `{"<list>": items, "Truncated": …, "NextMarker": …}`.
fn paged(list: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = json!({ list: items, "Truncated": next.is_some() });
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    out
}

/// `DryRun: true`: everything was checked (input, key state, permission); stop before acting.
fn stop_if_dry_run(req: &Map<String, Value>) -> Result<(), KmsError> {
    match opt_bool(req, "DryRun")? {
        Some(true) => Err(KmsError::DryRun),
        _ => Ok(()),
    }
}

/// `GrantTokens`: at most 10, each one sealbox issued (InvalidGrantTokenException otherwise).
/// Grants take effect at once here, so a valid token is accepted and never needed.
fn check_grant_tokens(req: &Map<String, Value>) -> Result<(), KmsError> {
    let Some(v) = req.get("GrantTokens") else { return Ok(()) };
    let tokens = match v {
        Value::Null => return Ok(()),
        Value::Array(a) => a,
        _ => return Err(KmsError::Serialization("Expected a list for GrantTokens".into())),
    };
    if tokens.len() > 10 {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10".into(),
        ));
    }
    for t in tokens {
        let t = t.as_str().ok_or_else(|| KmsError::Serialization("GrantTokens must be strings".into()))?;
        crate::grants::grant_id_of_token(t)?;
    }
    Ok(())
}

/// What an operation on a key asks of the policies and grants beyond the action itself.
#[derive(Default)]
struct Access<'a> {
    /// The request's encryption context (condition keys, grant constraints).
    context: Option<&'a BTreeMap<String, String>>,
    /// Extra condition keys (algorithms, grant parameters…).
    conditions: Vec<(String, String)>,
    /// Overrides the grant answer (CreateGrant, RetireGrant decide it themselves).
    grant_allows: Option<bool>,
}

impl<'a> Access<'a> {
    fn with_context(context: &'a BTreeMap<String, String>) -> Self {
        Access { context: Some(context), ..Default::default() }
    }

    fn condition(mut self, key: &str, value: impl Into<String>) -> Self {
        self.conditions.push((key.to_owned(), value.into()));
        self
    }
}

/// One call: the store, the request, who is calling and how to authorise them.
struct Ctx<'a> {
    kms: &'a Kms,
    req: &'a Map<String, Value>,
    caller: &'a Caller,
    authorize: Authorize<'a>,
    /// The key the call used, for the audit record.
    key_arn: Option<String>,
}

impl Ctx<'_> {
    /// Resolves `field` to a key (aliases only where the operation takes them) and records it.
    fn key(&mut self, field: &str, allow_alias: bool) -> Result<KeyRecord, KmsError> {
        let rec = self.kms.resolve(req_str(self.req, field)?, allow_alias)?;
        self.key_arn = Some(self.kms.key_arn(&rec.key_id));
        Ok(rec)
    }

    /// Authorises `action` on `rec`: key policy, IAM policies, and the key's grants.
    fn allow(&self, rec: &KeyRecord, action: &str, access: Access<'_>) -> Result<(), KmsError> {
        let (decided, context) = (access.grant_allows, access.context);
        let operation = action.strip_prefix("kms:").and_then(GrantOperation::parse);
        let grant_allows = || match (decided, operation) {
            (Some(g), _) => Ok(g),
            (None, Some(op)) => self.kms.grant_allows(&self.caller.principal_arn, rec, op, context),
            (None, None) => Ok(false),
        };
        let mut conditions = vec![
            ("kms:KeySpec".to_owned(), rec.key_spec.to_string()),
            ("kms:KeyUsage".to_owned(), rec.key_usage.to_string()),
            ("kms:KeyOrigin".to_owned(), rec.origin.to_string()),
        ];
        if let Some(ctx) = access.context {
            for (k, v) in ctx {
                conditions.push((format!("kms:EncryptionContext:{k}"), v.clone()));
                conditions.push(("kms:EncryptionContextKeys".to_owned(), k.clone()));
            }
        }
        conditions.extend(access.conditions);
        let arn = self.kms.key_arn(&rec.key_id);
        (self.authorize)(&AuthzRequest {
            action,
            resource: &arn,
            key: Some(rec),
            conditions: &conditions,
            grant_allows: &grant_allows,
        })
    }

    /// Authorises an account-level action (no key): IAM policies decide.
    fn allow_account(&self, action: &str, resource: &str, conditions: &[(String, String)]) -> Result<(), KmsError> {
        (self.authorize)(&AuthzRequest { action, resource, key: None, conditions, grant_allows: &|| Ok(false) })
    }

    /// Resolves `field` and authorises `action` on it.
    fn target(
        &mut self,
        field: &str,
        allow_alias: bool,
        action: &str,
        access: Access<'_>,
    ) -> Result<KeyRecord, KmsError> {
        let rec = self.key(field, allow_alias)?;
        self.allow(&rec, action, access)?;
        Ok(rec)
    }
}

fn dispatch(ctx: &mut Ctx<'_>, op: &str) -> Result<Value, KmsError> {
    check_grant_tokens(ctx.req)?;
    match op {
        "CreateKey" => keys::create_key(ctx),
        "DescribeKey" => keys::describe_key(ctx),
        "ListKeys" => keys::list_keys(ctx),
        "CreateAlias" | "UpdateAlias" => keys::create_or_update_alias(ctx, op),
        "DeleteAlias" => keys::delete_alias(ctx),
        "ListAliases" => keys::list_aliases(ctx),
        "EnableKey" | "DisableKey" => keys::enable_or_disable(ctx, op),
        "ScheduleKeyDeletion" => keys::schedule_deletion(ctx),
        "CancelKeyDeletion" => keys::cancel_deletion(ctx),
        "EnableKeyRotation" | "DisableKeyRotation" => keys::set_rotation(ctx, op),
        "GetKeyRotationStatus" => keys::rotation_status(ctx),
        "RotateKeyOnDemand" => keys::rotate_on_demand(ctx),
        "ListKeyRotations" => keys::list_rotations(ctx),
        "GetKeyPolicy" => keys::get_policy(ctx),
        "PutKeyPolicy" => keys::put_policy(ctx),
        "ListKeyPolicies" => keys::list_policies(ctx),
        "TagResource" => keys::tag(ctx),
        "UntagResource" => keys::untag(ctx),
        "ListResourceTags" => keys::list_tags(ctx),
        "UpdateKeyDescription" => keys::update_description(ctx),
        "Encrypt" => crypto::encrypt(ctx),
        "Decrypt" => crypto::decrypt(ctx),
        "ReEncrypt" => crypto::re_encrypt(ctx),
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => crypto::generate_data_key(ctx, op),
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => crypto::generate_data_key_pair(ctx, op),
        "GenerateRandom" => crypto::generate_random(ctx),
        "Sign" => crypto::sign(ctx),
        "Verify" => crypto::verify(ctx),
        "GenerateMac" => crypto::generate_mac(ctx),
        "VerifyMac" => crypto::verify_mac(ctx),
        "GetPublicKey" => crypto::get_public_key(ctx),
        "CreateGrant" => grants::create_grant(ctx),
        "ListGrants" => grants::list_grants(ctx),
        "ListRetirableGrants" => grants::list_retirable_grants(ctx),
        "RetireGrant" => grants::retire_grant(ctx),
        "RevokeGrant" => grants::revoke_grant(ctx),
        "GetParametersForImport" => import::get_parameters_for_import(ctx),
        "ImportKeyMaterial" => import::import_key_material(ctx),
        "DeleteImportedKeyMaterial" => import::delete_imported_key_material(ctx),
        "CreateCustomKeyStore"
        | "ConnectCustomKeyStore"
        | "DeleteCustomKeyStore"
        | "DescribeCustomKeyStores"
        | "DisconnectCustomKeyStore"
        | "UpdateCustomKeyStore"
        | "ReplicateKey"
        | "UpdatePrimaryRegion"
        | "DeriveSharedSecret"
        | "GetKeyLastUsage" => Err(KmsError::UnsupportedOperation(format!(
            "{op} is not supported by sealbox (no custom key stores, multi-Region keys or key agreement keys)."
        ))),
        _ => Err(KmsError::UnknownOperation(format!("Unknown operation {op}"))),
    }
}
