//! Server side: is this request signed by the holder of the access key it names?

use time::OffsetDateTime;

use crate::canonical::{canonical_headers, canonical_query, canonical_uri, CanonicalRequest};
use crate::parse::Claim;
use crate::scheme::{classify, decoded_query_param, Classified};
use crate::signing_key::{format_amz_date, parse_amz_date, signature_matches, signing_key, string_to_sign, Scope};
use crate::{AuthError, SecretAccessKey, MAX_CLOCK_SKEW, UNSIGNED_PAYLOAD};

/// A request as it came off the wire.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The raw path as sent (still percent-encoded), without the query.
    pub path: &'a str,
    /// The raw query as sent, without the `?`; empty when there is none.
    pub query: &'a str,
    /// Every header as received (any case; repeated names allowed, in order).
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body the server received (`EMPTY_SHA256` for none).
    pub body_sha256_hex: &'a str,
}

/// What the server expects of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The service the credential scope must name (`kms`, `iam`, `cloudtrail`, `s3`).
    pub service: &'a str,
    /// Whether the body may be left out of the signature (`UNSIGNED-PAYLOAD`, streaming
    /// uploads whose chunks the caller checks): S3 object uploads only. Everywhere else the
    /// body is hashed and must match what was signed.
    pub unsigned_payload: bool,
}

impl<'a> Expected<'a> {
    /// An API whose body is always signed and checked (KMS, IAM, CloudTrail, admin calls).
    pub const fn signed_body(service: &'a str) -> Self {
        Self { service, unsigned_payload: false }
    }

    /// S3's object API: the body may be unsigned.
    pub const fn s3() -> Self {
        Self { service: "s3", unsigned_payload: true }
    }
}

/// Who signed, and for which scope. The region is not checked (any region is accepted, a design
/// choice of AWS contract A.1); the caller may compare it with its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// `X-Amz-Security-Token`, signed with the request; the caller must validate it.
    pub session_token: Option<String>,
    /// True when authenticated by presigned query parameters rather than a header.
    pub presigned: bool,
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }
}

/// Verifies a SigV4-signed request (Authorization header or presigned query) against
/// `expected`, with the secret `lookup` returns for the access key it names. The envelope
/// checks of [`crate::check_request`] come first: one mechanism, no unsigned `x-amz-*` header
/// (so `x-amz-target` is always signed), a presigned lifetime of at most 7 days.
pub fn verify(
    request: &SignedRequest<'_>,
    lookup: impl Fn(&str) -> Option<SecretAccessKey>,
    now: OffsetDateTime,
    expected: Expected<'_>,
) -> Result<VerifiedCaller, AuthError> {
    let expected_service = expected.service;
    let (claim, amz_date, canonical_query_string, payload_hash, presigned) =
        match classify(request.headers, request.query)? {
            Classified::Anonymous => return Err(AuthError::Missing),
            Classified::SigV2 => return Err(AuthError::UnsupportedAuthorizationType),
            Classified::HeaderV4(claim) => {
                let amz_date = request.header("x-amz-date").ok_or_else(|| {
                    AuthError::Malformed(
                        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
                    )
                })?;
                let when = checked_date(&claim, amz_date, expected_service)?;
                check_skew(amz_date, when, now)?;
                let payload = header_payload_hash(request, expected.unsigned_payload)?;
                (claim, amz_date.to_owned(), canonical_query(request.query, None), payload, false)
            }
            Classified::PresignedV4(p) => {
                let when = checked_date(&p.claim, &p.amz_date, expected_service).map_err(|e| match e {
                    AuthError::Malformed(m) => AuthError::MalformedQuery(m),
                    other => other,
                })?;
                check_presigned_window(&p.amz_date, when, p.expires_secs, now)?;
                let payload = if expected.unsigned_payload {
                    request.header("x-amz-content-sha256").unwrap_or(UNSIGNED_PAYLOAD).to_owned()
                } else {
                    request.body_sha256_hex.to_ascii_lowercase()
                };
                (p.claim, p.amz_date, canonical_query(request.query, Some("X-Amz-Signature")), payload, true)
            }
        };
    let secret = lookup(&claim.access_key_id)
        .ok_or_else(|| AuthError::UnknownAccessKey { access_key_id: claim.access_key_id.clone() })?;
    let signed: Vec<&str> = claim.signed_headers.iter().map(String::as_str).collect();
    let headers = canonical_headers(&signed, request.headers)
        .map_err(|missing| AuthError::Malformed(format!("Signed header '{missing}' is not in the request.")))?;
    let canonical = CanonicalRequest {
        method: request.method,
        uri: canonical_uri(request.path, expected_service),
        query: canonical_query_string,
        headers,
        signed_headers: signed.join(";"),
        payload_hash: &payload_hash,
    };
    let scope = Scope { date: &claim.date, region: &claim.region, service: &claim.service };
    let to_sign = string_to_sign(&amz_date, &scope, &canonical.render());
    if !signature_matches(&signing_key(&secret, &scope), &to_sign, claim.signature) {
        return Err(AuthError::SignatureMismatch);
    }
    let session_token = if presigned {
        decoded_query_param(request.query, "X-Amz-Security-Token")
    } else {
        request.header("x-amz-security-token").map(str::to_owned)
    };
    Ok(VerifiedCaller {
        access_key_id: claim.access_key_id,
        region: claim.region,
        service: claim.service,
        session_token,
        presigned,
    })
}

/// The scope names our service and its date is the request's date.
fn checked_date(claim: &Claim<'_>, amz_date: &str, expected_service: &str) -> Result<OffsetDateTime, AuthError> {
    if claim.service != expected_service {
        return Err(AuthError::Malformed(format!(
            "Credential should be scoped to correct service: '{expected_service}'."
        )));
    }
    let when = parse_amz_date(amz_date)
        .ok_or_else(|| AuthError::Malformed(format!("Invalid X-Amz-Date '{amz_date}': expected yyyyMMddTHHmmssZ.")))?;
    if !amz_date.starts_with(claim.date.as_str()) {
        return Err(AuthError::Malformed(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            claim.date,
            &amz_date[..8]
        )));
    }
    Ok(when)
}

fn check_skew(amz_date: &str, when: OffsetDateTime, now: OffsetDateTime) -> Result<(), AuthError> {
    if when < now - MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureExpired {
            amz_date: amz_date.to_owned(),
            earliest: format_amz_date(now - MAX_CLOCK_SKEW),
            now: format_amz_date(now),
        });
    }
    if when > now + MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureNotYetCurrent {
            amz_date: amz_date.to_owned(),
            latest: format_amz_date(now + MAX_CLOCK_SKEW),
            now: format_amz_date(now),
        });
    }
    Ok(())
}

fn check_presigned_window(
    amz_date: &str,
    when: OffsetDateTime,
    expires_secs: i64,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    if when > now + MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureNotYetCurrent {
            amz_date: amz_date.to_owned(),
            latest: format_amz_date(now + MAX_CLOCK_SKEW),
            now: format_amz_date(now),
        });
    }
    let expired_at = when + time::Duration::seconds(expires_secs);
    if now > expired_at {
        return Err(AuthError::PresignedUrlExpired {
            expired_at: format_amz_date(expired_at),
            now: format_amz_date(now),
        });
    }
    Ok(())
}

/// The payload hash the client signed: its `x-amz-content-sha256` or, for services that omit it
/// (KMS, IAM), the body's hash. A signed hash must be the body's; only where `unsigned_payload`
/// is allowed (S3) may the body stay unsigned (s3s then checks streaming chunks itself).
fn header_payload_hash(request: &SignedRequest<'_>, unsigned_payload: bool) -> Result<String, AuthError> {
    let Some(claimed) = request.header("x-amz-content-sha256") else {
        return Ok(request.body_sha256_hex.to_ascii_lowercase());
    };
    let is_hex_digest = claimed.len() == 64 && claimed.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex_digest {
        if !claimed.eq_ignore_ascii_case(request.body_sha256_hex) {
            return Err(AuthError::PayloadHashMismatch);
        }
        return Ok(claimed.to_owned());
    }
    if unsigned_payload && (claimed == UNSIGNED_PAYLOAD || claimed.starts_with("STREAMING-")) {
        return Ok(claimed.to_owned());
    }
    // An unsigned body on the KMS/IAM APIs would let anyone who saw one signature send any body
    // with it (a ListUsers signature replayed with a CreateAccessKey body).
    Err(AuthError::PayloadHashMismatch)
}
