//! The front door: one listener, three APIs. Health checks and the KMS JSON API
//! (`X-Amz-Target: TrentService.*`) are answered here; everything else is S3, handled by s3s.

use std::net::SocketAddr;
use std::time::Instant;

use crate::metrics::OperationSlot;
use std::sync::Arc;

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::service::S3Service;
use s3s::{Body, HttpError};

/// What the router knows about the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub is_tls: bool,
    /// The TLS client presented a certificate the XKS client verifier accepted (`xks_tls.rs`).
    pub client_cert: bool,
}

#[derive(Clone)]
pub struct Router {
    pub s3: S3Service,
    pub state: Arc<RouterState>,
    pub peer: Option<Peer>,
}

/// Shared server state the router needs beyond S3.
pub struct RouterState {
    pub ready: std::sync::atomic::AtomicBool,
    pub metrics: crate::metrics::Metrics,
    pub kms: Arc<sealbox_kms::Kms>,
    pub meta: Arc<sealbox_store::MetaStore>,
    pub keyring: Arc<crate::identity::KeyRing>,
    pub iam: Arc<crate::iam::Iam>,
    pub audit: Arc<sealbox_audit::AuditLog>,
    pub region: String,
    /// The S3 implementation itself, for admin work the S3 API has no call for (rewrap).
    pub s3_impl: sealbox_s3::SealboxS3,
    /// Record object reads and writes too (S3 data events).
    pub audit_data_events: bool,
    /// Memory for uploads whose length is not known in advance (see [`with_known_length`]).
    pub unknown_length_budget: UnknownLengthBudget,
    /// Base domains of virtual-hosted-style requests (`--domain`).
    pub domains: Vec<String>,
    /// The XKS proxy API, when `--xks-credentials` is set (`xks_glue.rs`).
    pub xks: Option<Arc<crate::xks_glue::XksState>>,
    /// The web console at `/console` (set once the router exists; absent with `--no-console`).
    pub console: std::sync::OnceLock<Arc<sealbox_console::Console>>,
}

impl Router {
    pub fn for_connection(&self, peer: Peer) -> Self {
        Self { s3: self.s3.clone(), state: self.state.clone(), peer: Some(peer) }
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_owned()));
    *resp.status_mut() = status;
    resp
}

/// `/health/ready`: not ready while starting, or while the audit trail cannot be written (every
/// request that must be audited is refused then; it recovers by itself when the disk does).
fn readiness(state: &RouterState) -> Response<Body> {
    if let Some(e) = state.audit.failure() {
        // The OS error only: this endpoint answers without credentials, file paths stay in the log.
        let reason = match &e {
            sealbox_audit::AuditError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        let mut resp = Response::new(Body::from(format!(
            "not ready: the audit trail cannot be written ({reason}); requests that must be audited are refused until it recovers\n"
        )));
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return resp;
    }
    if state.ready.load(std::sync::atomic::Ordering::Acquire) {
        plain(StatusCode::OK, "ready\n")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

impl Router {
    /// Runs an API handler, then records the request if it was refused at authentication or
    /// authorisation and the handler did not record it (see `audit_glue::record_refused`).
    fn audit_refusals(
        &self,
        facts: crate::audit_glue::RequestFacts,
        source: sealbox_audit::EventSource,
        event_name: Option<String>,
        handler: impl std::future::Future<Output = Response<Body>> + Send + 'static,
    ) -> BoxFuture<'static, Result<Response<Body>, HttpError>> {
        let state = self.state.clone();
        Box::pin(async move {
            let resp = handler.await;
            crate::audit_glue::record_refused(
                &state.audit,
                &state.region,
                &facts,
                source,
                event_name.as_deref(),
                &resp,
            )
            .await;
            Ok(resp)
        })
    }

    fn facts(&self, req: &Request<Body>) -> crate::audit_glue::RequestFacts {
        crate::audit_glue::RequestFacts::of(req, self.peer.map(|p| p.addr.ip().to_string()))
    }
}

impl hyper::service::Service<Request<Incoming>> for Router {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.dispatch(req.map(Body::from))
    }
}

impl Router {
    /// Routes one request to its API. The network's requests come through `call`; the web
    /// console sends the API requests it signs for a signed-in user through here, in-process.
    pub fn dispatch(&self, mut req: Request<Body>) -> BoxFuture<'static, Result<Response<Body>, HttpError>> {
        use sealbox_audit::EventSource::{CloudTrail, Iam, Kms, Sealbox};
        if let Some(console) = self.state.console.get().filter(|c| c.claims(&req)).cloned() {
            let peer = self.peer.map(|p| sealbox_console::Peer { addr: p.addr, is_tls: p.is_tls });
            return Box::pin(async move { Ok(console.handle(req, peer).await) });
        }
        let path = req.uri().path();
        if req.method() == http::Method::GET && path.starts_with("/health/") {
            let resp = match path {
                "/health/live" => plain(StatusCode::OK, "ok\n"),
                "/health/ready" => readiness(&self.state),
                "/health/metrics" => metrics_response(&self.state.metrics),
                _ => plain(StatusCode::NOT_FOUND, "not found\n"),
            };
            return Box::pin(async move { Ok::<_, HttpError>(resp) });
        }
        if req.method() == http::Method::GET && path == "/metrics" && req.uri().query().is_none() {
            let resp = metrics_response(&self.state.metrics);
            return Box::pin(async move { Ok::<_, HttpError>(resp) });
        }
        if let Some(route) = crate::xks_glue::route(self.state.xks.as_ref(), &req) {
            let (state, peer, name, facts) = (self.state.clone(), self.peer, route.name().to_owned(), self.facts(&req));
            let handler = crate::xks_glue::handle(state, peer, req, route);
            return self.audit_refusals(facts, sealbox_audit::EventSource::Xks, Some(name), handler);
        }
        if let Some(op) = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix("TrentService."))
            .map(str::to_owned)
        {
            let (state, peer, name) = (self.state.clone(), self.peer, op.clone());
            let facts = self.facts(&req);
            return self.audit_refusals(facts, Kms, Some(name), crate::api_glue::kms(state, peer, req, op));
        }
        if path == "/_sealbox/rewrap" && req.method() == http::Method::POST {
            let (state, peer, name) = (self.state.clone(), self.peer, Some("RewrapBucket".to_owned()));
            let facts = self.facts(&req);
            return self.audit_refusals(facts, Sealbox, name, crate::api_glue::rewrap(state, peer, req));
        }
        if req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.ends_with("CloudTrail_20131101.LookupEvents"))
        {
            let (state, name) = (self.state.clone(), Some("LookupEvents".to_owned()));
            let facts = self.facts(&req);
            return self.audit_refusals(facts, CloudTrail, name, crate::api_glue::lookup_events(state, req));
        }
        let authorization = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if authorization.and_then(sealbox_auth::credential_service).as_deref() == Some("iam") {
            let (state, peer) = (self.state.clone(), self.peer);
            let facts = self.facts(&req);
            return self.audit_refusals(facts, Iam, None, crate::api_glue::iam(state, peer, req));
        }
        // One id per S3 request: the x-amz-request-id header, the RequestId of an error body and
        // the audit record's requestID.
        let rid = new_request_id();
        let waits_for_continue = expects_continue(req.headers());
        sigv2_bucket_path(&mut req, &self.state.domains);
        // s3s verifies only the headers a request names as signed: refuse the rest first.
        if let Some(mut refusal) = crate::signing::check_s3_envelope(&req, &self.state.region, &rid) {
            set_request_ids(&mut refusal, &rid);
            close_if_body_unsent(&mut refusal, waits_for_continue);
            let status = refusal.status().as_u16();
            self.state.metrics.record("s3", "Unknown", status, std::time::Duration::ZERO, 0, 0);
            let facts = self.facts(&req);
            return self.audit_refusals(facts, sealbox_audit::EventSource::S3, None, async move { refusal });
        }
        if let Some(peer) = self.peer {
            req.extensions_mut()
                .insert(sealbox_s3::RequestInfo { source_ip: Some(peer.addr.ip().to_string()), is_tls: peer.is_tls });
        }
        let slot = OperationSlot::default();
        req.extensions_mut().insert(slot.clone());
        let caller_slot = crate::access::CallerSlot::default();
        req.extensions_mut().insert(caller_slot.clone());
        req.extensions_mut().insert(crate::audit_glue::AuditRequestId(rid.clone()));
        let facts = self.facts(&req);
        let path = req.uri().path().to_owned();
        let audit_headers = req.headers().clone();
        let source_ip = self.peer.map(|p| p.addr.ip().to_string());
        let bytes_in = content_length(req.headers());
        let s3 = self.s3.clone();
        let state = self.state.clone();
        Box::pin(async move {
            let started = Instant::now();
            let req = match with_known_length(&state.unknown_length_budget, req).await {
                Ok(req) => req,
                Err(refusal) => {
                    let mut resp = refusal;
                    set_request_ids(&mut resp, &rid);
                    close_if_body_unsent(&mut resp, waits_for_continue);
                    fill_error_message(&mut resp, &rid);
                    state.metrics.record("s3", "Unknown", resp.status().as_u16(), started.elapsed(), 0, 0);
                    return Ok(resp);
                }
            };
            let mut resp = s3.call(req).await?;
            if let Some(fix) = resp.extensions().get::<sealbox_s3::WireFix>().copied() {
                apply_wire_fix(&mut resp, fix);
            }
            set_request_ids(&mut resp, &rid);
            close_if_body_unsent(&mut resp, waits_for_continue);
            fill_error_message(&mut resp, &rid);
            let op = slot.0.get().map(String::as_str).unwrap_or("Unknown");
            state.metrics.record(
                "s3",
                op,
                resp.status().as_u16(),
                started.elapsed(),
                bytes_in,
                content_length(resp.headers()),
            );
            let denied = resp.status() == StatusCode::FORBIDDEN;
            let data_event = state.audit_data_events && sealbox_audit::is_s3_data_event(op);
            let management = crate::audit_glue::is_s3_management(op);
            let Some(p) = caller_slot.0.get() else {
                // Nobody was authenticated: anonymous and denied, or refused at the signature.
                let name = slot.0.get().map(String::as_str);
                let source = sealbox_audit::EventSource::S3;
                crate::audit_glue::record_refused(&state.audit, &state.region, &facts, source, name, &resp).await;
                return Ok(resp);
            };
            // Denials are coalesced like refused requests: a flood costs a few records and a count.
            let source_ip_text = source_ip.clone().unwrap_or_default();
            let recorded_denial =
                denied && crate::audit_glue::admit_denied(&state.audit, &source_ip_text, &p.access_key_id);
            if recorded_denial || (!denied && (data_event || management)) {
                let ctx = crate::audit_glue::context(&state.region, source_ip, Some(&audit_headers), &rid);
                let mut parts = path.trim_start_matches('/').splitn(2, '/');
                let bucket = parts.next().unwrap_or("").to_owned();
                let key = parts.next().map(|k| urlencoding::decode(k).map(|c| c.into_owned()).unwrap_or_default());
                let mut params = serde_json::json!({"bucketName": bucket});
                if let Some(k) = key.filter(|k| !k.is_empty()) {
                    params["key"] = serde_json::json!(k);
                }
                let mut rec = sealbox_audit::AuditRecord::api_call(
                    &crate::audit_glue::principal(p),
                    &ctx,
                    sealbox_audit::EventSource::S3,
                    op,
                )
                .with_request_parameters(params)
                .with_resource("AWS::S3::Bucket", &format!("arn:aws:s3:::{bucket}"));
                if denied {
                    rec = rec.with_error("AccessDenied", "Access Denied");
                } else if !resp.status().is_success() {
                    rec = rec.with_error(&resp.status().as_u16().to_string(), "request failed");
                }
                if data_event && !denied {
                    rec = rec.as_data_event().with_additional_event_data(serde_json::json!({
                        "bytesTransferredIn": bytes_in,
                        "bytesTransferredOut": content_length(resp.headers()),
                    }));
                }
                if management && !denied {
                    // The change was made after its intent record (access hook): its outcome must
                    // be durable before the answer, or the answer is an error (outcome unknown).
                    // (A 503 is the access hook's refusal: nothing ran, the refusal stands.)
                    let written = state.audit.append_async(rec, sealbox_audit::Durability::Durable).await;
                    if written.is_err() && resp.status() != StatusCode::SERVICE_UNAVAILABLE {
                        return Ok(crate::audit_glue::s3_audit_failed());
                    }
                } else {
                    // Data events are buffered (fsynced within a second); denials are durable.
                    crate::audit_glue::write(&state.audit, rec, !data_event || denied).await;
                }
            }
            Ok(resp)
        })
    }
}

fn content_length(h: &http::HeaderMap) -> u64 {
    h.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn metrics_response(m: &crate::metrics::Metrics) -> Response<Body> {
    let mut resp = Response::new(Body::from(m.render()));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

/// Applies what the S3 layer asked for and s3s could not express (see [`sealbox_s3::WireFix`]).
fn apply_wire_fix(resp: &mut Response<Body>, fix: sealbox_s3::WireFix) {
    if let Some(status) = fix.status {
        *resp.status_mut() = status;
    }
    if fix.unquoted_etag {
        let Some(bytes) = resp.body().bytes() else { return };
        let Ok(text) = std::str::from_utf8(&bytes) else { return };
        let (Some(start), Some(end)) = (text.find("<ETag>\""), text.find("\"</ETag>")) else { return };
        if start < end {
            let fixed = format!("{}<ETag>{}</ETag>{}", &text[..start], &text[start + 7..end], &text[end + 8..]);
            let len = fixed.len();
            *resp.body_mut() = Body::from(fixed);
            resp.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
        }
    }
}

/// SigV2 signs a bucket as `/bucket/` (AWS's CanonicalizedResource; botocore, s3cmd and boto2
/// all sign it so), while clients send path-style bucket requests as `/bucket`, and s3s builds
/// the string to sign from the path as sent: give SigV2 bucket requests their trailing slash
/// (s3s reads `/bucket/` as the same bucket).
fn sigv2_bucket_path<B>(req: &mut Request<B>, domains: &[String]) {
    let sigv2_header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("AWS "));
    let query = req.uri().query().unwrap_or("");
    let sigv2_query = query.split('&').any(|p| p.starts_with("Signature="));
    let path = req.uri().path();
    let one_segment = path.len() > 1 && !path[1..].contains('/');
    if !(sigv2_header || sigv2_query) || !one_segment || !is_path_style(req.headers(), domains) {
        return;
    }
    let fixed = if query.is_empty() { format!("{path}/") } else { format!("{path}/?{query}") };
    if let Ok(pq) = http::uri::PathAndQuery::try_from(fixed) {
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(pq);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// Whether a request addresses buckets in its path: no virtual-host domain is configured, or the
/// Host is one of them (or an address), not a bucket subdomain.
fn is_path_style(headers: &http::HeaderMap, domains: &[String]) -> bool {
    if domains.is_empty() {
        return true;
    }
    let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let name =
        host.rsplit_once(':').map_or(host, |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
    name.parse::<std::net::IpAddr>().is_ok()
        || name.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok()
        || domains.iter().any(|d| d.eq_ignore_ascii_case(name))
}

/// `Expect: 100-continue`: the client sends its body only after a `100 Continue`.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// A client waiting on `Expect: 100-continue` that gets an error instead sends no body (botocore,
/// curl); the server cannot tell whether bytes that follow are that body or the next request, so
/// the connection ends with the answer (`Connection: close`) instead of being read on.
fn close_if_body_unsent(resp: &mut Response<Body>, waits_for_continue: bool) {
    if waits_for_continue && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
}

/// An S3 request id as AWS shapes them: 16 upper-case hex digits.
fn new_request_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(16);
    id.to_ascii_uppercase()
}

/// `x-amz-request-id` and `x-amz-id-2` on every S3 answer, as AWS sends them.
fn set_request_ids(resp: &mut Response<Body>, rid: &str) {
    use base64::Engine;
    let h = resp.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(rid) {
        h.insert("x-amz-request-id", v);
    }
    let host_id = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
    if let Ok(v) = http::HeaderValue::from_str(&host_id) {
        h.insert("x-amz-id-2", v);
    }
}

/// Uploads that are header-signed with SigV4, sent with `Transfer-Encoding: chunked` and no
/// `Content-Length`, and not aws-chunked: s3s refuses them (411), since it checks a signed payload
/// hash against a known length. AWS refuses them all (501); we take the small ones, read here up
/// to [`UNKNOWN_LENGTH_LIMIT`] under a server-wide memory budget, and hand them on with their
/// length (bigger ones are still 411 MissingContentLength). aws-chunked bodies, presigned and
/// SigV2 uploads stream without this (their length comes from the framing or is not needed).
async fn with_known_length(budget: &UnknownLengthBudget, req: Request<Body>) -> Result<Request<Body>, Response<Body>> {
    use http_body_util::BodyExt;
    if !needs_known_length(&req) {
        return Ok(req);
    }
    let Ok(_permit) = budget.memory.clone().try_acquire_many_owned((UNKNOWN_LENGTH_LIMIT / 1024) as u32) else {
        return Err(s3_refusal(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate."));
    };
    let (mut parts, mut body) = req.into_parts();
    let mut chunks = bytes::BytesMut::new();
    loop {
        let frame =
            match tokio::time::timeout(budget.idle_timeout, body.frame()).await {
                Err(_) => return Err(s3_refusal(
                    StatusCode::BAD_REQUEST,
                    "RequestTimeout",
                    "Your socket connection to the server was not read from or written to within the timeout period.",
                )),
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    return Err(s3_refusal(
                        StatusCode::BAD_REQUEST,
                        "IncompleteBody",
                        "The request body terminated unexpectedly",
                    ))
                }
                Ok(Some(Ok(frame))) => frame,
            };
        if let Ok(data) = frame.into_data() {
            if chunks.len() + data.len() > UNKNOWN_LENGTH_LIMIT {
                return Err(s3_refusal(
                    StatusCode::LENGTH_REQUIRED,
                    "MissingContentLength",
                    "You must provide the Content-Length HTTP header.",
                ));
            }
            chunks.extend_from_slice(&data);
        }
    }
    parts.headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(chunks.len()));
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    Ok(Request::from_parts(parts, Body::from(chunks.freeze())))
}

/// Largest body [`with_known_length`] reads into memory.
const UNKNOWN_LENGTH_LIMIT: usize = 8 << 20;

/// Memory for [`with_known_length`]: at most 64 MiB of such bodies at once (in KiB permits).
#[derive(Clone)]
pub struct UnknownLengthBudget {
    memory: Arc<tokio::sync::Semaphore>,
    idle_timeout: std::time::Duration,
}

impl UnknownLengthBudget {
    pub fn new(idle_timeout: std::time::Duration) -> Self {
        Self { memory: Arc::new(tokio::sync::Semaphore::new(64 << 10)), idle_timeout }
    }
}

fn needs_known_length<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    let text = |name: http::header::HeaderName| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let chunked = text(http::header::TRANSFER_ENCODING).to_ascii_lowercase().contains("chunked");
    let sigv4_header = text(http::header::AUTHORIZATION).starts_with(sealbox_auth::ALGORITHM);
    let payload = h.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()).unwrap_or("");
    let aws_chunked = payload.starts_with("STREAMING-")
        || text(http::header::CONTENT_ENCODING).to_ascii_lowercase().contains("aws-chunked");
    req.method() == http::Method::PUT
        && chunked
        && !h.contains_key(http::header::CONTENT_LENGTH)
        && sigv4_header
        && !aws_chunked
}

/// An S3 error answer made here (before s3s).
fn s3_refusal(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    resp
}

/// Errors raised inside s3s (signature checks, XML parsing) carry a code but no message; clients
/// then print "Unknown". Fill in AWS's wording for the common ones, and the request id AWS puts in
/// every error document (the same as the `x-amz-request-id` header).
fn fill_error_message(resp: &mut Response<Body>, rid: &str) {
    if !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return;
    }
    let Some(bytes) = resp.body().bytes() else {
        return;
    };
    if bytes.len() > 8192 {
        return;
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return;
    };
    let Some(code) = text.split("<Code>").nth(1).and_then(|r| r.split("</Code>").next()) else {
        return;
    };
    let mut filled = text.to_owned();
    if !filled.contains("<RequestId>") {
        filled = filled.replacen("</Error>", &format!("<RequestId>{rid}</RequestId></Error>"), 1);
    }
    if !filled.contains("<Message>") {
        if let Some(message) = default_message(code) {
            filled = filled.replacen("</Code>", &format!("</Code><Message>{message}</Message>"), 1);
        }
    }
    let len = filled.len();
    *resp.body_mut() = Body::from(filled);
    if let Ok(v) = http::HeaderValue::from_str(&len.to_string()) {
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, v);
    }
}

/// AWS's wording for the errors s3s raises without a message.
fn default_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "SignatureDoesNotMatch" => "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "AccessDenied" => "Access Denied",
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "AuthorizationHeaderMalformed" => "The authorization header is malformed.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against our published schema",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "XAmzContentSHA256Mismatch" => "The provided 'x-amz-content-sha256' header does not match what was computed.",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        "IncompleteBody" => "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        _ => return None,
    })
}
