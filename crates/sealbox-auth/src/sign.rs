//! Client side: the headers (or query) that make a request verifiable.

use time::OffsetDateTime;

use crate::canonical::{canonical_headers, canonical_query, canonical_uri, uri_encode, CanonicalRequest};
use crate::signing_key::{format_amz_date, signature, signing_key, string_to_sign, Scope};
use crate::{SecretAccessKey, UNSIGNED_PAYLOAD};

/// A request about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    pub method: &'a str,
    /// The path exactly as it will be sent (percent-encoded once).
    pub path: &'a str,
    /// The query exactly as it will be sent, without `?`.
    pub query: &'a str,
    /// Headers to sign and send; must include `host`. Names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD` (S3 only).
    pub payload_sha256: &'a str,
}

/// Who signs, for which scope.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a SecretAccessKey,
    pub region: &'a str,
    pub service: &'a str,
}

/// Header auth: returns the headers to add to the request — `x-amz-date`, `x-amz-content-sha256`
/// (S3 only, as S3 requires it) and `authorization`. Every header in `request.headers` is signed.
pub fn sign(request: &RequestToSign<'_>, credentials: &Credentials<'_>, now: OffsetDateTime) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let mut added: Vec<(String, String)> = vec![("x-amz-date".into(), amz_date.clone())];
    if credentials.service == "s3" && !has_header(request.headers, "x-amz-content-sha256") {
        added.push(("x-amz-content-sha256".into(), request.payload_sha256.to_owned()));
    }
    let mut all: Vec<(&str, &str)> = request.headers.to_vec();
    all.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let signed_names = signed_header_names(&all);
    let signed: Vec<&str> = signed_names.iter().map(String::as_str).collect();
    // Every name comes from `all`, so no signed header can be missing.
    let headers = canonical_headers(&signed, &all).unwrap_or_default();
    let scope = Scope { date: &amz_date[..8], region: credentials.region, service: credentials.service };
    let canonical = CanonicalRequest {
        method: request.method,
        uri: canonical_uri(request.path, credentials.service),
        query: canonical_query(request.query, None),
        headers,
        signed_headers: signed.join(";"),
        payload_hash: request.payload_sha256,
    };
    let sig =
        signature(&signing_key(credentials.secret, &scope), &string_to_sign(&amz_date, &scope, &canonical.render()));
    added.push((
        "authorization".into(),
        format!(
            "{} Credential={}/{}, SignedHeaders={}, Signature={sig}",
            crate::ALGORITHM,
            credentials.access_key_id,
            scope.render(),
            signed.join(";")
        ),
    ));
    added
}

/// Query auth (a presigned URL): returns the full query string to send instead of
/// `request.query`. Only the headers in `request.headers` (at least `host`) are signed.
pub fn presign(
    request: &RequestToSign<'_>,
    credentials: &Credentials<'_>,
    now: OffsetDateTime,
    expires_secs: u32,
) -> String {
    let amz_date = format_amz_date(now);
    let scope = Scope { date: &amz_date[..8], region: credentials.region, service: credentials.service };
    let signed_names = signed_header_names(request.headers);
    let signed: Vec<&str> = signed_names.iter().map(String::as_str).collect();
    let credential = format!("{}/{}", credentials.access_key_id, scope.render());
    let mut query = String::from(request.query);
    for (name, value) in [
        ("X-Amz-Algorithm", crate::ALGORITHM.to_owned()),
        ("X-Amz-Credential", credential),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", expires_secs.to_string()),
        ("X-Amz-SignedHeaders", signed.join(";")),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&uri_encode(value.as_bytes(), false));
    }
    let payload = if credentials.service == "s3" { UNSIGNED_PAYLOAD } else { request.payload_sha256 };
    let canonical = CanonicalRequest {
        method: request.method,
        uri: canonical_uri(request.path, credentials.service),
        query: canonical_query(&query, None),
        headers: canonical_headers(&signed, request.headers).unwrap_or_default(),
        signed_headers: signed.join(";"),
        payload_hash: payload,
    };
    let sig =
        signature(&signing_key(credentials.secret, &scope), &string_to_sign(&amz_date, &scope, &canonical.render()));
    format!("{query}&X-Amz-Signature={sig}")
}

fn has_header(headers: &[(&str, &str)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn signed_header_names(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers.iter().map(|(n, _)| n.trim().to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    names
}
