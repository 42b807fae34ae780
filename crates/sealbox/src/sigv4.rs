//! AWS Signature Version 4 verification for the JSON/query APIs on our port (KMS, IAM). S3 requests
//! are verified by s3s, which accepts only the `s3`/`sts` services.

use aws_lc_rs::{constant_time, digest, hmac};
use time::{OffsetDateTime, PrimitiveDateTime};

/// Why a signature was refused; the router maps each to the service's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    Missing,
    Malformed(String),
    UnknownKey,
    BadSignature,
    Expired(String),
}

/// A signed request as it came off the wire.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

pub struct Verified {
    pub access_key_id: String,
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

fn hmac_sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec()
}

/// AWS URI encoding: unreserved characters stay, everything else is %XX upper-case.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

struct AuthHeader<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<AuthHeader<'_>, SigError> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| SigError::Malformed("Authorization header must use AWS4-HMAC-SHA256".into()))?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let cred =
        cred.ok_or_else(|| SigError::Malformed("Authorization header requires 'Credential' parameter.".into()))?;
    let signed =
        signed.ok_or_else(|| SigError::Malformed("Authorization header requires 'SignedHeaders' parameter.".into()))?;
    let signature =
        sig.ok_or_else(|| SigError::Malformed("Authorization header requires 'Signature' parameter.".into()))?;
    let parts: Vec<&str> = cred.split('/').collect();
    let [access_key, date, region, service, terminator] = parts[..] else {
        return Err(SigError::Malformed(format!("Credential should be scoped to a valid region, not '{cred}'.")));
    };
    if terminator != "aws4_request" || date.len() != 8 {
        return Err(SigError::Malformed("Credential should be scoped with a valid terminator: 'aws4_request'.".into()));
    }
    Ok(AuthHeader { access_key, date, region, service, signed_headers: signed.split(';').collect(), signature })
}

fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, &fmt).ok().map(|p| p.assume_utc())
}

/// Verifies a header-signed request for `expected_service` with the secret `lookup` returns.
pub fn verify(
    req: &SignedRequest<'_>,
    expected_service: &str,
    now: OffsetDateTime,
    lookup: impl Fn(&str) -> Option<zeroize::Zeroizing<String>>,
) -> Result<Verified, SigError> {
    let auth = req.headers.get(http::header::AUTHORIZATION).ok_or(SigError::Missing)?;
    let auth = auth.to_str().map_err(|_| SigError::Malformed("Authorization header is not text".into()))?;
    let a = parse_authorization(auth)?;
    if a.service != expected_service {
        return Err(SigError::Malformed(format!(
            "Credential should be scoped to correct service: '{expected_service}'."
        )));
    }
    let amz_date = req.headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        SigError::Malformed(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
        )
    })?;
    let when = parse_amz_date(amz_date).ok_or_else(|| SigError::Malformed(format!("Invalid X-Amz-Date {amz_date}")))?;
    if (now - when).whole_seconds().abs() > 15 * 60 {
        return Err(SigError::Expired(format!(
            "Signature expired: {amz_date} is now earlier or later than 15 minutes from the server time"
        )));
    }
    if !amz_date.starts_with(a.date) {
        return Err(SigError::Malformed("Credential date does not match X-Amz-Date.".into()));
    }
    let secret = lookup(a.access_key).ok_or(SigError::UnknownKey)?;
    if !a.signed_headers.contains(&"host") {
        return Err(SigError::Malformed("'Host' must be a signed header.".into()));
    }
    let mut canonical_headers = String::new();
    for name in &a.signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| hex_sha256(req.body));
    if payload_hash != "UNSIGNED-PAYLOAD" && payload_hash != hex_sha256(req.body) {
        return Err(SigError::BadSignature);
    }
    // Non-S3 services double-encode path segments (the path arrives encoded once).
    let canonical_uri = if req.path.is_empty() { "/".to_owned() } else { uri_encode(req.path, true) };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri,
        canonical_query(req.query),
        canonical_headers,
        a.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!("{}/{}/{}/aws4_request", a.date, a.region, a.service);
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex_sha256(canonical_request.as_bytes()));
    let k_date = hmac_sign(format!("AWS4{}", secret.as_str()).as_bytes(), a.date.as_bytes());
    let k_region = hmac_sign(&k_date, a.region.as_bytes());
    let k_service = hmac_sign(&k_region, a.service.as_bytes());
    let k_signing = hmac_sign(&k_service, b"aws4_request");
    let expected = hex::encode(hmac_sign(&k_signing, string_to_sign.as_bytes()));
    constant_time::verify_slices_are_equal(expected.as_bytes(), a.signature.as_bytes())
        .map_err(|_| SigError::BadSignature)?;
    Ok(Verified { access_key_id: a.access_key.to_owned() })
}

/// Signs a request (header auth) for the bench client: returns the headers to add. `path` must
/// already be URI-encoded the way S3 expects (each segment once); `payload_hash` is the hex SHA-256
/// of the body or `UNSIGNED-PAYLOAD`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    extra_headers: &[(&str, String)],
    payload_hash: &str,
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let amz_date = now.format(&fmt).unwrap_or_default();
    let date = &amz_date[..8];
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.into()),
        ("x-amz-content-sha256".into(), payload_hash.into()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    for (k, v) in extra_headers {
        headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
    }
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request =
        format!("{method}\n{path}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}", canonical_query(query));
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sts = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex_sha256(canonical_request.as_bytes()));
    let k = hmac_sign(
        &hmac_sign(
            &hmac_sign(&hmac_sign(format!("AWS4{secret}").as_bytes(), date.as_bytes()), region.as_bytes()),
            service.as_bytes(),
        ),
        b"aws4_request",
    );
    let sig = hex::encode(hmac_sign(&k, sts.as_bytes()));
    // The caller sends `extra_headers` (and Host) itself: return only what signing adds.
    headers.retain(|(k, _)| k == "x-amz-date" || k == "x-amz-content-sha256");
    headers.push((
        "authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"),
    ));
    headers
}

/// The service a request is signed for, read from its Authorization header's credential scope.
pub fn signed_service(headers: &http::HeaderMap) -> Option<String> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    parse_authorization(auth).ok().map(|a| a.service.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, method: &str, host: &str, body: &[u8], date: &str, service: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("host", host.parse().unwrap());
        h.insert("x-amz-date", date.parse().unwrap());
        h.insert("content-type", "application/x-amz-json-1.1".parse().unwrap());
        let canonical = format!(
            "{method}\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:{host}\nx-amz-date:{date}\n\ncontent-type;host;x-amz-date\n{}",
            hex_sha256(body)
        );
        let scope = format!("{}/us-east-1/{service}/aws4_request", &date[..8]);
        let sts = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex_sha256(canonical.as_bytes()));
        let k = hmac_sign(
            &hmac_sign(
                &hmac_sign(&hmac_sign(format!("AWS4{secret}").as_bytes(), &date.as_bytes()[..8]), b"us-east-1"),
                service.as_bytes(),
            ),
            b"aws4_request",
        );
        let sig = hex::encode(hmac_sign(&k, sts.as_bytes()));
        h.insert(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/{scope}, SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
            )
            .parse()
            .unwrap(),
        );
        h
    }

    fn now() -> OffsetDateTime {
        parse_amz_date("20261124T120000Z").unwrap()
    }

    fn lookup(k: &str) -> Option<zeroize::Zeroizing<String>> {
        (k == "AKID").then(|| zeroize::Zeroizing::new("secret".to_owned()))
    }

    #[test]
    fn accepts_a_good_signature_and_refuses_tampering() {
        let body = br#"{"KeyId":"alias/x"}"#;
        let h = sign("secret", "POST", "127.0.0.1:9000", body, "20261124T120000Z", "kms");
        let req = SignedRequest { method: "POST", path: "/", query: "", headers: &h, body };
        assert_eq!(verify(&req, "kms", now(), lookup).unwrap().access_key_id, "AKID");
        let tampered = SignedRequest { body: br#"{"KeyId":"alias/y"}"#, ..req };
        assert_eq!(verify(&tampered, "kms", now(), lookup).err(), Some(SigError::BadSignature));
        let wrong_secret = sign("other", "POST", "127.0.0.1:9000", body, "20261124T120000Z", "kms");
        let req2 = SignedRequest { method: "POST", path: "/", query: "", headers: &wrong_secret, body };
        assert_eq!(verify(&req2, "kms", now(), lookup).err(), Some(SigError::BadSignature));
        assert!(matches!(verify(&req2, "iam", now(), lookup), Err(SigError::Malformed(_))));
        let late = now() + time::Duration::minutes(16);
        assert!(matches!(verify(&req2, "kms", late, lookup), Err(SigError::Expired(_))));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn arbitrary_authorization_headers_never_panic(auth in "\\PC{0,300}", date in "[0-9TZ]{0,20}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&auth) {
                h.insert("authorization", v);
            }
            if let Ok(v) = http::HeaderValue::from_str(&date) {
                h.insert("x-amz-date", v);
            }
            h.insert("host", http::HeaderValue::from_static("127.0.0.1"));
            let req = SignedRequest { method: "POST", path: "/", query: "a=%zz&b", headers: &h, body: &body };
            let _ = verify(&req, "kms", now(), lookup);
            let _ = signed_service(&h);
        }

        #[test]
        fn mutated_valid_signatures_are_refused(i in 0usize..400, b in proptest::prelude::any::<u8>()) {
            let body = br#"{"KeyId":"alias/x"}"#;
            let h = sign("secret", "POST", "127.0.0.1:9000", body, "20261124T120000Z", "kms");
            let auth = h.get("authorization").unwrap().to_str().unwrap().as_bytes().to_vec();
            let mut mutated = auth.clone();
            let idx = i % mutated.len();
            if mutated[idx] == b { return Ok(()); }
            mutated[idx] = b;
            let mut h2 = h.clone();
            match http::HeaderValue::from_bytes(&mutated) {
                Ok(v) => { h2.insert("authorization", v); }
                Err(_) => return Ok(()),
            }
            let req = SignedRequest { method: "POST", path: "/", query: "", headers: &h2, body };
            // A changed byte may still be "the same" only where case or spacing does not matter.
            if let Ok(v) = verify(&req, "kms", now(), lookup) {
                proptest::prop_assert_eq!(v.access_key_id, "AKID");
                let original = String::from_utf8_lossy(&auth).to_string();
                let changed = String::from_utf8_lossy(&mutated).to_string();
                proptest::prop_assert!(original.split("Signature=").nth(1) == changed.split("Signature=").nth(1));
            }
        }
    }

    #[test]
    fn malformed_headers_never_panic() {
        for auth in [
            "",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=a/b",
            "Basic xyz",
            "AWS4-HMAC-SHA256 Credential=a/20261124/r/kms/aws4_request, SignedHeaders=host, Signature=",
        ] {
            let mut h = http::HeaderMap::new();
            h.insert("authorization", auth.parse().unwrap());
            h.insert("x-amz-date", "20261124T120000Z".parse().unwrap());
            let req = SignedRequest { method: "POST", path: "/", query: "", headers: &h, body: b"" };
            assert!(verify(&req, "kms", now(), lookup).is_err());
        }
        let h = http::HeaderMap::new();
        let req = SignedRequest { method: "POST", path: "/", query: "", headers: &h, body: b"" };
        assert_eq!(verify(&req, "kms", now(), lookup).err(), Some(SigError::Missing));
    }
}
