//! The XKS proxy API on the shared port (docs/xks.md): routing by path prefix, the 405 for other
//! methods, HTTPS and mTLS, SigV4 for `kms-xks-proxy` (sealbox-auth, against the XKS credentials
//! only, dated within 5 minutes), then `sealbox_kms::xks::handle`, with the audit trail failing
//! closed as for KMS calls (`audit_glue.rs`) and metrics per operation and status.

use sealbox_auth::Expected;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use s3s::Body;
use sealbox_audit::{AuditRecord, EventSource};
use sealbox_kms::xks::{self, XksCallSummary, XksError, XksOperation, XksPath, XksReply};

use crate::router::{Peer, RouterState};
use crate::xks_config::{XksConfig, XksCredentials};

/// XKS bodies are small (4300 bytes of plaintext, 8192 of AAD, ARNs of 2048 in the spec): this
/// leaves room for every field at the sizes we accept and refuses the rest unread.
const MAX_BODY: usize = 64 << 10;
/// The spec: requests more than 5 minutes in the past or future fail authentication.
const MAX_REQUEST_AGE: time::Duration = time::Duration::minutes(5);

/// The XKS API's state in the router.
pub struct XksState {
    pub credentials: XksCredentials,
    /// `[/<prefix>]/kms/xks/v1`.
    api_root: String,
    /// With `--xks-client-ca`: XKS requests need a connection with a verified client certificate.
    require_client_cert: bool,
    allow_http: bool,
    /// Error answers by operation and error name, for `sealbox_xks_errors_total`.
    errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl XksState {
    pub fn new(config: &XksConfig) -> anyhow::Result<Self> {
        Ok(XksState {
            credentials: XksCredentials::load(&config.credentials)?,
            api_root: config.api_root.clone(),
            require_client_cert: config.client_ca.is_some(),
            allow_http: config.allow_http,
            errors: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn api_root(&self) -> &str {
        &self.api_root
    }

    fn count_error(&self, operation: &'static str, error: &'static str) {
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()).entry((operation, error)).or_default() += 1;
    }

    /// `sealbox_xks_errors_total{operation,error}` (requests by status are in
    /// `sealbox_requests_total{api="xks"}`).
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str("# HELP sealbox_xks_errors_total XKS proxy API errors, by operation and errorName.\n");
        out.push_str("# TYPE sealbox_xks_errors_total counter\n");
        for ((operation, error), n) in self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "sealbox_xks_errors_total{{operation=\"{operation}\",error=\"{error}\"}} {n}");
        }
    }
}

/// An XKS request, once routed.
pub struct XksRoute {
    /// `None`: the XKS API is off and the request was signed for it.
    xks: Option<Arc<XksState>>,
    path: XksPath,
}

impl XksRoute {
    /// The operation name for the audit trail and metrics (`InvalidUriPath` for other paths).
    pub fn name(&self) -> &'static str {
        match &self.path {
            XksPath::Api { operation, .. } => operation.name(),
            XksPath::Invalid => "InvalidUriPath",
        }
    }
}

/// Which requests are XKS's: every path under `[/<prefix>]/kms/xks/v1`, and any request signed
/// for `kms-xks-proxy` elsewhere (a wrong prefix: InvalidUriPathException tells KMS so). When the
/// XKS API is off, only requests signed for it (which S3 would refuse anyway) are taken, to be
/// answered 404 like any path the server does not serve; the paths stay S3's (a bucket `kms`).
pub fn route<B>(xks: Option<&Arc<XksState>>, req: &Request<B>) -> Option<XksRoute> {
    if let Some(xks) = xks {
        if let Some(rest) = req.uri().path().strip_prefix(xks.api_root.as_str()) {
            if rest.is_empty() || rest.starts_with('/') {
                return Some(XksRoute { xks: Some(xks.clone()), path: xks::parse_path(rest) });
            }
        }
    }
    // Only a routing hint: the signature itself is verified before anything is served.
    let signed_for_xks = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(&format!("/{}/aws4_request", xks::SIGV4_SERVICE)));
    signed_for_xks.then(|| XksRoute { xks: xks.cloned(), path: XksPath::Invalid })
}

fn json(status: u16, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}

fn error(e: &XksError) -> Response<Body> {
    json(e.status(), e.body())
}

/// 405 with `Allow: POST` (spec: a GET to any of the four APIs MUST be refused so).
fn method_not_allowed() -> Response<Body> {
    let mut resp = Response::new(Body::from("405 Method Not Allowed: the XKS proxy API takes POST only\n".to_owned()));
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    resp
}

/// Marks a response whose record the handler wrote.
fn audited(mut resp: Response<Body>) -> Response<Body> {
    resp.extensions_mut().insert(crate::audit_glue::Audited);
    resp
}

/// The header list sealbox-auth verifies. HTTP/2 carries the host in `:authority`, which hyper
/// puts in the URI: SigV4 signs it as `host` (spec, Appendix A).
fn signed_headers(parts: &http::request::Parts) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
        .collect();
    if !parts.headers.contains_key(http::header::HOST) {
        if let Some(authority) = parts.uri.authority() {
            headers.push(("host".to_owned(), authority.as_str().to_owned()));
        }
    }
    headers
}

/// SigV4 for `kms-xks-proxy` with an XKS credential, dated within 5 minutes: the access key id.
fn authenticate(xks: &XksState, parts: &http::request::Parts, body: &[u8]) -> Result<String, XksError> {
    let owned = signed_headers(parts);
    let headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let body_sha256 = sealbox_auth::hex_sha256(body);
    let request = sealbox_auth::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256_hex: &body_sha256,
    };
    let now = time::OffsetDateTime::now_utc();
    let caller =
        sealbox_auth::verify(&request, |id| xks.credentials.secret(id), now, Expected::signed_body(xks::SIGV4_SERVICE))
            .map_err(|e| XksError::AuthenticationFailed(format!("SigV4 ({}): {e}", xks::SIGV4_SERVICE)))?;
    if caller.presigned {
        // KMS signs the Authorization header (spec, Appendix A); a presigned URL has no place here.
        return Err(XksError::AuthenticationFailed("XKS requests are signed in the Authorization header.".into()));
    }
    match sealbox_auth::request_age(&request, now) {
        Some(age) if age.abs() <= MAX_REQUEST_AGE => Ok(caller.access_key_id),
        _ => Err(XksError::AuthenticationFailed(
            "The request's X-Amz-Date is more than 5 minutes from the proxy's clock.".into(),
        )),
    }
}

/// The audit identity of an authenticated XKS call: the XKS credential that signed it, on behalf
/// of the AWS principal KMS names in `requestMetadata` (inside the signed body).
fn audit_principal(access_key_id: &str, summary: &XksCallSummary) -> sealbox_audit::Principal {
    sealbox_audit::Principal {
        identity_type: "XksCredential".into(),
        principal_id: access_key_id.to_owned(),
        arn: summary.metadata_str("awsPrincipalArn").unwrap_or("kms.amazonaws.com").to_owned(),
        account_id: crate::iam::ACCOUNT_ID.into(),
        access_key_id: access_key_id.to_owned(),
        user_name: None,
    }
}

/// The record of one authenticated call: `requestMetadata` as KMS sent it (kmsRequestId,
/// kmsOperation, kmsKeyArn, awsPrincipalArn, ... to match the customer's CloudTrail), the
/// sealbox key as resource, the material version used, the outcome. Never the plaintext.
fn record(
    access_key_id: &str,
    ctx: &sealbox_audit::RequestContext,
    operation: XksOperation,
    reply: &XksReply,
    summary: &XksCallSummary,
) -> AuditRecord {
    let mut params = serde_json::Value::Object(summary.request_parameters.clone());
    params["requestMetadata"] = summary.request_metadata.clone().map(serde_json::Value::Object).unwrap_or_default();
    let mut rec =
        AuditRecord::api_call(&audit_principal(access_key_id, summary), ctx, EventSource::Xks, operation.name())
            .with_request_parameters(params);
    if let Some(arn) = &summary.key_arn {
        rec = rec.with_resource("AWS::KMS::Key", arn);
    }
    if let Some(elements) = &summary.response_elements {
        rec = rec.with_response_elements(elements.clone());
    }
    if let Some(id) = &summary.key_material_id {
        rec = rec.with_additional_event_data(serde_json::json!({ "keyMaterialId": id }));
    }
    if let Some(e) = &reply.error {
        rec = rec.with_error(e.error_name(), &e.message());
    }
    rec
}

/// The refusal when a call's record cannot be written: InternalException, nothing released.
fn audit_refused() -> Answer {
    let e = XksError::Internal(crate::audit_glue::AUDIT_UNAVAILABLE.into());
    Answer { resp: audited(error(&e)), error: Some(e.error_name()) }
}

/// An authenticated call: refused while the trail cannot be written, and its reply (plaintext
/// included) released only once its record is durable.
async fn call(
    state: &Arc<RouterState>,
    peer: Option<Peer>,
    parts: &http::request::Parts,
    body: bytes::Bytes,
    access_key_id: String,
    operation: XksOperation,
    external_key_id: Option<String>,
) -> Answer {
    let rid = uuid::Uuid::new_v4().to_string();
    let ctx =
        crate::audit_glue::context(&state.region, peer.map(|p| p.addr.ip().to_string()), Some(&parts.headers), &rid);
    // XKS calls change no state (all are read-only events): no intent record, but no call at all
    // while the writer is failed.
    let principal = audit_principal(&access_key_id, &XksCallSummary::default());
    let begun = crate::audit_glue::AuditedCall::begin(
        &state.audit,
        &principal,
        &ctx,
        EventSource::Xks,
        operation.name(),
        || serde_json::Value::Null,
    )
    .await;
    let Ok(audited_call) = begun else { return audit_refused() };
    let kms = state.kms.clone();
    let result =
        tokio::task::spawn_blocking(move || xks::handle(&kms, operation, external_key_id.as_deref(), &body)).await;
    let (reply, summary) = match result {
        Ok(done) => done,
        Err(e) => (XksReply::error(XksError::Internal(format!("internal error: {e}"))), XksCallSummary::default()),
    };
    let rec = record(&access_key_id, &ctx, operation, &reply, &summary);
    match audited_call.finish(rec).await {
        Ok(()) => Answer { resp: audited(json(reply.status, reply.body)), error: reply.error.map(|e| e.error_name()) },
        Err(_) => audit_refused(),
    }
}

/// A response and the `errorName` it carries (for `sealbox_xks_errors_total`).
struct Answer {
    resp: Response<Body>,
    error: Option<&'static str>,
}

impl Answer {
    fn refused(e: XksError) -> Self {
        Answer { resp: error(&e), error: Some(e.error_name()) }
    }
}

async fn serve(
    state: &Arc<RouterState>,
    xks: &XksState,
    peer: Option<Peer>,
    req: Request<Body>,
    route: XksRoute,
) -> Answer {
    // The body is read before any answer: an HTTP/2 client (KMS may use h2) sees a stream reset
    // instead of the answer when the server replies before taking the body it was sending.
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Answer::refused(XksError::UnsupportedOperation(format!(
                "The request body is larger than the {MAX_BODY} bytes this proxy accepts, or was cut short."
            )))
        }
    };
    let XksPath::Api { operation, external_key_id } = route.path else {
        let root = &xks.api_root;
        return Answer::refused(XksError::InvalidUriPath(format!("This proxy serves the XKS API under {root}/ only.")));
    };
    if parts.method != http::Method::POST {
        return Answer { resp: method_not_allowed(), error: Some("MethodNotAllowed") };
    }
    let is_tls = peer.is_some_and(|p| p.is_tls);
    if !is_tls && !xks.allow_http {
        return Answer::refused(XksError::AuthenticationFailed("The XKS proxy API is served over HTTPS only.".into()));
    }
    if xks.require_client_cert && !peer.is_some_and(|p| p.client_cert) {
        return Answer::refused(XksError::AuthenticationFailed(
            "The XKS proxy API requires a client certificate chained to the configured CA (mutual TLS).".into(),
        ));
    }
    match authenticate(xks, &parts, &body) {
        Err(e) => Answer::refused(e),
        Ok(access_key_id) => call(state, peer, &parts, body, access_key_id, operation, external_key_id).await,
    }
}

/// An XKS request (routed by [`route`]). Refusals at authentication (401) are left to the
/// router's refused-request recording (coalesced); every authenticated call is recorded here.
pub async fn handle(
    state: Arc<RouterState>,
    peer: Option<Peer>,
    req: Request<Body>,
    route: XksRoute,
) -> Response<Body> {
    let Some(xks) = route.xks.clone() else {
        // Taken (bounded) before the answer, for HTTP/2 clients as in `serve`.
        let _ = Limited::new(req.into_body(), MAX_BODY).collect().await;
        let mut resp = Response::new(Body::from("not found\n".to_owned()));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return resp;
    };
    let started = Instant::now();
    let name = route.name();
    let answer = serve(&state, &xks, peer, req, route).await;
    if let Some(error_name) = answer.error {
        xks.count_error(name, error_name);
    }
    state.metrics.record("xks", name, answer.resp.status().as_u16(), started.elapsed(), 0, 0);
    answer.resp
}

/// Re-reads the XKS credentials on SIGHUP (beside the TLS certificate reload).
pub async fn reload_on_sighup(xks: Arc<XksState>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match xks.credentials.reload() {
            Ok(ids) => tracing::info!(access_key_ids = ?ids, "XKS credentials reloaded"),
            Err(err) => tracing::error!(
                error = %format!("{err:#}"),
                file = %xks.credentials.path().display(),
                "XKS credentials reload failed; keeping the credentials in use"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ID: &str = "MUBSXM6K3KMXHN6RRCXI7TWQ";
    const SECRET: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE=";

    fn state(dir: &std::path::Path) -> XksState {
        let file = dir.join("xks.toml");
        std::fs::write(&file, format!("[[credential]]\naccess_key_id = \"{ID}\"\nsecret_access_key = \"{SECRET}\"\n"))
            .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = XksConfig {
            credentials: file,
            api_root: "/kms/xks/v1".into(),
            client_ca: None,
            client_cn: None,
            allow_http: false,
        };
        XksState::new(&config).unwrap()
    }

    /// A request signed as KMS signs it (sealbox-auth's signer), `age` ago, with or without a
    /// `host` header (HTTP/2 carries the authority in the URI instead).
    fn signed(body: &[u8], age: time::Duration, presign: bool, host_header: bool) -> http::request::Parts {
        let secret = sealbox_auth::SecretAccessKey::new(SECRET);
        let credentials = sealbox_auth::Credentials {
            access_key_id: ID,
            secret: &secret,
            region: "us-east-1",
            service: "kms-xks-proxy",
        };
        let path = "/kms/xks/v1/health";
        let hash = sealbox_auth::hex_sha256(body);
        let host = [("host", "xks.example.com")];
        let to_sign =
            sealbox_auth::RequestToSign { method: "POST", path, query: "", headers: &host, payload_sha256: &hash };
        let when = time::OffsetDateTime::now_utc() - age;
        let mut builder = http::Request::builder().method("POST");
        if presign {
            let query = sealbox_auth::presign(&to_sign, &credentials, when, 60);
            builder = builder.uri(format!("https://xks.example.com{path}?{query}"));
        } else {
            builder = builder.uri(format!("https://xks.example.com{path}"));
            for (name, value) in sealbox_auth::sign(&to_sign, &credentials, when) {
                builder = builder.header(name, value);
            }
        }
        if host_header {
            builder = builder.header("host", "xks.example.com");
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn kms_style_signatures_within_five_minutes_only() {
        let dir = tempfile::tempdir().unwrap();
        let xks = state(dir.path());
        let body = br#"{"requestMetadata":{}}"#;
        let fresh = time::Duration::seconds(1);
        assert_eq!(authenticate(&xks, &signed(body, fresh, false, true), body).unwrap(), ID);
        assert_eq!(authenticate(&xks, &signed(body, fresh, false, false), body).unwrap(), ID, "HTTP/2");
        assert!(authenticate(&xks, &signed(body, time::Duration::minutes(4), false, true), body).is_ok());
        for age in [time::Duration::minutes(6), time::Duration::minutes(-6)] {
            let e = authenticate(&xks, &signed(body, age, false, true), body).unwrap_err();
            assert!(e.to_string().contains("5 minutes"), "{e}");
        }
        let e = authenticate(&xks, &signed(body, fresh, true, true), body).unwrap_err();
        assert!(e.to_string().contains("Authorization header"), "presigned: {e}");
        let e = authenticate(&xks, &signed(body, fresh, false, true), b"{}").unwrap_err();
        assert_eq!(e.error_name(), "AuthenticationFailedException", "body changed after signing");
    }
}
