//! The XKS proxy API's JSON: request bodies in, response bodies out, exactly the spec's field
//! names (`requestMetadata`, `plaintext`, `additionalAuthenticatedData`, `ciphertextMetadata`,
//! `initializationVector`, `authenticationTag`, `ciphertextDataIntegrityValue`, ...), standard
//! Base64 with padding, and the spec's error names (`error.rs`). No HTTP, no SigV4.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::keys::{self, DecryptInput};
use super::{XksError, XksOperation};
use crate::kms::Kms;

/// Largest plaintext/ciphertext we accept (the spec requires at least 4300 bytes); beyond it,
/// UnsupportedOperationException as the spec prescribes for sizes above its minimums.
pub const MAX_DATA: usize = 16 << 10;
/// Largest AAD we accept (the spec requires at least 8192 bytes).
pub const MAX_AAD: usize = 16 << 10;
/// Longest `ciphertextMetadata` the spec allows.
const MAX_METADATA: usize = 20;
/// The only `encryptionAlgorithm` of v1.
const AES_GCM: &str = "AES_GCM";
/// The only `ciphertextDataIntegrityValueAlgorithm` of v1.
const SHA_256: &str = "SHA_256";

/// A response: HTTP status and JSON body.
#[derive(Debug, Clone)]
pub struct XksReply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The error, when `status` is not 200 (for the audit record and metrics).
    pub error: Option<XksError>,
}

impl XksReply {
    pub fn error(e: XksError) -> Self {
        XksReply { status: e.status(), body: e.body(), error: Some(e) }
    }

    fn ok(body: Value) -> Self {
        XksReply { status: 200, body: serde_json::to_vec(&body).unwrap_or_default(), error: None }
    }
}

/// What a handled call did, for the audit trail: nothing secret (no plaintext, ever).
#[derive(Debug, Clone, Default)]
pub struct XksCallSummary {
    /// `requestMetadata` exactly as sent (awsPrincipalArn, kmsKeyArn, kmsOperation,
    /// kmsRequestId, kmsViaService, awsSourceVpc(e), and whatever fields KMS adds later).
    pub request_metadata: Option<Map<String, Value>>,
    /// The other inputs worth recording: externalKeyId, encryptionAlgorithm, the CDIV algorithm,
    /// the AAD's length.
    pub request_parameters: Map<String, Value>,
    /// The sealbox key behind the `externalKeyId`.
    pub key_arn: Option<String>,
    /// The material version that sealed or opened the data.
    pub key_material_id: Option<String>,
    /// Outcome details safe to record (keyStatus, healthStatus).
    pub response_elements: Option<Value>,
}

impl XksCallSummary {
    /// `requestMetadata.<name>` when it is a string.
    pub fn metadata_str(&self, name: &str) -> Option<&str> {
        self.request_metadata.as_ref()?.get(name)?.as_str()
    }
}

/// Handles one authenticated call. `external_key_id` is the path's `{externalKeyId}` (None for
/// GetHealthStatus). Blocking (key store, root key): run it off the async threads.
pub fn handle(
    kms: &Kms,
    operation: XksOperation,
    external_key_id: Option<&str>,
    body: &[u8],
) -> (XksReply, XksCallSummary) {
    let mut summary = XksCallSummary::default();
    if let Some(id) = external_key_id {
        summary.request_parameters.insert("externalKeyId".into(), json!(id));
    }
    let result = parse_body(operation, body).and_then(|req| {
        summary.request_metadata = req.get("requestMetadata").and_then(Value::as_object).cloned();
        match (operation, external_key_id) {
            (XksOperation::GetHealthStatus, _) => Ok(health(kms, &mut summary)),
            (_, None) => Err(XksError::InvalidUriPath("The path names no external key.".into())),
            (op, Some(id)) => {
                require_metadata(op, &req)?;
                keyed(kms, op, id, &req, &mut summary)
            }
        }
    });
    let reply = match result {
        Ok(v) => XksReply::ok(v),
        Err(e) => XksReply::error(e),
    };
    (reply, summary)
}

fn parse_body(operation: XksOperation, body: &[u8]) -> Result<Map<String, Value>, XksError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        // GetHealthStatus may not answer ValidationException (spec table): a body it cannot read
        // does not stop a health check.
        _ if operation == XksOperation::GetHealthStatus => Ok(Map::new()),
        Ok(_) => Err(XksError::Validation("The request body must be a JSON object.".into())),
        Err(e) => Err(XksError::Validation(format!("The request body is not valid JSON: {e}"))),
    }
}

/// The REQUIRED `requestMetadata` fields of each keyed API must be strings (their contents are
/// opaque: the spec forbids validating kmsRequestId and tolerates unknown kmsOperations).
fn require_metadata(operation: XksOperation, req: &Map<String, Value>) -> Result<(), XksError> {
    let Some(metadata) = req.get("requestMetadata").and_then(Value::as_object) else {
        return Err(XksError::Validation("requestMetadata is required and must be an object.".into()));
    };
    let required: &[&str] = match operation {
        XksOperation::GetKeyMetadata => &["awsPrincipalArn", "kmsOperation", "kmsRequestId"],
        _ => &["awsPrincipalArn", "kmsKeyArn", "kmsOperation", "kmsRequestId"],
    };
    for name in required {
        if !metadata.get(*name).is_some_and(Value::is_string) {
            return Err(XksError::Validation(format!("requestMetadata.{name} is required and must be a string.")));
        }
    }
    Ok(())
}

fn optional_str<'a>(req: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, XksError> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(XksError::Validation(format!("{name} must be a string."))),
    }
}

fn required_str<'a>(req: &'a Map<String, Value>, name: &str) -> Result<&'a str, XksError> {
    optional_str(req, name)?.ok_or_else(|| XksError::Validation(format!("{name} is required.")))
}

/// Decodes a standard-Base64 field, refusing it beyond `max` decoded bytes.
fn base64_field(value: &str, name: &str, max: usize) -> Result<zeroize::Zeroizing<Vec<u8>>, XksError> {
    // Base64 of `max` bytes is at most 4 * ceil(max / 3) characters: refuse longer unread.
    if value.len() > max.div_ceil(3) * 4 {
        return Err(too_big(name, max));
    }
    let bytes = B64
        .decode(value)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| XksError::Validation(format!("{name} is not valid standard Base64.")))?;
    if bytes.len() > max {
        return Err(too_big(name, max));
    }
    Ok(bytes)
}

fn too_big(name: &str, max: usize) -> XksError {
    if name == "ciphertextMetadata" {
        return XksError::Validation(format!("{name} must not exceed {max} bytes."));
    }
    XksError::UnsupportedOperation(format!("{name} is larger than the {max} bytes this proxy supports."))
}

fn check_algorithm(req: &Map<String, Value>) -> Result<(), XksError> {
    let algorithm = required_str(req, "encryptionAlgorithm")?;
    if algorithm != AES_GCM {
        return Err(XksError::Validation(format!("encryptionAlgorithm must be {AES_GCM}, not '{algorithm}'.")));
    }
    Ok(())
}

fn keyed(
    kms: &Kms,
    operation: XksOperation,
    external_key_id: &str,
    req: &Map<String, Value>,
    summary: &mut XksCallSummary,
) -> Result<Value, XksError> {
    // Inputs are checked before the key is looked up, so a malformed call is a
    // ValidationException whichever key it names.
    let params = &mut summary.request_parameters;
    for name in ["encryptionAlgorithm", "ciphertextDataIntegrityValueAlgorithm"] {
        if let Some(v) = req.get(name) {
            params.insert(name.into(), v.clone());
        }
    }
    let aad = match operation {
        XksOperation::Encrypt | XksOperation::Decrypt => {
            check_algorithm(req)?;
            let aad = match optional_str(req, "additionalAuthenticatedData")? {
                Some(v) => base64_field(v, "additionalAuthenticatedData", MAX_AAD)?,
                None => zeroize::Zeroizing::new(Vec::new()),
            };
            params.insert("additionalAuthenticatedDataLength".into(), json!(aad.len()));
            aad
        }
        _ => zeroize::Zeroizing::new(Vec::new()),
    };
    match operation {
        XksOperation::Encrypt => {
            let plaintext = base64_field(required_str(req, "plaintext")?, "plaintext", MAX_DATA)?;
            let want_cdiv = match optional_str(req, "ciphertextDataIntegrityValueAlgorithm")? {
                None => false,
                Some(SHA_256) => true,
                Some(other) => {
                    return Err(XksError::Validation(format!(
                        "ciphertextDataIntegrityValueAlgorithm must be {SHA_256}, not '{other}'."
                    )))
                }
            };
            let rec = keys::xks_key(kms, external_key_id)?;
            summary.key_arn = Some(kms.key_arn(&rec.key_id));
            let out = keys::encrypt(kms, &rec, &plaintext, &aad, want_cdiv)?;
            summary.key_material_id = Some(out.material_id.clone());
            let s = &out.sealed;
            let mut body = json!({
                "ciphertext": B64.encode(&s.ciphertext),
                "ciphertextMetadata": B64.encode(s.metadata.encode()),
                "initializationVector": B64.encode(s.iv),
                "authenticationTag": B64.encode(s.tag),
            });
            if let Some(cdiv) = out.cdiv {
                body["ciphertextDataIntegrityValue"] = json!(B64.encode(cdiv));
            }
            Ok(body)
        }
        XksOperation::Decrypt => {
            let ciphertext = base64_field(required_str(req, "ciphertext")?, "ciphertext", MAX_DATA)?;
            let metadata = match optional_str(req, "ciphertextMetadata")? {
                Some(v) => Some(base64_field(v, "ciphertextMetadata", MAX_METADATA)?),
                None => None,
            };
            let iv = base64_field(required_str(req, "initializationVector")?, "initializationVector", 16)?;
            if iv.len() != 12 && iv.len() != 16 {
                return Err(XksError::Validation("initializationVector must be 12 or 16 bytes.".into()));
            }
            let tag = base64_field(required_str(req, "authenticationTag")?, "authenticationTag", 16)?;
            if tag.len() != 16 {
                return Err(XksError::Validation("authenticationTag must be 16 bytes.".into()));
            }
            let rec = keys::xks_key(kms, external_key_id)?;
            summary.key_arn = Some(kms.key_arn(&rec.key_id));
            let input = DecryptInput {
                ciphertext: &ciphertext,
                metadata: metadata.as_deref().map(|m| &m[..]),
                iv: &iv,
                tag: &tag,
                aad: &aad,
            };
            let (plaintext, material_id) = keys::decrypt(kms, &rec, &input)?;
            summary.key_material_id = Some(material_id);
            Ok(json!({ "plaintext": B64.encode(&plaintext[..]) }))
        }
        XksOperation::GetKeyMetadata => {
            let rec = keys::xks_key(kms, external_key_id)?;
            summary.key_arn = Some(kms.key_arn(&rec.key_id));
            let status = keys::key_status(&rec).as_str();
            summary.response_elements = Some(json!({ "keyStatus": status }));
            Ok(json!({ "keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": status }))
        }
        XksOperation::GetHealthStatus => Err(XksError::InvalidUriPath("GetHealthStatus names no key.".into())),
    }
}

/// GetHealthStatus: one proxy in front of one key manager, both sealbox. The check is run on
/// every call (it takes well under a millisecond), so the answer is never stale.
fn health(kms: &Kms, summary: &mut XksCallSummary) -> Value {
    let (status, problem) = match keys::health_check(kms) {
        Ok(()) => ("ACTIVE", None),
        Err(e) => ("UNAVAILABLE", Some(e)),
    };
    summary.response_elements = Some(match &problem {
        Some(p) => json!({ "healthStatus": status, "problem": p }),
        None => json!({ "healthStatus": status }),
    });
    let version = env!("CARGO_PKG_VERSION");
    json!({
        "xksProxyFleetSize": 1,
        "xksProxyVendor": "sealbox",
        "xksProxyModel": format!("sealbox XKS proxy {version}"),
        "ekmVendor": "sealbox",
        "ekmFleetDetails": [{
            "id": format!("sealbox-kms-{}", kms.config.region),
            "model": format!("sealbox KMS {version}"),
            "healthStatus": status,
        }],
    })
}
