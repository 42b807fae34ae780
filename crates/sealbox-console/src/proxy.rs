//! Turning a console action into the real API request it stands for: the browser names the
//! S3 path (or sends a KMS/IAM/CloudTrail document); this module builds that AWS request, signs
//! every header it carries with the signed-in user's key (`sealbox-auth`), and hands it to the
//! server's own router. Authentication, policy, audit and metrics then apply exactly as to a
//! request from the network: there is no second implementation of any API here.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use s3s::Body;
use sealbox_auth::{Credentials, RequestToSign, SecretAccessKey, UNSIGNED_PAYLOAD};

/// Which API a console request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    S3,
    Kms,
    Iam,
    CloudTrail,
}

impl Api {
    pub fn service(self) -> &'static str {
        match self {
            Api::S3 => "s3",
            Api::Kms => "kms",
            Api::Iam => "iam",
            Api::CloudTrail => "cloudtrail",
        }
    }
}

/// Request headers a browser may pass on to S3: content description, conditionals, ranges, and
/// the `x-amz-*` request headers (SSE choice, metadata, tagging, copy source). Everything else
/// (cookies, the browser's own headers) stays behind; `authorization`, `x-amz-date`,
/// `x-amz-content-sha256` and `x-amz-security-token` are the console's to set.
fn forwardable_s3_header(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "content-length"
            | "content-md5"
            | "content-encoding"
            | "content-disposition"
            | "content-language"
            | "cache-control"
            | "expires"
            | "range"
            | "if-match"
            | "if-none-match"
            | "if-modified-since"
            | "if-unmodified-since"
    ) || (name.starts_with("x-amz-")
        && !matches!(name, "x-amz-date" | "x-amz-content-sha256" | "x-amz-security-token" | "x-amz-target"))
}

/// What to sign and send.
pub struct Outgoing<'a> {
    pub api: Api,
    pub method: Method,
    /// Percent-encoded path as it will be sent (S3: `/bucket/key`; the others `/`).
    pub path: &'a str,
    /// Raw query without `?`.
    pub query: &'a str,
    /// Headers besides `host` (lower-case names); all of them are signed.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `Some` for the small JSON/form APIs (the body is signed); `None` streams `body` unsigned
    /// (`UNSIGNED-PAYLOAD`, S3 only).
    pub signed_body: Option<Bytes>,
    pub body: Body,
}

/// Who signs: the signed-in user's key, for the server's region.
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a SecretAccessKey,
    pub region: &'a str,
    /// `Host` of the requests (a configured base domain, so S3 reads them path-style).
    pub host: &'a str,
}

/// The headers of `browser` an S3 request may carry on.
pub fn s3_headers(browser: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    browser
        .iter()
        .filter(|(name, _)| forwardable_s3_header(name.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// Builds the signed request. Every header it carries is in `SignedHeaders`.
pub fn sign(out: Outgoing<'_>, signer: &Signer<'_>, now: time::OffsetDateTime) -> Result<Request<Body>, http::Error> {
    let payload_hash = match &out.signed_body {
        Some(bytes) => sealbox_auth::hex_sha256(bytes),
        None => UNSIGNED_PAYLOAD.to_owned(),
    };
    // Header values that are not visible ASCII cannot be signed reliably: they are dropped (no
    // header the console sends needs one).
    let mut pairs: Vec<(String, String)> = vec![("host".to_owned(), signer.host.to_owned())];
    for (name, value) in &out.headers {
        if let Ok(v) = value.to_str() {
            pairs.push((name.as_str().to_owned(), v.to_owned()));
        }
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let request = RequestToSign {
        method: out.method.as_str(),
        path: out.path,
        query: out.query,
        headers: &borrowed,
        payload_sha256: &payload_hash,
    };
    let credentials = Credentials {
        access_key_id: signer.access_key_id,
        secret: signer.secret,
        region: signer.region,
        service: out.api.service(),
    };
    let added = sealbox_auth::sign(&request, &credentials, now);
    let uri = match out.query {
        "" => out.path.to_owned(),
        q => format!("{}?{q}", out.path),
    };
    let mut builder = Request::builder().method(out.method).uri(uri);
    for (name, value) in borrowed.iter().copied().chain(added.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
        builder = builder.header(name, value);
    }
    let body = match out.signed_body {
        Some(bytes) => Body::from(bytes),
        None => out.body,
    };
    builder.body(body)
}

/// Response headers that never go back to the browser.
fn hidden_response_header(name: &str) -> bool {
    matches!(name, "set-cookie" | "connection" | "keep-alive" | "proxy-authenticate" | "upgrade")
}

/// Makes an API response safe to hand to the browser on the console's origin: object bytes are
/// always a download in a sandbox (an uploaded HTML file must never run as the console), never
/// cached, never sniffed.
pub fn sanitize_response(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    let hidden: Vec<HeaderName> = h.keys().filter(|n| hidden_response_header(n.as_str())).cloned().collect();
    for name in hidden {
        h.remove(name);
    }
    let is_attachment = h
        .get(http::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("attachment"));
    if !is_attachment {
        h.insert(http::header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    h.insert(http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretAccessKey {
        SecretAccessKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    }

    fn verify(req: &Request<Body>, body: &[u8], service: &str) -> Result<String, sealbox_auth::AuthError> {
        let headers: Vec<(&str, &str)> =
            req.headers().iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap_or(""))).collect();
        let hash = sealbox_auth::hex_sha256(body);
        let signed = sealbox_auth::SignedRequest {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            headers: &headers,
            body_sha256_hex: if service == "s3" { UNSIGNED_PAYLOAD } else { &hash },
        };
        let lookup = |id: &str| (id == "AKIDCONSOLE").then(secret);
        let expected = sealbox_auth::Expected { service, unsigned_payload: service == "s3" };
        sealbox_auth::verify(&signed, lookup, time::OffsetDateTime::now_utc(), expected).map(|c| c.access_key_id)
    }

    fn signed_header_names(req: &Request<Body>) -> Vec<String> {
        let auth = req.headers()["authorization"].to_str().unwrap();
        let list = auth.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
        list.split(';').map(str::to_owned).collect()
    }

    #[test]
    fn every_header_sent_is_signed_and_verifies() {
        let mut browser = HeaderMap::new();
        browser.insert("content-type", HeaderValue::from_static("text/plain"));
        browser.insert("content-length", HeaderValue::from_static("5"));
        browser.insert("x-amz-server-side-encryption", HeaderValue::from_static("aws:kms"));
        browser.insert("x-amz-server-side-encryption-aws-kms-key-id", HeaderValue::from_static("alias/a"));
        browser.insert("cookie", HeaderValue::from_static("sealbox_console=secret-session"));
        browser.insert("x-csrf-token", HeaderValue::from_static("t"));
        browser.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 forged"));
        browser.insert("x-amz-date", HeaderValue::from_static("20000101T000000Z"));
        let secret = secret();
        let signer = Signer { access_key_id: "AKIDCONSOLE", secret: &secret, region: "us-east-1", host: "localhost" };
        let out = Outgoing {
            api: Api::S3,
            method: Method::PUT,
            path: "/bucket/a%20b.txt",
            query: "",
            headers: s3_headers(&browser),
            signed_body: None,
            body: Body::from("hello".to_owned()),
        };
        let req = sign(out, &signer, time::OffsetDateTime::now_utc()).unwrap();
        assert_eq!(verify(&req, b"", "s3").unwrap(), "AKIDCONSOLE");
        let signed = signed_header_names(&req);
        for name in req.headers().keys() {
            if name != "authorization" {
                assert!(signed.contains(&name.as_str().to_owned()), "{name} is sent but not signed");
            }
        }
        assert!(req.headers().get("cookie").is_none(), "the browser's cookie never reaches the API");
        assert!(req.headers().get("x-csrf-token").is_none());
        assert_ne!(req.headers()["x-amz-date"], "20000101T000000Z");
        assert!(!req.headers()["authorization"].to_str().unwrap().contains("forged"));
    }

    #[test]
    fn json_apis_sign_their_body() {
        let secret = secret();
        let signer = Signer { access_key_id: "AKIDCONSOLE", secret: &secret, region: "us-east-1", host: "localhost" };
        let body = Bytes::from_static(br#"{"KeyId":"alias/a"}"#);
        let out = Outgoing {
            api: Api::Kms,
            method: Method::POST,
            path: "/",
            query: "",
            headers: vec![
                (HeaderName::from_static("content-type"), HeaderValue::from_static("application/x-amz-json-1.1")),
                (HeaderName::from_static("x-amz-target"), HeaderValue::from_static("TrentService.DisableKey")),
            ],
            signed_body: Some(body.clone()),
            body: Body::empty(),
        };
        let req = sign(out, &signer, time::OffsetDateTime::now_utc()).unwrap();
        assert_eq!(verify(&req, &body, "kms").unwrap(), "AKIDCONSOLE");
        assert!(verify(&req, br#"{"KeyId":"alias/b"}"#, "kms").is_err(), "a changed body fails");
        assert!(signed_header_names(&req).contains(&"x-amz-target".to_owned()));
    }

    #[test]
    fn responses_are_downloads_in_a_sandbox() {
        let resp = Response::builder()
            .header("content-type", "text/html")
            .header("content-disposition", "inline")
            .header("set-cookie", "x=y")
            .body(Body::from("<script>alert(1)</script>".to_owned()))
            .unwrap();
        let resp = sanitize_response(resp);
        assert_eq!(resp.headers()["content-disposition"], "attachment");
        assert_eq!(resp.headers()["content-security-policy"], "default-src 'none'; sandbox");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert!(resp.headers().get("set-cookie").is_none());
        let named = Response::builder()
            .header("content-disposition", "attachment; filename=\"a.txt\"")
            .body(Body::empty())
            .unwrap();
        assert_eq!(sanitize_response(named).headers()["content-disposition"], "attachment; filename=\"a.txt\"");
    }
}
