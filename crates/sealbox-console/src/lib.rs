//! sealbox-console: the web console served by `sealbox serve` at `/console`, on the same
//! listeners as the APIs.
//!
//! Owns: the embedded pages (`assets/`: plain HTML, CSS and JavaScript, no build step), the
//! sign-in that exchanges an access key id and secret for a server-side session (`session.rs`:
//! HttpOnly + SameSite=Strict cookie, Secure over HTTPS, idle and absolute expiry, a CSRF token
//! on every state change, sign-in throttling), and the gateway (`proxy.rs`) that turns each
//! console action into the real S3/KMS/IAM/CloudTrail request, signs it with the session's key and
//! sends it through the server's own router ([`ConsoleHost::dispatch`]). So every action is
//! authenticated, authorised by the same policy engine, audited and counted exactly like the API
//! call it stands for, and the console has no API logic of its own.
//!
//! Must never: send a secret to the browser (the user's own, or any other) except the one
//! `CreateAccessKey` returns, keep a secret beyond a request, act without a live session and (for
//! anything but a read) its CSRF token, or serve object bytes as something the browser would run
//! on the console's origin.
//!
//! Start at [`Console::handle`].

mod assets;
mod proxy;
mod reply;
mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use s3s::Body;
use sealbox_auth::SecretAccessKey;
use serde::Serialize;
use zeroize::Zeroizing;

pub use proxy::Api;
pub use session::{SessionLimits, SessionStore, SessionView, SigninThrottle};

use reply::{json_error, json_ok};

/// The session cookie (scoped to `/console`, so API requests never carry it).
pub const COOKIE_NAME: &str = "sealbox_console";
/// The header that carries the session's CSRF token on every state change.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest KMS/IAM/CloudTrail document or sign-in form the console reads.
const MAX_DOCUMENT: usize = 1 << 20;

/// The connection a browser request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub is_tls: bool,
}

/// Who an access key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub arn: String,
    /// `None` for the account root user.
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
}

/// Something about a session for the audit trail (CloudTrail's `ConsoleLogin` and friends).
#[derive(Debug, Clone)]
pub struct SessionEvent {
    pub kind: SessionEventKind,
    /// The access key the browser named (for a failed sign-in: as claimed, unproven).
    pub access_key_id: String,
    pub identity: Option<Identity>,
    pub peer: Option<Peer>,
    pub user_agent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEventKind {
    SignIn,
    SignInFailed,
    SignOut,
}

/// The event could not be recorded: a sign-in is then refused.
#[derive(Debug)]
pub struct NotRecorded;

/// Refused by policy.
#[derive(Debug)]
pub struct Denied(pub String);

/// What the console needs from the server it is part of.
pub trait ConsoleHost: Send + Sync + 'static {
    /// Sends a signed API request through the server's own router, as if it had arrived on the
    /// browser's connection (its address and TLS state feed policy conditions and the audit).
    fn dispatch(&self, req: Request<Body>, peer: Option<Peer>) -> BoxFuture<'static, Response<Body>>;
    /// The secret and identity of an access key the server accepts right now.
    fn credentials(&self, access_key_id: &str) -> Option<(SecretAccessKey, Identity)>;
    /// Records a session event durably; a sign-in that cannot be recorded does not happen.
    fn record(&self, event: SessionEvent) -> BoxFuture<'static, Result<(), NotRecorded>>;
    /// Facts for the Health page (version, uptime, listeners, TLS, request counts).
    fn server_status(&self) -> serde_json::Value;
    /// Verification of the audit trail for the Audit page, if the policies of `identity` allow
    /// it (authorised and recorded like an API call).
    fn audit_status(
        &self,
        access_key_id: &str,
        identity: &Identity,
        peer: Option<Peer>,
        user_agent: &str,
    ) -> BoxFuture<'static, Result<serde_json::Value, Denied>>;
}

/// Console settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub limits: SessionLimits,
    /// Region the console signs for.
    pub region: String,
    /// `Host` of the API requests the console sends (a configured base domain, or a name that
    /// is none, so S3 reads them path-style).
    pub api_host: String,
    /// Base domains of virtual-hosted-style requests: `bucket.domain/console/...` is an object.
    pub domains: Vec<String>,
}

pub struct Console {
    host: Arc<dyn ConsoleHost>,
    config: ConsoleConfig,
    sessions: Mutex<SessionStore>,
    throttle: Mutex<SigninThrottle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request from the browser, after the session checks.
struct Signed {
    session: SessionView,
    secret: SecretAccessKey,
}

impl Console {
    pub fn new(host: Arc<dyn ConsoleHost>, config: ConsoleConfig) -> Self {
        let sessions = Mutex::new(SessionStore::new(config.limits));
        Self { host, config, sessions, throttle: Mutex::new(SigninThrottle::default()) }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Whether a request is the console's: `/console` or below it, carrying no AWS signature, and
    /// not addressed to a bucket by its host name. (A path-style request to a bucket named
    /// `console` is signed, so it still reaches S3.)
    pub fn claims<B>(&self, req: &Request<B>) -> bool {
        is_console_request(req, &self.config.domains)
    }

    /// Answers one console request.
    pub async fn handle(&self, req: Request<Body>, peer: Option<Peer>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        if let Some(refusal) = self.cross_site_refusal(&req) {
            return refusal;
        }
        match (method.clone(), path.as_str()) {
            (Method::GET, "/console") => reply::redirect("/console/"),
            (Method::GET | Method::HEAD, p) if !p.starts_with("/console/api/") => assets::serve(p),
            (Method::POST, "/console/api/signin") => self.sign_in(req, peer).await,
            (_, p) if p.starts_with("/console/api/") => self.api(req, peer).await,
            _ => json_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not a console page"),
        }
    }

    /// Requests a browser sends on behalf of another site are refused outright: a state change
    /// whose `Origin` is not this server, or anything a browser marks `Sec-Fetch-Site: cross-site`.
    /// (The cookie is SameSite=Strict and changes need the CSRF token too; this is the third wall.)
    fn cross_site_refusal(&self, req: &Request<Body>) -> Option<Response<Body>> {
        let h = req.headers();
        let fetch_site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()).unwrap_or("");
        if fetch_site == "cross-site" || fetch_site == "same-site" {
            return Some(json_error(StatusCode::FORBIDDEN, "CrossSiteRequest", "cross-site requests are refused"));
        }
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            return None;
        }
        let origin = h.get(http::header::ORIGIN).and_then(|v| v.to_str().ok())?;
        let host = h.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.split("://").nth(1).unwrap_or("");
        if origin_host.eq_ignore_ascii_case(host) {
            None
        } else {
            Some(json_error(StatusCode::FORBIDDEN, "CrossSiteRequest", "the request's Origin is not this server"))
        }
    }

    /// `POST /console/api/signin` `{"accessKeyId": ..., "secretAccessKey": ...}`.
    async fn sign_in(&self, req: Request<Body>, peer: Option<Peer>) -> Response<Body> {
        let ip = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| p.addr.ip());
        let is_json = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", "send JSON");
        }
        if !lock(&self.throttle).allows(ip, self.now()) {
            return json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyAttempts",
                "Too many failed sign-ins from this address; try again in a few minutes.",
            );
        }
        let user_agent = reply::user_agent(req.headers());
        let Ok(body) = read_document(req.into_body()).await else {
            return json_error(StatusCode::BAD_REQUEST, "MalformedRequest", "the sign-in form could not be read");
        };
        let form: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let access_key_id: String =
            form["accessKeyId"].as_str().unwrap_or("").chars().filter(char::is_ascii_alphanumeric).take(128).collect();
        let offered = Zeroizing::new(form["secretAccessKey"].as_str().unwrap_or("").to_owned());
        drop(form);
        let found = self.host.credentials(&access_key_id);
        let accepted = match &found {
            Some((secret, _)) => session::secrets_equal(secret.expose().as_bytes(), offered.as_bytes()),
            None => false,
        };
        let event = |kind, identity| SessionEvent {
            kind,
            access_key_id: access_key_id.clone(),
            identity,
            peer,
            user_agent: user_agent.clone(),
        };
        let identity = match (accepted, found) {
            (true, Some((_, identity))) => identity,
            _ => {
                lock(&self.throttle).failed(ip, self.now());
                let _ = self.host.record(event(SessionEventKind::SignInFailed, None)).await;
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "SignInFailed",
                    "The access key id or secret access key is wrong (or the key is inactive).",
                );
            }
        };
        if self.host.record(event(SessionEventKind::SignIn, Some(identity.clone()))).await.is_err() {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "AuditUnavailable",
                "The sign-in could not be recorded on the audit trail, so it was refused.",
            );
        }
        lock(&self.throttle).succeeded(ip);
        let created = lock(&self.sessions).create(&access_key_id, identity, self.now());
        let Ok((token, view)) = created else {
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "TooManySessions", "too many console sessions");
        };
        let mut resp = json_ok(&session_json(&view));
        let secure = peer.is_some_and(|p| p.is_tls);
        reply::set_cookie(&mut resp, &reply::session_cookie(&token, self.config.limits.absolute, secure));
        resp
    }

    /// The session behind the request's cookie, checked and marked as used.
    fn session_of(&self, req: &Request<Body>) -> Option<(String, SessionView)> {
        let token = reply::cookie(req.headers(), COOKIE_NAME)?;
        let view = lock(&self.sessions).touch(&token, self.now())?;
        Some((token, view))
    }

    /// Everything under `/console/api/` except sign-in: needs a live session, and its CSRF token
    /// for anything but a read.
    async fn api(&self, req: Request<Body>, peer: Option<Peer>) -> Response<Body> {
        let secure = peer.is_some_and(|p| p.is_tls);
        let Some((token, session)) = self.session_of(&req) else {
            let mut resp = json_error(StatusCode::UNAUTHORIZED, "SessionExpired", "Sign in to the console.");
            reply::set_cookie(&mut resp, &reply::clear_cookie(secure));
            return resp;
        };
        let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
        if !is_read {
            let sent = req.headers().get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or(b"");
            if !session::secrets_equal(sent, session.csrf_token.as_bytes()) {
                return json_error(
                    StatusCode::FORBIDDEN,
                    "InvalidCsrfToken",
                    "This change was not sent by the console page (the CSRF token is missing or wrong).",
                );
            }
        }
        // The key may have been deleted or deactivated since sign-in: the session ends with it.
        let Some((secret, _)) = self.host.credentials(&session.access_key_id) else {
            lock(&self.sessions).remove_access_key(&session.access_key_id);
            let mut resp =
                json_error(StatusCode::UNAUTHORIZED, "SessionExpired", "The access key of this session is gone.");
            reply::set_cookie(&mut resp, &reply::clear_cookie(secure));
            return resp;
        };
        let signed = Signed { session, secret };
        let path = req.uri().path().to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/console/api/session") => json_ok(&session_json(&signed.session)),
            (Method::POST, "/console/api/signout") => self.sign_out(&token, signed, peer, &req).await,
            (Method::GET, "/console/api/server") => json_ok(&self.host.server_status()),
            (Method::GET, "/console/api/audit-status") => {
                let ua = reply::user_agent(req.headers());
                let s = &signed.session;
                match self.host.audit_status(&s.access_key_id, &s.identity, peer, &ua).await {
                    Ok(v) => json_ok(&v),
                    Err(Denied(m)) => json_error(StatusCode::FORBIDDEN, "AccessDenied", &m),
                }
            }
            (_, p) if p == "/console/api/s3" || p.starts_with("/console/api/s3/") => {
                self.forward_s3(req, &signed, peer).await
            }
            (Method::POST, "/console/api/kms") => self.forward_document(req, Api::Kms, &signed, peer).await,
            (Method::POST, "/console/api/iam") => self.forward_document(req, Api::Iam, &signed, peer).await,
            (Method::POST, "/console/api/cloudtrail") => {
                self.forward_document(req, Api::CloudTrail, &signed, peer).await
            }
            _ => json_error(StatusCode::NOT_FOUND, "NotFound", "no such console endpoint"),
        }
    }

    async fn sign_out(&self, token: &str, signed: Signed, peer: Option<Peer>, req: &Request<Body>) -> Response<Body> {
        lock(&self.sessions).remove(token);
        let event = SessionEvent {
            kind: SessionEventKind::SignOut,
            access_key_id: signed.session.access_key_id.clone(),
            identity: Some(signed.session.identity.clone()),
            peer,
            user_agent: reply::user_agent(req.headers()),
        };
        let _ = self.host.record(event).await;
        let mut resp = json_ok(&serde_json::json!({"signedOut": true}));
        reply::set_cookie(&mut resp, &reply::clear_cookie(peer.is_some_and(|p| p.is_tls)));
        resp
    }

    fn signer<'a>(&'a self, signed: &'a Signed) -> proxy::Signer<'a> {
        proxy::Signer {
            access_key_id: &signed.session.access_key_id,
            secret: &signed.secret,
            region: &self.config.region,
            host: &self.config.api_host,
        }
    }

    /// `ANY /console/api/s3/<bucket>/<key>?<query>`: the same S3 request, signed by the user,
    /// the body streamed through unbuffered (`UNSIGNED-PAYLOAD`).
    async fn forward_s3(&self, req: Request<Body>, signed: &Signed, peer: Option<Peer>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let rest = parts.uri.path().strip_prefix("/console/api/s3").unwrap_or("");
        let path = if rest.is_empty() { "/" } else { rest };
        let mut headers = proxy::s3_headers(&parts.headers);
        headers.push(console_user_agent(&parts.headers));
        let out = proxy::Outgoing {
            api: Api::S3,
            method: parts.method.clone(),
            path,
            query: parts.uri.query().unwrap_or(""),
            headers,
            signed_body: None,
            body,
        };
        self.send(out, signed, peer).await
    }

    /// `POST /console/api/{kms,iam,cloudtrail}`: the JSON or form document of the API call, with
    /// `X-Amz-Target` naming the KMS operation (CloudTrail: LookupEvents only).
    async fn forward_document(
        &self,
        req: Request<Body>,
        api: Api,
        signed: &Signed,
        peer: Option<Peer>,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        let (content_type, target) = match api {
            Api::Kms if target.starts_with("TrentService.") => ("application/x-amz-json-1.1", Some(target.to_owned())),
            Api::Kms => return json_error(StatusCode::BAD_REQUEST, "MissingTarget", "X-Amz-Target: TrentService.<Op>"),
            Api::CloudTrail => (
                "application/x-amz-json-1.1",
                Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents".to_owned()),
            ),
            Api::Iam => ("application/x-www-form-urlencoded; charset=utf-8", None),
            Api::S3 => return json_error(StatusCode::BAD_REQUEST, "NotADocumentApi", "use /console/api/s3"),
        };
        let Ok(document) = read_document(body).await else {
            return json_error(StatusCode::PAYLOAD_TOO_LARGE, "DocumentTooLarge", "the request document is too large");
        };
        let mut headers = vec![
            (http::header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            console_user_agent(&parts.headers),
        ];
        if let Some(t) = target.and_then(|t| HeaderValue::from_str(&t).ok()) {
            headers.push((HeaderName::from_static("x-amz-target"), t));
        }
        let out = proxy::Outgoing {
            api,
            method: Method::POST,
            path: "/",
            query: "",
            headers,
            signed_body: Some(document),
            body: Body::empty(),
        };
        self.send(out, signed, peer).await
    }

    async fn send(&self, out: proxy::Outgoing<'_>, signed: &Signed, peer: Option<Peer>) -> Response<Body> {
        let request = match proxy::sign(out, &self.signer(signed), time::OffsetDateTime::now_utc()) {
            Ok(r) => r,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, "MalformedRequest", &e.to_string()),
        };
        proxy::sanitize_response(self.host.dispatch(request, peer).await)
    }
}

/// See [`Console::claims`].
fn is_console_request<B>(req: &Request<B>, domains: &[String]) -> bool {
    let path = req.uri().path();
    if path != "/console" && !path.starts_with("/console/") {
        return false;
    }
    if req.headers().contains_key(http::header::AUTHORIZATION) {
        return false;
    }
    let query = req.uri().query().unwrap_or("");
    let signed_query = query.split('&').any(|p| {
        let name = p.split('=').next().unwrap_or("");
        matches!(name, "X-Amz-Signature" | "X-Amz-Credential" | "Signature" | "AWSAccessKeyId")
    });
    if signed_query {
        return false;
    }
    let host = req.headers().get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| if port.parse::<u16>().is_ok() { h } else { host });
    !domains.iter().any(|d| host.len() > d.len() && host.ends_with(&format!(".{d}")))
}

/// The user agent of the API requests: the console, and which browser it served.
fn console_user_agent(browser: &http::HeaderMap) -> (HeaderName, HeaderValue) {
    let ua = format!("sealbox-console/{} ({})", env!("CARGO_PKG_VERSION"), reply::user_agent(browser));
    let value = HeaderValue::from_str(&ua).unwrap_or(HeaderValue::from_static("sealbox-console"));
    (http::header::USER_AGENT, value)
}

fn session_json(view: &SessionView) -> serde_json::Value {
    serde_json::json!({
        "accessKeyId": view.access_key_id,
        "arn": view.identity.arn,
        "userName": view.identity.user_name,
        "isRoot": view.identity.user_name.is_none(),
        "csrfToken": view.csrf_token,
        "expiresInSeconds": view.expires_in.as_secs(),
    })
}

/// A small request document, read whole (bounded).
async fn read_document(body: Body) -> Result<Bytes, ()> {
    match Limited::new(body, MAX_DOCUMENT).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri(path);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn only_unsigned_console_paths_on_the_base_host_are_the_consoles() {
        let none: Vec<String> = Vec::new();
        assert!(is_console_request(&req("/console", &[]), &none));
        assert!(is_console_request(&req("/console/api/s3/b?list-type=2", &[("host", "localhost:9000")]), &none));
        assert!(!is_console_request(&req("/consoles/x", &[]), &none), "bucket consoles");
        assert!(!is_console_request(&req("/b/console/x", &[]), &none));
        let signed = ("authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request");
        assert!(!is_console_request(&req("/console/key", &[signed]), &none), "bucket console, signed");
        assert!(!is_console_request(&req("/console/key?X-Amz-Signature=00&X-Amz-Credential=a", &[]), &none));
        assert!(!is_console_request(&req("/console/key?AWSAccessKeyId=a&Signature=s", &[]), &none));
        let domains = vec!["s3.example.com".to_owned()];
        let base = ("host", "s3.example.com:9000");
        let vhost = ("host", "photos.s3.example.com");
        assert!(is_console_request(&req("/console/", &[base]), &domains));
        assert!(!is_console_request(&req("/console/index.html", &[vhost]), &domains), "object console/index.html");
    }
}
