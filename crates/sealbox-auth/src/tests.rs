//! Sign and verify against AWS's published vectors, round trips, tampering, skew and garbage.

use proptest::prelude::*;
use time::OffsetDateTime;

use crate::*;

const SUITE_KEY: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const S3_DOC_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const S3_DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

fn at(amz_date: &str) -> OffsetDateTime {
    crate::signing_key::parse_amz_date(amz_date).unwrap()
}

fn suite_now() -> OffsetDateTime {
    at("20150830T123600Z")
}

/// S3 may leave the body unsigned; every other service signs it.
fn expect(service: &str) -> Expected<'_> {
    if service == "s3" {
        Expected::s3()
    } else {
        Expected::signed_body(service)
    }
}

fn lookup(id: &str) -> Option<SecretAccessKey> {
    match id {
        SUITE_KEY => Some(SUITE_SECRET.into()),
        S3_DOC_KEY => Some(S3_DOC_SECRET.into()),
        _ => None,
    }
}

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    signature: &'static str,
}

/// From AWS's "Signature Version 4 test suite" (aws-sig-v4-test-suite, service "service",
/// 2015-08-30T12:36:00Z), the header-signed cases that are legal HTTP/1.1.
const SUITE: &[Vector] = &[
    Vector { name: "get-vanilla", method: "GET", path: "/", query: "", headers: &[], body: b"", signature: VANILLA },
    Vector { name: "post-vanilla", method: "POST", path: "/", query: "", headers: &[], body: b"",
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
    Vector { name: "get-vanilla-query-order-key-case", method: "GET", path: "/", query: "Param2=value2&Param1=value1",
        headers: &[], body: b"", signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
    Vector { name: "get-vanilla-empty-query-key", method: "GET", path: "/", query: "Param1=value1", headers: &[],
        body: b"", signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb" },
    Vector { name: "get-vanilla-query-unreserved", method: "GET", path: "/",
        query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[], body: b"", signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
    Vector { name: "get-vanilla-utf8-query", method: "GET", path: "/", query: "%E1%88%B4=bar", headers: &[],
        body: b"", signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
    Vector { name: "post-vanilla-query", method: "POST", path: "/", query: "Param1=value1", headers: &[], body: b"",
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
    Vector { name: "get-unreserved", method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", query: "", headers: &[],
        body: b"", signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
    Vector { name: "get-utf8", method: "GET", path: "/ሴ", query: "", headers: &[], body: b"",
        signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85" },
    Vector { name: "get-space", method: "GET", path: "/example space/", query: "", headers: &[], body: b"",
        signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741" },
    Vector { name: "normalize-path/get-relative", method: "GET", path: "/example/..", query: "", headers: &[],
        body: b"", signature: VANILLA },
    Vector { name: "normalize-path/get-relative-relative", method: "GET", path: "/example1/example2/../..",
        query: "", headers: &[], body: b"", signature: VANILLA },
    Vector { name: "normalize-path/get-slash", method: "GET", path: "//", query: "", headers: &[], body: b"",
        signature: VANILLA },
    Vector { name: "normalize-path/get-slash-dot-slash", method: "GET", path: "/./", query: "", headers: &[],
        body: b"", signature: VANILLA },
    Vector { name: "normalize-path/get-slash-pointless-dot", method: "GET", path: "/./example", query: "",
        headers: &[], body: b"", signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5" },
    Vector { name: "normalize-path/get-slashes", method: "GET", path: "//example//", query: "", headers: &[],
        body: b"", signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84" },
    Vector { name: "get-header-key-duplicate", method: "GET", path: "/", query: "",
        headers: &[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")], body: b"",
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
    Vector { name: "get-header-value-order", method: "GET", path: "/", query: "",
        headers: &[("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"),
            ("My-Header1", "value2")],
        body: b"", signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
    Vector { name: "get-header-value-trim", method: "GET", path: "/", query: "",
        headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")], body: b"",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
    Vector { name: "post-header-key-case", method: "POST", path: "/", query: "", headers: &[], body: b"",
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
    Vector { name: "post-header-key-sort", method: "POST", path: "/", query: "", headers: &[("My-Header1", "value1")],
        body: b"", signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c" },
    Vector { name: "post-header-value-case", method: "POST", path: "/", query: "",
        headers: &[("My-Header1", "VALUE1")], body: b"",
        signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
    Vector { name: "post-x-www-form-urlencoded", method: "POST", path: "/", query: "",
        headers: &[("Content-Type", "application/x-www-form-urlencoded")], body: b"Param1=value1",
        signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
    Vector { name: "post-x-www-form-urlencoded-parameters", method: "POST", path: "/", query: "",
        headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf8")], body: b"Param1=value1",
        signature: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe" },
];

fn suite_headers(v: &Vector) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![("Host", "example.amazonaws.com")];
    headers.extend_from_slice(v.headers);
    headers
}

fn suite_credentials(secret: &SecretAccessKey) -> Credentials<'_> {
    Credentials { access_key_id: SUITE_KEY, secret, region: "us-east-1", service: "service" }
}

fn signature_of(authorization: &str) -> &str {
    authorization.rsplit("Signature=").next().unwrap()
}

fn with_added<'a>(base: &[(&'a str, &'a str)], added: &'a [(String, String)]) -> Vec<(&'a str, &'a str)> {
    let mut all = base.to_vec();
    all.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    all
}

#[test]
fn signer_reproduces_the_aws_test_suite() {
    let secret = SecretAccessKey::from(SUITE_SECRET);
    for v in SUITE {
        let headers = suite_headers(v);
        let body_hash = hex_sha256(v.body);
        let request = RequestToSign {
            method: v.method,
            path: v.path,
            query: v.query,
            headers: &headers,
            payload_sha256: &body_hash,
        };
        let added = sign(&request, &suite_credentials(&secret), suite_now());
        let auth = &added.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert_eq!(signature_of(auth), v.signature, "{}", v.name);
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "));
        assert!(added.iter().any(|(n, v)| n == "x-amz-date" && v == "20150830T123600Z"));
        assert!(!added.iter().any(|(n, _)| n == "x-amz-content-sha256"), "only S3 gets the payload header");
    }
}

#[test]
fn verifier_accepts_the_aws_test_suite() {
    let secret = SecretAccessKey::from(SUITE_SECRET);
    for v in SUITE {
        let headers = suite_headers(v);
        let body_hash = hex_sha256(v.body);
        let request = RequestToSign {
            method: v.method,
            path: v.path,
            query: v.query,
            headers: &headers,
            payload_sha256: &body_hash,
        };
        let added = sign(&request, &suite_credentials(&secret), suite_now());
        let all = with_added(&headers, &added);
        let wire = SignedRequest {
            method: v.method,
            path: v.path,
            query: v.query,
            headers: &all,
            body_sha256_hex: &body_hash,
        };
        let caller =
            verify(&wire, lookup, suite_now(), expect("service")).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(
            caller,
            VerifiedCaller {
                access_key_id: SUITE_KEY.into(),
                region: "us-east-1".into(),
                service: "service".into(),
                session_token: None,
                presigned: false
            }
        );
    }
}

/// Amazon S3 API Reference, "Signature Calculations for the Authorization Header": the four
/// examples (GET Object with a range, PUT Object with `$` in the key, GET ?lifecycle, list).
#[test]
fn signer_reproduces_the_s3_documentation_examples() {
    let secret = SecretAccessKey::from(S3_DOC_SECRET);
    let credentials = Credentials { access_key_id: S3_DOC_KEY, secret: &secret, region: "us-east-1", service: "s3" };
    let put_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    assert_eq!(hex_sha256(b"Welcome to Amazon S3."), put_hash);
    let host = ("Host", "examplebucket.s3.amazonaws.com");
    // method, path, query, headers, payload hash, signature
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            "GET",
            "/test.txt",
            "",
            vec![host, ("Range", "bytes=0-9")],
            EMPTY_SHA256,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (
            "PUT",
            "/test%24file.text",
            "",
            vec![host, ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            put_hash,
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
        (
            "GET",
            "/",
            "lifecycle",
            vec![host],
            EMPTY_SHA256,
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "GET",
            "/",
            "max-keys=2&prefix=J",
            vec![host],
            EMPTY_SHA256,
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ];
    for (method, path, query, headers, payload, want) in cases {
        let request = RequestToSign { method, path, query, headers: &headers, payload_sha256: payload };
        let added = sign(&request, &credentials, at("20130524T000000Z"));
        let auth = &added.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert_eq!(signature_of(auth), want, "{method} {path}?{query}");
        assert!(added.iter().any(|(n, v)| n == "x-amz-content-sha256" && v == payload));
        let all = with_added(&headers, &added);
        let wire = SignedRequest { method, path, query, headers: &all, body_sha256_hex: payload };
        verify(&wire, lookup, at("20130524T000000Z"), Expected::s3()).unwrap();
    }
}

/// A KMS call the way botocore signs it (AWS contract A.5).
struct KmsCall {
    headers: Vec<(String, String)>,
    body: &'static [u8],
}

impl KmsCall {
    fn new(now: OffsetDateTime) -> Self {
        let body: &[u8] = br#"{"KeyId":"alias/x","KeySpec":"AES_256"}"#;
        let base = [
            ("Host", "127.0.0.1:9000"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "TrentService.GenerateDataKey"),
        ];
        let secret = SecretAccessKey::from(SUITE_SECRET);
        let credentials =
            Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "eu-west-3", service: "kms" };
        let hash = hex_sha256(body);
        let request = RequestToSign { method: "POST", path: "/", query: "", headers: &base, payload_sha256: &hash };
        let mut headers: Vec<(String, String)> = base.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        headers.extend(sign(&request, &credentials, now));
        KmsCall { headers, body }
    }

    fn verify_as(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<VerifiedCaller, AuthError> {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let hash = hex_sha256(body);
        verify(
            &SignedRequest { method, path, query, headers: &headers, body_sha256_hex: &hash },
            lookup,
            now,
            expect("kms"),
        )
    }

    fn verify(&self, now: OffsetDateTime) -> Result<VerifiedCaller, AuthError> {
        self.verify_as("POST", "/", "", self.body, now)
    }
}

fn kms_now() -> OffsetDateTime {
    at("20261124T120000Z")
}

#[test]
fn round_trip_for_kms() {
    let call = KmsCall::new(kms_now());
    let caller = call.verify(kms_now()).unwrap();
    assert_eq!(
        (caller.access_key_id.as_str(), caller.region.as_str(), caller.service.as_str()),
        (SUITE_KEY, "eu-west-3", "kms")
    );
    let auth = &call.headers.iter().find(|(n, _)| n == "authorization").unwrap().1;
    assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target,"), "{auth}");
}

#[test]
fn tampering_with_any_signed_part_is_refused() {
    let call = KmsCall::new(kms_now());
    let now = kms_now();
    assert_eq!(call.verify_as("PUT", "/", "", call.body, now), Err(AuthError::SignatureMismatch));
    assert_eq!(call.verify_as("POST", "/x", "", call.body, now), Err(AuthError::SignatureMismatch));
    assert_eq!(call.verify_as("POST", "/", "a=b", call.body, now), Err(AuthError::SignatureMismatch));
    assert_eq!(call.verify_as("POST", "/", "", b"{}", now), Err(AuthError::SignatureMismatch));
    for (i, (name, _)) in call.headers.iter().enumerate() {
        let mut changed = KmsCall { headers: call.headers.clone(), body: call.body };
        let value = &mut changed.headers[i].1;
        match name.as_str() {
            "authorization" => {
                // Flip the last hex digit of the signature.
                let last = value.pop().unwrap();
                value.push(if last == '0' { '1' } else { '0' });
            }
            "x-amz-date" => *value = "20261124T120001Z".into(),
            _ => value.push('x'),
        }
        assert_eq!(changed.verify(now), Err(AuthError::SignatureMismatch), "{name}");
    }
    // Scope parts: region and date change the key, so the signature no longer matches.
    for (from, to, want) in [
        ("/eu-west-3/", "/us-east-1/", AuthError::SignatureMismatch),
        ("SignedHeaders=content-type;", "SignedHeaders=", AuthError::SignatureMismatch),
        ("Credential=AKIDEXAMPLE/", "Credential=AKIAIOSFODNN7EXAMPLE/", AuthError::SignatureMismatch),
        (
            "Credential=AKIDEXAMPLE/",
            "Credential=AKIDOTHER/",
            AuthError::UnknownAccessKey { access_key_id: "AKIDOTHER".into() },
        ),
    ] {
        let mut changed = KmsCall { headers: call.headers.clone(), body: call.body };
        let auth = changed.headers.iter_mut().find(|(n, _)| n == "authorization").unwrap();
        auth.1 = auth.1.replace(from, to);
        assert_eq!(changed.verify(now), Err(want), "{from}");
    }
    // An extra, unsigned header is fine; dropping a signed one is not.
    let mut extra = KmsCall { headers: call.headers.clone(), body: call.body };
    extra.headers.push(("User-Agent".into(), "x".into()));
    assert!(extra.verify(now).is_ok());
    let mut dropped = KmsCall { headers: call.headers.clone(), body: call.body };
    dropped.headers.retain(|(n, _)| n != "X-Amz-Target");
    assert!(matches!(dropped.verify(now), Err(AuthError::Malformed(_))));
}

#[test]
fn scope_and_key_errors() {
    let call = KmsCall::new(kms_now());
    let now = kms_now();
    let headers: Vec<(&str, &str)> = call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let hash = hex_sha256(call.body);
    let request = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body_sha256_hex: &hash };
    assert!(matches!(verify(&request, lookup, now, expect("iam")), Err(AuthError::Malformed(_))));
    assert_eq!(
        verify(&request, |_| None, now, expect("kms")),
        Err(AuthError::UnknownAccessKey { access_key_id: SUITE_KEY.into() })
    );
    assert_eq!(verify(&request, |_| Some("wrong".into()), now, expect("kms")), Err(AuthError::SignatureMismatch));
    // Credential date different from X-Amz-Date.
    let mut other_day = call.headers.clone();
    let auth = other_day.iter_mut().find(|(n, _)| n == "authorization").unwrap();
    auth.1 = auth.1.replace("/20261124/", "/20261123/");
    let h: Vec<(&str, &str)> = other_day.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let r = SignedRequest { headers: &h, ..request };
    assert!(matches!(verify(&r, lookup, now, expect("kms")), Err(AuthError::Malformed(_))));
    // No X-Amz-Date at all.
    let h: Vec<(&str, &str)> = headers.iter().copied().filter(|(n, _)| *n != "x-amz-date").collect();
    let r = SignedRequest { headers: &h, ..request };
    assert!(matches!(verify(&r, lookup, now, expect("kms")), Err(AuthError::Malformed(_))));
    // Nothing at all.
    let h = [("Host", "x")];
    let r = SignedRequest { headers: &h, ..request };
    assert_eq!(verify(&r, lookup, now, expect("kms")), Err(AuthError::Missing));
    assert_eq!(AuthError::Missing.code(Protocol::AwsJson).status, 403);
}

#[test]
fn clock_skew_beyond_15_minutes_is_refused() {
    let signed_at = kms_now();
    let call = KmsCall::new(signed_at);
    for ok in [-15 * 60, -60, 0, 60, 15 * 60] {
        assert!(call.verify(signed_at + time::Duration::seconds(ok)).is_ok(), "{ok}");
    }
    let late = call.verify(signed_at + time::Duration::seconds(15 * 60 + 1)).unwrap_err();
    assert!(matches!(late, AuthError::SignatureExpired { .. }));
    assert_eq!(late.code(Protocol::AwsJson).code, "InvalidSignatureException");
    assert_eq!(
        late.to_string(),
        "Signature expired: 20261124T120000Z is now earlier than 20261124T120001Z (20261124T121501Z - 15 min.)"
    );
    let early = call.verify(signed_at - time::Duration::seconds(15 * 60 + 1)).unwrap_err();
    assert!(matches!(early, AuthError::SignatureNotYetCurrent { .. }));
    assert!(early.is_clock_skew());
}

#[test]
fn signed_payload_hash_must_match_the_body() {
    let secret = SecretAccessKey::from(SUITE_SECRET);
    let now = kms_now();
    let body = b"hello";
    for (service, claimed, want) in [
        ("kms", hex_sha256(b"other"), Err(AuthError::PayloadHashMismatch)),
        ("kms", UNSIGNED_PAYLOAD.to_owned(), Err(AuthError::PayloadHashMismatch)),
        ("kms", hex_sha256(body).to_ascii_uppercase(), Ok(())),
        ("s3", UNSIGNED_PAYLOAD.to_owned(), Ok(())),
        ("s3", hex_sha256(b"other"), Err(AuthError::PayloadHashMismatch)),
    ] {
        let base = [("host", "h"), ("x-amz-content-sha256", claimed.as_str())];
        let credentials = Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "r", service };
        let request =
            RequestToSign { method: "PUT", path: "/b/k", query: "", headers: &base, payload_sha256: &claimed };
        let added = sign(&request, &credentials, now);
        let all = with_added(&base, &added);
        let hash = hex_sha256(body);
        let wire = SignedRequest { method: "PUT", path: "/b/k", query: "", headers: &all, body_sha256_hex: &hash };
        assert_eq!(verify(&wire, lookup, now, expect(service)).map(|_| ()), want, "{service} {claimed}");
    }
}

#[test]
fn presigned_urls_round_trip_and_expire() {
    let secret = SecretAccessKey::from(SUITE_SECRET);
    let now = kms_now();
    for service in ["s3", "kms"] {
        let credentials = Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "us-east-1", service };
        let headers = [("host", "127.0.0.1:9000")];
        let request = RequestToSign {
            method: "GET",
            path: "/b/a%20key",
            query: "versionId=3",
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let query = presign(&request, &credentials, now, 300);
        assert!(
            query.starts_with("versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"),
            "{query}"
        );
        let wire = SignedRequest {
            method: "GET",
            path: "/b/a%20key",
            query: &query,
            headers: &headers,
            body_sha256_hex: EMPTY_SHA256,
        };
        let caller = verify(&wire, lookup, now + time::Duration::seconds(300), expect(service)).unwrap();
        assert!(caller.presigned);
        assert!(matches!(
            verify(&wire, lookup, now + time::Duration::seconds(301), expect(service)),
            Err(AuthError::PresignedUrlExpired { .. })
        ));
        let tampered = query.replace("versionId=3", "versionId=4");
        let wire2 = SignedRequest { query: &tampered, ..wire };
        assert_eq!(verify(&wire2, lookup, now, expect(service)), Err(AuthError::SignatureMismatch));
        // Both mechanisms at once is refused.
        let both = [("host", "127.0.0.1:9000"), ("authorization", "AWS4-HMAC-SHA256 Credential=x")];
        let wire3 = SignedRequest { headers: &both, ..wire };
        assert_eq!(verify(&wire3, lookup, now, expect(service)), Err(AuthError::MultipleAuthMechanisms));
        // So is a header the URL did not sign.
        let added = [("host", "127.0.0.1:9000"), ("x-amz-copy-source", "/beta/secret")];
        let wire4 = SignedRequest { headers: &added, ..wire };
        assert_eq!(
            verify(&wire4, lookup, now, expect(service)),
            Err(AuthError::UnsignedHeaders { names: vec!["x-amz-copy-source".into()] })
        );
    }
}

#[test]
fn session_token_is_reported() {
    let secret = SecretAccessKey::from(SUITE_SECRET);
    let now = kms_now();
    let base = [("host", "h"), ("x-amz-security-token", "TOKEN")];
    let credentials = Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "r", service: "iam" };
    let hash = hex_sha256(b"Action=ListUsers");
    let request = RequestToSign { method: "POST", path: "/", query: "", headers: &base, payload_sha256: &hash };
    let added = sign(&request, &credentials, now);
    let all = with_added(&base, &added);
    let wire = SignedRequest { method: "POST", path: "/", query: "", headers: &all, body_sha256_hex: &hash };
    assert_eq!(verify(&wire, lookup, now, expect("iam")).unwrap().session_token.as_deref(), Some("TOKEN"));
}

/// The reproduction of issue 12: a DescribeKey signed without `x-amz-target` (any client may
/// leave it out) replayed with `x-amz-target: TrentService.ScheduleKeyDeletion`.
#[test]
fn an_unsigned_target_is_refused() {
    let secret = SecretAccessKey::from(SUITE_SECRET);
    let now = kms_now();
    let body = br#"{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}"#;
    let hash = hex_sha256(body);
    let base = [("host", "127.0.0.1:9000"), ("content-type", "application/x-amz-json-1.1")];
    let credentials = Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "us-east-1", service: "kms" };
    let request = RequestToSign { method: "POST", path: "/", query: "", headers: &base, payload_sha256: &hash };
    let added = sign(&request, &credentials, now);
    let mut all = with_added(&base, &added);
    let wire = SignedRequest { method: "POST", path: "/", query: "", headers: &all, body_sha256_hex: &hash };
    assert!(verify(&wire, lookup, now, expect("kms")).is_ok(), "signed as it is, the request is fine");
    all.push(("X-Amz-Target", "TrentService.ScheduleKeyDeletion"));
    let replayed = SignedRequest { method: "POST", path: "/", query: "", headers: &all, body_sha256_hex: &hash };
    assert_eq!(
        verify(&replayed, lookup, now, expect("kms")),
        Err(AuthError::UnsignedHeaders { names: vec!["x-amz-target".into()] })
    );
}

/// The other reproduction: IAM ListUsers signed with `UNSIGNED-PAYLOAD`, sent with a
/// CreateAccessKey body. The admin endpoint in S3's URL space (`s3` scope) signs its body too.
#[test]
fn an_unsigned_body_is_refused_outside_s3() {
    let secret = SecretAccessKey::from(SUITE_SECRET);
    let now = kms_now();
    let base = [
        ("host", "127.0.0.1:9000"),
        ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
    ];
    for service in ["iam", "s3"] {
        let credentials = Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "us-east-1", service };
        let request =
            RequestToSign { method: "POST", path: "/", query: "", headers: &base, payload_sha256: UNSIGNED_PAYLOAD };
        let added = sign(&request, &credentials, now);
        let all = with_added(&base, &added);
        for body in
            [&b"Action=ListUsers&Version=2010-05-08"[..], b"Action=CreateAccessKey&UserName=root&Version=2010-05-08"]
        {
            let hash = hex_sha256(body);
            let wire = SignedRequest { method: "POST", path: "/", query: "", headers: &all, body_sha256_hex: &hash };
            assert_eq!(verify(&wire, lookup, now, Expected::signed_body(service)), Err(AuthError::PayloadHashMismatch));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_authorization_headers_never_panic(auth in "\\PC{0,200}", date in "[0-9TZ]{0,18}", query in "[a-zA-Z0-9%=&-]{0,60}") {
        let headers = [("host", "h"), ("authorization", auth.as_str()), ("x-amz-date", date.as_str())];
        let wire = SignedRequest { method: "POST", path: "/", query: &query, headers: &headers, body_sha256_hex: EMPTY_SHA256 };
        prop_assert!(verify(&wire, lookup, kms_now(), expect("kms")).is_err());
    }

    #[test]
    fn near_valid_authorization_headers_never_panic(
        prefix in "AWS4-HMAC-SHA256 ?",
        credential in "(AKIDEXAMPLE)?(/[0-9a-z_-]{0,9}){0,6}",
        signed in "[a-z;-]{0,30}",
        signature in "[0-9a-fA-Fz]{0,70}",
        sep in "[, ]{0,3}",
    ) {
        let auth = format!("{prefix}Credential={credential}{sep}SignedHeaders={signed}{sep}Signature={signature}");
        let headers = [("host", "h"), ("authorization", auth.as_str()), ("x-amz-date", "20261124T120000Z")];
        let wire = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body_sha256_hex: EMPTY_SHA256 };
        prop_assert!(verify(&wire, lookup, kms_now(), expect("kms")).is_err());
    }

    #[test]
    fn random_presigned_queries_never_panic(query in "(X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature)=[A-Za-z0-9%/-]{0,20}&?){0,7}") {
        let headers = [("host", "h")];
        let wire = SignedRequest { method: "GET", path: "/", query: &query, headers: &headers, body_sha256_hex: EMPTY_SHA256 };
        prop_assert!(verify(&wire, lookup, kms_now(), Expected::s3()).is_err());
    }

    #[test]
    fn any_signed_request_round_trips(
        method in "(GET|PUT|POST|DELETE)",
        path in "(/[a-zA-Z0-9 %._~-]{0,8}){1,4}",
        query in "([a-zA-Z0-9]{1,5}(=[a-zA-Z0-9 %+]{0,5})?&?){0,3}",
        value in "[ -~]{0,20}",
        service in "(s3|kms|iam)",
    ) {
        let secret = SecretAccessKey::from(SUITE_SECRET);
        let credentials = Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "us-east-1", service: &service };
        let base = [("host", "h:1"), ("x-custom", value.as_str())];
        let request = RequestToSign { method: &method, path: &path, query: &query, headers: &base, payload_sha256: EMPTY_SHA256 };
        let added = sign(&request, &credentials, kms_now());
        let all = with_added(&base, &added);
        let wire = SignedRequest { method: &method, path: &path, query: &query, headers: &all, body_sha256_hex: EMPTY_SHA256 };
        prop_assert!(verify(&wire, lookup, kms_now(), expect(&service)).is_ok());
    }

    /// Any request we sign verifies; add one x-amz-* header after signing and it never does.
    #[test]
    fn a_header_added_after_signing_is_refused(
        name in "x-amz-[a-z-]{1,16}",
        value in "[ -~]{0,20}",
        service in "(s3|kms|iam|cloudtrail)",
        presigned in any::<bool>(),
    ) {
        prop_assume!(name != UNSIGNED_AMZ_HEADER_ALLOWED && name != "x-amz-date");
        let secret = SecretAccessKey::from(SUITE_SECRET);
        let credentials = Credentials { access_key_id: SUITE_KEY, secret: &secret, region: "us-east-1", service: &service };
        let base = [("host", "h:1")];
        let request = RequestToSign { method: "PUT", path: "/b/k", query: "", headers: &base, payload_sha256: EMPTY_SHA256 };
        let (mut headers, query): (Vec<(String, String)>, String) = if presigned {
            (vec![("host".into(), "h:1".into())], presign(&request, &credentials, kms_now(), 60))
        } else {
            let mut h: Vec<(String, String)> = vec![("host".into(), "h:1".into())];
            h.extend(sign(&request, &credentials, kms_now()));
            (h, String::new())
        };
        let wire = |headers: &[(String, String)]| -> Result<VerifiedCaller, AuthError> {
            let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let request = SignedRequest { method: "PUT", path: "/b/k", query: &query, headers: &h, body_sha256_hex: EMPTY_SHA256 };
            verify(&request, lookup, kms_now(), expect(&service))
        };
        prop_assert!(wire(&headers).is_ok());
        headers.push((name.clone(), value));
        prop_assert_eq!(wire(&headers), Err(AuthError::UnsignedHeaders { names: vec![name] }));
    }
}
