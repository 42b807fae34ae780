//! SigV4 at the front door, all through `sealbox-auth`: the envelope of S3 requests is checked
//! before s3s verifies their signature (one auth mechanism, presigned lifetime, every `x-amz-*`
//! header signed), and every other API (KMS, IAM, CloudTrail, `/_sealbox/rewrap`) is verified
//! here. Which status and code each refusal gets is decided by `AuthError::code`; this module
//! only puts it in the API's wire shape.

use http::{Request, Response, StatusCode};
use s3s::Body;
use sealbox_auth::{AuthError, AuthScheme, Expected, Protocol, SecretAccessKey, SignedRequest, VerifiedCaller};

use crate::identity::KeyRing;

/// The request's headers as `sealbox-auth` reads them. A value that is not UTF-8 is passed as
/// empty: the names still count for the signed-header rule, and a signed one then fails.
pub fn header_pairs(headers: &http::HeaderMap) -> Vec<(&str, &str)> {
    headers.iter().map(|(n, v)| (n.as_str(), std::str::from_utf8(v.as_bytes()).unwrap_or(""))).collect()
}

/// Status, code and message of an auth refusal in `protocol`.
pub fn answer(e: &AuthError, protocol: Protocol) -> (u16, &'static str, String) {
    let code = e.code(protocol);
    (code.status, code.code, e.to_string())
}

/// Checks an S3 request's authentication envelope; `Some` is the refusal to send instead of
/// handing the request to s3s (which verifies only the headers a request names as signed, accepts
/// any region in a SigV4 scope and never looks at a SigV2 request's date).
pub fn check_s3_envelope<B>(req: &Request<B>, region: &str, request_id: &str) -> Option<Response<Body>> {
    let headers = header_pairs(req.headers());
    let expected = sealbox_auth::S3Envelope { region, now: time::OffsetDateTime::now_utc() };
    match sealbox_auth::check_s3_request(&headers, req.uri().query().unwrap_or(""), expected) {
        Ok(AuthScheme::Anonymous | AuthScheme::SigV2 | AuthScheme::HeaderV4 | AuthScheme::PresignedV4) => None,
        Err(e) => {
            tracing::debug!(error = %e, method = %req.method(), path = %req.uri().path(), "S3 request refused before verification");
            Some(s3_error(&e, req.method(), req.headers(), request_id))
        }
    }
}

/// Verifies a non-S3 API request with `sealbox-auth`: who signed it.
pub fn verify(
    keyring: &KeyRing,
    parts: &http::request::Parts,
    body: &[u8],
    expected: Expected<'_>,
) -> Result<VerifiedCaller, AuthError> {
    let headers = header_pairs(&parts.headers);
    let body_hash = sealbox_auth::hex_sha256(body);
    let request = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256_hex: &body_hash,
    };
    let lookup = |id: &str| keyring.secret(id).map(|s| SecretAccessKey::new(s.as_str()));
    sealbox_auth::verify(&request, lookup, time::OffsetDateTime::now_utc(), expected)
}

/// An S3 `<Error>` document for an auth refusal, with AWS's extra elements (`HeadersNotSigned`,
/// `ArgumentName`/`ArgumentValue`, `Region`, the skew times). HEAD answers carry no body, as
/// S3's; the region then travels in `x-amz-bucket-region`.
pub fn s3_error(e: &AuthError, method: &http::Method, headers: &http::HeaderMap, request_id: &str) -> Response<Body> {
    let (status, code, message) = answer(e, Protocol::RestXml);
    let mut extra = String::new();
    let mut bucket_region = None;
    match e {
        AuthError::UnsignedHeaders { names } => {
            extra = format!("<HeadersNotSigned>{}</HeadersNotSigned>", xml_escape(&names.join(", ")));
        }
        AuthError::WrongRegion { expected, .. } => {
            extra = format!("<Region>{}</Region>", xml_escape(expected));
            bucket_region = Some(expected.clone());
        }
        AuthError::RequestTimeTooSkewed { request_time, server_time } => {
            extra = format!(
                "<RequestTime>{}</RequestTime><ServerTime>{}</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>",
                xml_escape(request_time),
                xml_escape(server_time)
            );
        }
        AuthError::MultipleAuthMechanisms | AuthError::UnsupportedAuthorizationType => {
            let value = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
            extra = format!(
                "<ArgumentName>Authorization</ArgumentName><ArgumentValue>{}</ArgumentValue>",
                xml_escape(value)
            );
        }
        _ => {}
    }
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>{extra}<RequestId>{request_id}</RequestId></Error>",
        xml_escape(&message)
    );
    let body = if method == http::Method::HEAD { Body::empty() } else { Body::from(xml) };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert("x-amz-request-id", v);
    }
    if let Some(v) = bucket_region.and_then(|r| http::HeaderValue::from_str(&r).ok()) {
        h.insert("x-amz-bucket-region", v);
    }
    resp
}

/// Client side (the admin and rewrap CLIs): signs a request with `sealbox-auth`, its body
/// included, sends it, and returns the status and body of the answer.
pub struct SignedCall<'a> {
    pub endpoint: &'a str,
    pub access_key_id: &'a str,
    pub secret: &'a SecretAccessKey,
    pub service: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: bytes::Bytes,
}

pub async fn send(call: SignedCall<'_>) -> anyhow::Result<(StatusCode, bytes::Bytes)> {
    use anyhow::Context;
    use http_body_util::BodyExt;
    let endpoint = call.endpoint.trim_end_matches('/');
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let mut signed: Vec<(&str, &str)> = vec![("host", host)];
    signed.extend_from_slice(call.headers);
    let payload = sealbox_auth::hex_sha256(&call.body);
    let request = sealbox_auth::RequestToSign {
        method: call.method,
        path: call.path,
        query: call.query,
        headers: &signed,
        payload_sha256: &payload,
    };
    let credentials = sealbox_auth::Credentials {
        access_key_id: call.access_key_id,
        secret: call.secret,
        region: "us-east-1",
        service: call.service,
    };
    let added = sealbox_auth::sign(&request, &credentials, time::OffsetDateTime::now_utc());
    let uri = match call.query {
        "" => format!("{endpoint}{}", call.path),
        q => format!("{endpoint}{}?{q}", call.path),
    };
    let mut req = Request::builder().method(call.method).uri(uri);
    for (name, value) in signed.iter().copied().chain(added.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
        req = req.header(name, value);
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = client
        .request(req.body(http_body_util::Full::new(call.body))?)
        .await
        .with_context(|| format!("while calling {endpoint}"))?;
    let status = resp.status();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// Escapes element text (quotes need no escaping there; AWS leaves them as they are).
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], query: &str) -> Request<()> {
        let mut b = Request::builder().method("PUT").uri(format!("http://h/b/k{query}"));
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn unsigned_header_refusal_is_s3s_shaped() {
        let auth = "AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let req = request(&[("authorization", auth), ("x-amz-copy-source", "/beta/secret")], "");
        let resp = check_s3_envelope(&req, "us-east-1", "RID").expect("refused");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body = String::from_utf8(resp.into_body().bytes().unwrap().to_vec()).unwrap();
        assert!(body.contains("<Code>AccessDenied</Code><Message>There were headers present in the request which were not signed</Message><HeadersNotSigned>x-amz-copy-source</HeadersNotSigned>"), "{body}");
        assert!(check_s3_envelope(&request(&[("authorization", auth)], ""), "us-east-1", "RID").is_none());
        assert!(check_s3_envelope(&request(&[("x-amz-meta-a", "1")], "?prefix=a"), "us-east-1", "RID").is_none());
    }

    #[test]
    fn conflicting_mechanisms_echo_the_header_escaped() {
        let req = request(&[("authorization", "AWS4-HMAC-SHA256 <x>")], "?X-Amz-Algorithm=AWS4-HMAC-SHA256");
        let resp = check_s3_envelope(&req, "us-east-1", "RID").expect("refused");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = String::from_utf8(resp.into_body().bytes().unwrap().to_vec()).unwrap();
        assert!(body.contains("<Code>InvalidArgument</Code>"), "{body}");
        assert!(body.contains("<ArgumentValue>AWS4-HMAC-SHA256 &lt;x&gt;</ArgumentValue>"), "{body}");
        let head = s3_error(&AuthError::MultipleAuthMechanisms, &http::Method::HEAD, req.headers(), "RID");
        assert_eq!(head.into_body().bytes().unwrap().len(), 0);
    }

    #[test]
    fn a_wrong_region_names_the_right_one() {
        let auth = "AWS4-HMAC-SHA256 Credential=AK/20261124/US/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let req = request(&[("authorization", auth)], "");
        let resp = check_s3_envelope(&req, "us-east-1", "RID1").expect("refused");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()["x-amz-bucket-region"], "us-east-1");
        assert_eq!(resp.headers()["x-amz-request-id"], "RID1");
        let body = String::from_utf8(resp.into_body().bytes().unwrap().to_vec()).unwrap();
        assert!(body.contains("<Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'US' is wrong; expecting 'us-east-1'</Message><Region>us-east-1</Region><RequestId>RID1</RequestId>"), "{body}");
    }
}
