//! What the server writes to the audit trail (sealbox-audit): every KMS call (including those S3
//! makes for a user), every rotation and key destruction, every IAM call, every bucket-level
//! change and every refused request.
//!
//! The trail fails closed (docs/audit-format.md, "Fail closed"): a call that must be audited is
//! refused at once while the writer is failed, a call that changes state writes a durable intent
//! record before it runs, and no response (key material, plaintext, a new secret) is released
//! before the call's own record is durable. Refused requests (anonymous and denied, bad
//! signatures, unknown keys) are recorded with flood coalescing, so a client cannot fill the disk.

use std::sync::Arc;

use http::Response;
use s3s::Body;
use sealbox_audit::{
    Admission, AuditLog, AuditRecord, Durability, EventSource, FloodKey, Principal as AuditPrincipal, RequestContext,
};

use crate::identity::Principal;

/// The message of every refusal the audit trail causes.
pub const AUDIT_UNAVAILABLE: &str = "The request was refused because its audit record could not be written (the \
     audit trail cannot be written to disk; see /health/ready). Nothing was released.";

/// Longest user agent, claimed access key and path kept in a refused-request record: the client
/// chooses them.
const MAX_CLIENT_TEXT: usize = 512;

/// A call could not be recorded (the reason is logged and on /health/ready): the caller must
/// refuse it, with [`AUDIT_UNAVAILABLE`].
#[derive(Debug)]
pub struct AuditRefused;

/// Put in a response's extensions by a handler that wrote the request's record itself, so the
/// router does not record it again as a refused request.
#[derive(Debug, Clone, Copy)]
pub struct Audited;

/// The request id an S3 request's records share (intent in the access hook, outcome in the router).
#[derive(Debug, Clone)]
pub struct AuditRequestId(pub String);

pub fn principal(p: &Principal) -> AuditPrincipal {
    AuditPrincipal {
        identity_type: if p.is_root() { "Root".into() } else { "IAMUser".into() },
        principal_id: p.user_id.clone(),
        arn: p.arn.clone(),
        account_id: crate::iam::ACCOUNT_ID.into(),
        access_key_id: p.access_key_id.clone(),
        user_name: p.user_name.clone(),
    }
}

pub fn context(
    region: &str,
    source_ip: Option<String>,
    headers: Option<&http::HeaderMap>,
    request_id: &str,
) -> RequestContext {
    RequestContext {
        time: time::OffsetDateTime::now_utc(),
        region: region.to_owned(),
        source_ip: source_ip.unwrap_or_else(|| "127.0.0.1".into()),
        user_agent: headers.map(user_agent).unwrap_or_default(),
        request_id: request_id.to_owned(),
    }
}

fn user_agent(headers: &http::HeaderMap) -> String {
    let ua = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    truncate(ua, MAX_CLIENT_TEXT).to_owned()
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends a record the request does not wait on (service events, data events); a failure is
/// logged loudly and shows on /health/ready.
pub async fn write(log: &Arc<AuditLog>, record: AuditRecord, durable: bool) {
    let mode = if durable { Durability::Durable } else { Durability::Buffered };
    if let Err(e) = log.append_async(record, mode).await {
        tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN");
    }
}

/// For code already on a blocking thread (the KMS calls S3 makes): the record is durable when
/// this returns `Ok`; on `Err` the caller must not release the call's result.
pub fn write_blocking(log: &AuditLog, record: AuditRecord) -> Result<(), AuditRefused> {
    log.append(record, Durability::Durable).map_err(|e| {
        tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN: the request is refused");
        AuditRefused
    })
}

/// A call that is released only once it is recorded (KMS, IAM, admin, bucket configuration).
pub struct AuditedCall {
    log: Arc<AuditLog>,
}

impl AuditedCall {
    /// Before the call runs. Refuses at once while the writer is failed (nothing is done). A call
    /// that changes state (any name CloudTrail does not mark read-only) first gets a durable
    /// intent record, so that it is on the trail even if its own record cannot be written after
    /// it ran.
    pub async fn begin(
        log: &Arc<AuditLog>,
        principal: &AuditPrincipal,
        ctx: &RequestContext,
        source: EventSource,
        event_name: &str,
        intent_parameters: impl FnOnce() -> serde_json::Value,
    ) -> Result<Self, AuditRefused> {
        if log.has_failed() {
            return Err(AuditRefused);
        }
        if !sealbox_audit::is_read_only_event(event_name) {
            let intent = AuditRecord::intent(principal, ctx, source, event_name, intent_parameters());
            log.append_async(intent, Durability::Durable).await.map_err(|e| {
                tracing::error!(error = %e, "AUDIT INTENT RECORD COULD NOT BE WRITTEN: the request is refused");
                AuditRefused
            })?;
        }
        Ok(AuditedCall { log: log.clone() })
    }

    /// After the call ran: its record, durable. On `Err` the response must not be released.
    pub async fn finish(self, record: AuditRecord) -> Result<(), AuditRefused> {
        self.log.append_async(record, Durability::Durable).await.map_err(|e| {
            tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN: the response is withheld");
            AuditRefused
        })
    }
}

/// A KMS request's body as intent parameters: the JSON document without the key policy (bulky;
/// secrets are removed by the audit writer's redaction, as for every record), or null.
pub fn json_intent_parameters(body: &[u8]) -> serde_json::Value {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut doc)) => {
            doc.remove("Policy");
            serde_json::Value::Object(doc)
        }
        _ => serde_json::Value::Null,
    }
}

/// What a possibly refused request looked like, captured before it is handed to its API.
pub struct RequestFacts {
    source_ip: String,
    user_agent: String,
    /// The access key the request names (unproven), if it names one.
    claimed_access_key: Option<String>,
    method: String,
    path: String,
}

impl RequestFacts {
    pub fn of<B>(req: &http::Request<B>, source_ip: Option<String>) -> Self {
        RequestFacts {
            source_ip: source_ip.unwrap_or_else(|| "127.0.0.1".into()),
            user_agent: user_agent(req.headers()),
            claimed_access_key: claimed_access_key(req.headers(), req.uri().query()),
            method: req.method().as_str().to_owned(),
            path: truncate(req.uri().path(), MAX_CLIENT_TEXT).to_owned(),
        }
    }

    /// S3-style names for a request refused before it was routed to an operation (as S3 server
    /// access logs name them): `REST.GET.OBJECT`, `REST.PUT.BUCKET`, `REST.GET.SERVICE`.
    pub fn s3_operation(&self) -> String {
        let segments = self.path.trim_start_matches('/').splitn(2, '/').filter(|s| !s.is_empty()).count();
        let target = ["SERVICE", "BUCKET", "OBJECT"][segments.min(2)];
        format!("REST.{}.{target}", self.method)
    }

    fn s3_parameters(&self) -> serde_json::Value {
        let mut parts = self.path.trim_start_matches('/').splitn(2, '/');
        let bucket = parts.next().unwrap_or("");
        let mut params = serde_json::json!({ "httpMethod": self.method });
        if !bucket.is_empty() {
            params["bucketName"] = serde_json::json!(bucket);
        }
        if let Some(k) = parts.next().filter(|k| !k.is_empty()) {
            params["key"] = serde_json::json!(urlencoding::decode(k).map(|c| c.into_owned()).unwrap_or_default());
        }
        params
    }
}

/// The access key id a request *claims* (SigV4 or SigV2, header or presigned query), for the
/// audit record of a request that failed authentication. Not a verifier: nothing here is trusted,
/// and only `[A-Za-z0-9]` is kept.
pub fn claimed_access_key(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|auth| {
        if let Some(rest) = auth.split("Credential=").nth(1) {
            return rest.split('/').next().map(str::to_owned);
        }
        auth.strip_prefix("AWS ").and_then(|rest| rest.split(':').next()).map(str::to_owned)
    });
    let from_query = || {
        url::form_urlencoded::parse(query?.as_bytes()).find_map(|(k, v)| match k.as_ref() {
            "X-Amz-Credential" => v.split('/').next().map(str::to_owned),
            "AWSAccessKeyId" => Some(v.into_owned()),
            _ => None,
        })
    };
    let raw = from_header.or_else(from_query)?;
    let clean: String = raw.chars().filter(char::is_ascii_alphanumeric).take(128).collect();
    (!clean.is_empty()).then_some(clean)
}

/// Error codes of requests refused at authentication or authorisation, across the APIs
/// (S3 XML, IAM XML, KMS/CloudTrail JSON): these are the "refused requests" the trail records.
fn is_refusal(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "IncompleteSignature"
            | "IncompleteSignatureException"
            | "AuthorizationHeaderMalformed"
            | "AuthorizationQueryParametersError"
            | "RequestTimeTooSkewed"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidToken"
            | "MissingSecurityHeader"
            | "AuthenticationFailedException"
    )
}

/// The error code and message of an error response (JSON `__type`/`message`, XKS's
/// `errorName`/`errorMessage`, or XML `<Code>`/`<Message>`); `None` for a success or a body that
/// is not an in-memory error.
fn error_of(resp: &Response<Body>) -> Option<(String, String)> {
    if !resp.status().is_client_error() {
        return None;
    }
    let bytes = resp.body().bytes()?;
    if bytes.len() > 16 << 10 {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let code = v["__type"].as_str().or_else(|| v["Code"].as_str()).or_else(|| v["errorName"].as_str())?;
        let code = code.rsplit('#').next().unwrap_or(code);
        let message = v["message"]
            .as_str()
            .or_else(|| v["Message"].as_str())
            .or_else(|| v["errorMessage"].as_str())
            .unwrap_or("");
        return Some((code.to_owned(), message.to_owned()));
    }
    let text = std::str::from_utf8(&bytes).ok()?;
    let tag = |name: &str| {
        text.split(&format!("<{name}>")).nth(1).and_then(|r| r.split(&format!("</{name}>")).next()).map(str::to_owned)
    };
    Some((tag("Code")?, tag("Message").unwrap_or_default()))
}

/// After a response no handler recorded: if it refused the request at authentication or
/// authorisation (anonymous and denied, bad signature, unknown key...), records it, coalesced per
/// (source IP, error code, claimed access key) so that a flood costs a few records and a count.
/// `event_name`: the operation, when the request got far enough to name one.
pub async fn record_refused(
    log: &Arc<AuditLog>,
    region: &str,
    facts: &RequestFacts,
    source: EventSource,
    event_name: Option<&str>,
    resp: &Response<Body>,
) {
    if resp.extensions().get::<Audited>().is_some() {
        return;
    }
    let Some((code, message)) = error_of(resp).filter(|(code, _)| is_refusal(code)) else { return };
    let key = FloodKey {
        source_ip: facts.source_ip.clone(),
        error_code: code.clone(),
        access_key_id: facts.claimed_access_key.clone().unwrap_or_default(),
    };
    if log.admit(&key) == Admission::Suppress {
        return;
    }
    let ctx = RequestContext {
        time: time::OffsetDateTime::now_utc(),
        region: region.to_owned(),
        source_ip: facts.source_ip.clone(),
        user_agent: facts.user_agent.clone(),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let name = match (event_name, source) {
        (Some(n), _) => n.to_owned(),
        (None, EventSource::S3) => facts.s3_operation(),
        (None, _) => "Unknown".to_owned(),
    };
    let mut rec = AuditRecord::unauthenticated(
        crate::iam::ACCOUNT_ID,
        &ctx,
        source,
        &name,
        facts.claimed_access_key.as_deref(),
        &code,
        truncate(&message, MAX_CLIENT_TEXT),
    );
    if source == EventSource::S3 {
        rec = rec.with_request_parameters(facts.s3_parameters());
    }
    // Nothing is released by a refusal, so the response does not wait for the fsync.
    write(log, rec, false).await;
}

/// Whether an authenticated, denied S3 request gets its own record (or is counted in a flood
/// summary), keyed like [`record_refused`].
pub fn admit_denied(log: &AuditLog, source_ip: &str, access_key_id: &str) -> bool {
    let key = FloodKey {
        source_ip: source_ip.to_owned(),
        error_code: "AccessDenied".to_owned(),
        access_key_id: access_key_id.to_owned(),
    };
    log.admit(&key) == Admission::Record
}

/// An S3 bucket configuration change that ran (after its intent record) but whose outcome record
/// could not be written: 500 InternalError, as S3 answers when the outcome of a request is unknown.
pub fn s3_audit_failed() -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>{AUDIT_UNAVAILABLE} \
         The change may have been applied; its intent is on the audit trail.</Message></Error>"
    );
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    resp
}

/// S3 operations recorded as management events (bucket configuration and lifecycle).
pub fn is_s3_management(op: &str) -> bool {
    matches!(
        op,
        "CreateBucket"
            | "DeleteBucket"
            | "PutBucketEncryption"
            | "DeleteBucketEncryption"
            | "PutBucketPolicy"
            | "DeleteBucketPolicy"
            | "PutBucketVersioning"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse::<http::HeaderName>().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn claimed_keys_are_read_from_every_signature_form() {
        let v4 = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
        )]);
        assert_eq!(claimed_access_key(&v4, None).as_deref(), Some("AKIAEXAMPLE"));
        let v2 = headers(&[("authorization", "AWS AKIAV2:c2lnbmF0dXJl")]);
        assert_eq!(claimed_access_key(&v2, None).as_deref(), Some("AKIAV2"));
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAQ%2F20260101%2Fus-east-1%2Fs3%2Faws4_request";
        assert_eq!(claimed_access_key(&http::HeaderMap::new(), Some(q)).as_deref(), Some("AKIAQ"));
        assert_eq!(
            claimed_access_key(&http::HeaderMap::new(), Some("AWSAccessKeyId=AKIAP&Signature=x")).as_deref(),
            Some("AKIAP")
        );
        assert_eq!(claimed_access_key(&http::HeaderMap::new(), Some("list-type=2")), None);
        let hostile = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=\"<x>\"!AK/..")]);
        assert_eq!(claimed_access_key(&hostile, None).as_deref(), Some("xAK"));
    }

    #[test]
    fn error_codes_are_read_from_json_and_xml() {
        let json = Response::builder()
            .status(400)
            .body(Body::from(r#"{"__type":"InvalidSignatureException","message":"bad"}"#.to_owned()))
            .unwrap();
        assert_eq!(error_of(&json), Some(("InvalidSignatureException".into(), "bad".into())));
        let xks = Response::builder()
            .status(401)
            .body(Body::from(r#"{"errorName":"AuthenticationFailedException","errorMessage":"m"}"#.to_owned()))
            .unwrap();
        assert_eq!(error_of(&xks), Some(("AuthenticationFailedException".into(), "m".into())));
        assert!(is_refusal("AuthenticationFailedException"));
        let xml = Response::builder()
            .status(403)
            .body(Body::from("<Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error>".to_owned()))
            .unwrap();
        assert_eq!(error_of(&xml), Some(("SignatureDoesNotMatch".into(), "m".into())));
        let ok = Response::builder().status(200).body(Body::from("<Code>AccessDenied</Code>".to_owned())).unwrap();
        assert_eq!(error_of(&ok), None);
        assert!(is_refusal("AccessDenied") && !is_refusal("NoSuchKey"));
    }
}
