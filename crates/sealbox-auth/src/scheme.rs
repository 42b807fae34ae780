//! How a request says it is authenticated, and the checks every verifier must agree on before
//! a signature is computed: one mechanism only, a well-formed claim, a presigned lifetime of at
//! most 7 days, and every `x-amz-*` header covered by the signature.
//!
//! AWS refuses a request that carries an `x-amz-*` header outside `SignedHeaders` (header auth)
//! or `X-Amz-SignedHeaders` (presigned URLs) with 403 AccessDenied "There were headers present
//! in the request which were not signed": such a header (`x-amz-copy-source`,
//! `x-amz-server-side-encryption`, `x-amz-target`, ...) changes what the request does, so it must
//! be part of what was signed. The one exception is `x-amz-content-sha256`: its value is the
//! payload-hash line of the canonical request (bound to the signature either way) or, on a
//! presigned URL, a further check of the body; SDKs and AWS treat it as an envelope header.
//! Headers outside the `x-amz-` prefix (`user-agent`, `amz-sdk-invocation-id`,
//! `amz-sdk-request`, `x-amzn-trace-id`, `expect`) may stay unsigned, as on AWS.

use crate::canonical::percent_decode;
use crate::parse::{parse_authorization, parse_presigned, query_param, Claim, PresignedParams};
use crate::AuthError;

/// The only `x-amz-*` header that may be left out of the signed headers.
pub const UNSIGNED_AMZ_HEADER_ALLOWED: &str = "x-amz-content-sha256";

/// How a request is authenticated, as [`check_request`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// No Authorization header and no signature in the query.
    Anonymous,
    /// AWS Signature Version 2 (header `AWS <key>:<signature>` or query `Signature=`): its
    /// string to sign contains every `x-amz-*` header, so none can be added unsigned. Only S3
    /// accepts it.
    SigV2,
    /// SigV4 in the Authorization header.
    HeaderV4,
    /// SigV4 in the query (a presigned URL).
    PresignedV4,
}

/// A classified request, with the parsed claim for the SigV4 cases.
pub(crate) enum Classified<'a> {
    Anonymous,
    SigV2,
    HeaderV4(Claim<'a>),
    PresignedV4(PresignedParams<'a>),
}

/// Checks the authentication envelope of a request without any secret: at most one mechanism,
/// a parsable SigV4 claim of the one supported algorithm, `X-Amz-Expires` ≤ 604800, and no
/// unsigned `x-amz-*` header. Servers that leave the signature itself to someone else (s3s for
/// S3) call this first, so what that verifier skips is refused here.
pub fn check_request(headers: &[(&str, &str)], raw_query: &str) -> Result<AuthScheme, AuthError> {
    Ok(match classify(headers, raw_query)? {
        Classified::Anonymous => AuthScheme::Anonymous,
        Classified::SigV2 => AuthScheme::SigV2,
        Classified::HeaderV4(_) => AuthScheme::HeaderV4,
        Classified::PresignedV4(_) => AuthScheme::PresignedV4,
    })
}

/// What an S3 endpoint expects of a request beyond [`check_request`]: its own region, and (for
/// SigV2, which s3s verifies without looking at time) a current date.
#[derive(Debug, Clone, Copy)]
pub struct S3Envelope<'a> {
    /// The region every SigV4 credential scope must name.
    pub region: &'a str,
    pub now: time::OffsetDateTime,
}

/// [`check_request`] for S3, plus AWS's S3 refusals that need no secret: a SigV4 scope naming
/// another region (400 `AuthorizationHeaderMalformed` / `AuthorizationQueryParametersError`, which
/// name the right region so clients retry there), and a SigV2 header-signed request without a
/// valid `Date`/`x-amz-date` (403 `AccessDenied`) or with one more than 15 minutes off (403
/// `RequestTimeTooSkewed`): the date is the only thing that keeps a SigV2 signature from being
/// replayed forever.
pub fn check_s3_request(
    headers: &[(&str, &str)],
    raw_query: &str,
    expected: S3Envelope<'_>,
) -> Result<AuthScheme, AuthError> {
    let wrong_region = |region: &str, presigned: bool| AuthError::WrongRegion {
        region: region.to_owned(),
        expected: expected.region.to_owned(),
        presigned,
    };
    match classify(headers, raw_query)? {
        Classified::Anonymous => Ok(AuthScheme::Anonymous),
        Classified::HeaderV4(claim) if claim.region != expected.region => Err(wrong_region(&claim.region, false)),
        Classified::HeaderV4(_) => Ok(AuthScheme::HeaderV4),
        Classified::PresignedV4(p) if p.claim.region != expected.region => Err(wrong_region(&p.claim.region, true)),
        Classified::PresignedV4(_) => Ok(AuthScheme::PresignedV4),
        Classified::SigV2 => {
            let header_signed = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
            if header_signed {
                check_sigv2_date(headers, expected.now)?;
            }
            Ok(AuthScheme::SigV2)
        }
    }
}

/// The date of a SigV2 header-signed request: `x-amz-date` if present (it overrides `Date` in
/// the string to sign), in any HTTP date format or SigV4's basic ISO 8601.
fn check_sigv2_date(headers: &[(&str, &str)], now: time::OffsetDateTime) -> Result<(), AuthError> {
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    let raw = header("x-amz-date").or_else(|| header("date")).ok_or(AuthError::MissingDate)?;
    let when = parse_request_date(raw).ok_or(AuthError::MissingDate)?;
    if (when - now).abs() > crate::MAX_CLOCK_SKEW {
        return Err(AuthError::RequestTimeTooSkewed {
            request_time: raw.to_owned(),
            server_time: crate::signing_key::format_amz_date(now),
        });
    }
    Ok(())
}

fn parse_request_date(raw: &str) -> Option<time::OffsetDateTime> {
    if let Some(t) = crate::signing_key::parse_amz_date(raw) {
        return Some(t);
    }
    let system = httpdate::parse_http_date(raw).ok()?;
    Some(time::OffsetDateTime::from(system))
}

pub(crate) fn classify<'a>(headers: &[(&str, &'a str)], raw_query: &'a str) -> Result<Classified<'a>, AuthError> {
    let mut authorization = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("authorization")).map(|(_, v)| *v);
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::Malformed("Only one Authorization header is allowed.".into()));
    }
    // SigV4 query auth is announced by X-Amz-Algorithm (AWS) or X-Amz-Signature (what s3s keys
    // on); SigV2 query auth by Signature.
    let v4_query = ["X-Amz-Algorithm", "X-Amz-Signature"].iter().any(|p| query_param(raw_query, p).is_some());
    let v2_query = query_param(raw_query, "Signature").is_some();
    if usize::from(header.is_some()) + usize::from(v4_query) + usize::from(v2_query) > 1 {
        return Err(AuthError::MultipleAuthMechanisms);
    }
    if v4_query {
        let presigned = parse_presigned(raw_query)?;
        require_signed_amz_headers(headers, &presigned.claim.signed_headers)?;
        return Ok(Classified::PresignedV4(presigned));
    }
    if v2_query {
        return Ok(Classified::SigV2);
    }
    let Some(value) = header else {
        return Ok(Classified::Anonymous);
    };
    let value = value.trim();
    // What s3s takes for SigV2: "AWS " then "<key>:<signature>".
    if value.strip_prefix("AWS ").is_some_and(|rest| rest.contains(':')) {
        return Ok(Classified::SigV2);
    }
    // Anything else must be SigV4 by name: s3s would verify any token as SigV4.
    let algorithm = value.split_ascii_whitespace().next().unwrap_or_default();
    if algorithm != crate::ALGORITHM {
        return Err(AuthError::UnsupportedAuthorizationType);
    }
    let claim = parse_authorization(value)?;
    require_signed_amz_headers(headers, &claim.signed_headers)?;
    Ok(Classified::HeaderV4(claim))
}

/// The names (lower-case, sorted, once each) of the `x-amz-*` headers in `headers` that
/// `signed_headers` does not cover; `x-amz-content-sha256` never counts.
pub fn unsigned_amz_headers(headers: &[(&str, &str)], signed_headers: &[impl AsRef<str>]) -> Vec<String> {
    let mut unsigned: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.trim().to_ascii_lowercase())
        .filter(|name| name.starts_with("x-amz-") && name != UNSIGNED_AMZ_HEADER_ALLOWED)
        .filter(|name| !signed_headers.iter().any(|s| s.as_ref().eq_ignore_ascii_case(name)))
        .collect();
    unsigned.sort();
    unsigned.dedup();
    unsigned
}

fn require_signed_amz_headers(headers: &[(&str, &str)], signed_headers: &[String]) -> Result<(), AuthError> {
    let names = unsigned_amz_headers(headers, signed_headers);
    if names.is_empty() {
        Ok(())
    } else {
        Err(AuthError::UnsignedHeaders { names })
    }
}

/// The service named in the credential scope of a SigV4 Authorization header (`kms`, `iam`, ...),
/// for routing; `None` when the header is not a parsable SigV4 claim.
pub fn credential_service(authorization: &str) -> Option<String> {
    parse_authorization(authorization.trim()).ok().map(|c| c.service)
}

/// The decoded value of a query parameter (e.g. `X-Amz-Security-Token`).
pub(crate) fn decoded_query_param(raw_query: &str, name: &str) -> Option<String> {
    query_param(raw_query, name).map(|v| String::from_utf8_lossy(&percent_decode(v)).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn header_auth(signed: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/s3/aws4_request, SignedHeaders={signed}, Signature={SIG}")
    }

    fn presigned_query(signed: &str, expires: u32) -> String {
        format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261124%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261124T120000Z&X-Amz-Expires={expires}&X-Amz-SignedHeaders={signed}&X-Amz-Signature={SIG}"
        )
    }

    #[test]
    fn unsigned_amz_header_on_a_header_signed_request_is_refused() {
        let auth = header_auth("host;x-amz-content-sha256;x-amz-date");
        let ok = [
            ("Host", "h"),
            ("X-Amz-Date", "d"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", &auth),
        ];
        assert_eq!(check_request(&ok, ""), Ok(AuthScheme::HeaderV4));
        let mut bad = ok.to_vec();
        bad.push(("X-Amz-Copy-Source", "/beta/secret"));
        bad.push(("x-amz-meta-a", "1"));
        bad.push(("x-amz-meta-a", "2"));
        assert_eq!(
            check_request(&bad, ""),
            Err(AuthError::UnsignedHeaders { names: vec!["x-amz-copy-source".into(), "x-amz-meta-a".into()] })
        );
    }

    #[test]
    fn content_sha256_and_non_amz_headers_may_stay_unsigned() {
        let auth = header_auth("host;x-amz-date");
        let headers = [
            ("host", "h"),
            ("x-amz-date", "d"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("user-agent", "Boto3/1.43"),
            ("amz-sdk-invocation-id", "1"),
            ("amz-sdk-request", "attempt=1; max=1"),
            ("x-amzn-trace-id", "Root=1"),
            ("expect", "100-continue"),
            ("content-type", "text/plain"),
            ("authorization", &auth),
        ];
        assert_eq!(check_request(&headers, ""), Ok(AuthScheme::HeaderV4));
        // x-amz-user-agent is an x-amz-* header like any other: the SDKs that send it sign it.
        let mut with_ua = headers.to_vec();
        with_ua.push(("x-amz-user-agent", "aws-sdk-js/3"));
        assert_eq!(
            check_request(&with_ua, ""),
            Err(AuthError::UnsignedHeaders { names: vec!["x-amz-user-agent".into()] })
        );
    }

    #[test]
    fn presigned_urls_cover_only_their_signed_headers() {
        let q = presigned_query("host", 3600);
        assert_eq!(check_request(&[("host", "h")], &q), Ok(AuthScheme::PresignedV4));
        assert_eq!(
            check_request(&[("host", "h"), ("x-amz-copy-source", "/beta/secret")], &q),
            Err(AuthError::UnsignedHeaders { names: vec!["x-amz-copy-source".into()] })
        );
        assert_eq!(
            check_request(&[("host", "h"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], &q),
            Ok(AuthScheme::PresignedV4)
        );
        let signed = presigned_query("host%3Bx-amz-server-side-encryption", 60);
        assert_eq!(
            check_request(&[("host", "h"), ("x-amz-server-side-encryption", "AES256")], &signed),
            Ok(AuthScheme::PresignedV4)
        );
    }

    #[test]
    fn presigned_lifetime_is_capped_at_seven_days() {
        assert_eq!(check_request(&[("host", "h")], &presigned_query("host", 604_800)), Ok(AuthScheme::PresignedV4));
        for too_long in [604_801, 315_360_000] {
            match check_request(&[("host", "h")], &presigned_query("host", too_long)) {
                Err(AuthError::MalformedQuery(m)) => assert!(m.contains("604800"), "{m}"),
                other => panic!("{too_long}: {other:?}"),
            }
        }
        // X-Amz-Algorithm alone announces query auth: the missing parameters are an error, not
        // an anonymous request.
        assert!(matches!(check_request(&[], "X-Amz-Algorithm=AWS4-HMAC-SHA256"), Err(AuthError::MalformedQuery(_))));
        assert!(matches!(check_request(&[], &format!("X-Amz-Signature={SIG}")), Err(AuthError::MalformedQuery(_))));
    }

    #[test]
    fn only_one_mechanism() {
        let auth = header_auth("host");
        let q = presigned_query("host", 60);
        assert_eq!(
            check_request(&[("host", "h"), ("authorization", &auth)], &q),
            Err(AuthError::MultipleAuthMechanisms)
        );
        assert_eq!(
            check_request(&[("authorization", "AWS AK:c2ln")], "X-Amz-Algorithm=AWS4-HMAC-SHA256"),
            Err(AuthError::MultipleAuthMechanisms)
        );
        assert_eq!(
            check_request(&[], &format!("{q}&Signature=x&AWSAccessKeyId=AK&Expires=1")),
            Err(AuthError::MultipleAuthMechanisms)
        );
        assert_eq!(check_request(&[("authorization", &auth)], "Signature=x"), Err(AuthError::MultipleAuthMechanisms));
        let twice = [("authorization", auth.as_str()), ("Authorization", auth.as_str())];
        assert!(matches!(check_request(&twice, ""), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn sigv2_and_anonymous_pass_unsigned_amz_headers() {
        // SigV2's string to sign holds every x-amz-* header; anonymous requests sign nothing.
        let headers =
            [("authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="), ("x-amz-meta-a", "1")];
        assert_eq!(check_request(&headers, ""), Ok(AuthScheme::SigV2));
        assert_eq!(
            check_request(&[("x-amz-meta-a", "1")], "Signature=x&AWSAccessKeyId=AK&Expires=1"),
            Ok(AuthScheme::SigV2)
        );
        assert_eq!(check_request(&[("x-amz-meta-a", "1")], "prefix=a"), Ok(AuthScheme::Anonymous));
    }

    #[test]
    fn other_algorithms_are_refused_not_verified_as_sigv4() {
        for other in [
            format!("OTHER Credential=AK/20261124/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={SIG}"),
            format!("aws4-hmac-sha256 Credential=AK/20261124/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-ECDSA-P256-SHA256 Credential=AK/20261124/s3/aws4_request, SignedHeaders=host, Signature={SIG}"),
            "AWS Credential=AK/20261124/us-east-1/s3/aws4_request, SignedHeaders=host".into(),
            "Bearer abc".into(),
        ] {
            let headers = [("authorization", other.as_str()), ("x-amz-copy-source", "/b/k")];
            assert_eq!(check_request(&headers, ""), Err(AuthError::UnsupportedAuthorizationType), "{other}");
        }
        let broken = [("authorization", "AWS4-HMAC-SHA256 Credential=AK")];
        assert!(matches!(check_request(&broken, ""), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn s3_requests_must_name_the_server_region() {
        let now = time::macros::datetime!(2026-11-24 12:00 UTC);
        let expected = S3Envelope { region: "us-east-1", now };
        let ok = header_auth("host;x-amz-date");
        assert_eq!(check_s3_request(&[("authorization", &ok)], "", expected), Ok(AuthScheme::HeaderV4));
        let us = ok.replace("/us-east-1/", "/US/");
        assert_eq!(
            check_s3_request(&[("authorization", &us)], "", expected),
            Err(AuthError::WrongRegion { region: "US".into(), expected: "us-east-1".into(), presigned: false })
        );
        let q = presigned_query("host", 60).replace("%2Fus-east-1%2F", "%2Feu-west-1%2F");
        assert_eq!(
            check_s3_request(&[("host", "h")], &q, expected),
            Err(AuthError::WrongRegion { region: "eu-west-1".into(), expected: "us-east-1".into(), presigned: true })
        );
        let eu = S3Envelope { region: "eu-west-1", now };
        assert_eq!(check_s3_request(&[("host", "h")], &q, eu), Ok(AuthScheme::PresignedV4));
    }

    #[test]
    fn sigv2_header_auth_needs_a_current_date() {
        let now = time::macros::datetime!(2026-11-24 12:00 UTC);
        let expected = S3Envelope { region: "us-east-1", now };
        let auth = ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
        let with = |date: &'static str, name: &'static str| check_s3_request(&[auth, (name, date)], "", expected);
        assert_eq!(with("Tue, 24 Nov 2026 12:10:00 GMT", "Date"), Ok(AuthScheme::SigV2));
        assert_eq!(with("Tuesday, 24-Nov-26 11:50:00 GMT", "date"), Ok(AuthScheme::SigV2));
        assert_eq!(with("20261124T120500Z", "x-amz-date"), Ok(AuthScheme::SigV2));
        assert_eq!(check_s3_request(&[auth], "", expected), Err(AuthError::MissingDate));
        assert_eq!(with("yesterday", "Date"), Err(AuthError::MissingDate));
        assert!(matches!(with("Tue, 24 Nov 2026 12:16:00 GMT", "Date"), Err(AuthError::RequestTimeTooSkewed { .. })));
        assert!(matches!(with("Tue, 24 Nov 2026 11:44:00 GMT", "Date"), Err(AuthError::RequestTimeTooSkewed { .. })));
        // x-amz-date wins over Date.
        let both = [auth, ("date", "Tue, 24 Nov 2026 12:00:00 GMT"), ("x-amz-date", "Mon, 24 Nov 2025 12:00:00 GMT")];
        assert!(matches!(check_s3_request(&both, "", expected), Err(AuthError::RequestTimeTooSkewed { .. })));
        // Presigned SigV2 URLs carry Expires instead (checked by s3s).
        assert_eq!(check_s3_request(&[], "Signature=x&AWSAccessKeyId=AK&Expires=1", expected), Ok(AuthScheme::SigV2));
    }

    #[test]
    fn credential_service_reads_the_scope() {
        assert_eq!(credential_service(&header_auth("host")).as_deref(), Some("s3"));
        assert_eq!(credential_service("AWS AK:sig"), None);
    }

    fn amz_name() -> impl Strategy<Value = String> {
        "[xX]-[aA][mM][zZ]-[a-zA-Z0-9-]{1,12}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Whatever the headers, every x-amz-* name outside the signed list (but the exempt one)
        /// is reported, and nothing else is.
        #[test]
        fn the_rule_reports_exactly_the_uncovered_amz_headers(
            signed in proptest::collection::vec(amz_name(), 0..4),
            sent in proptest::collection::vec((prop_oneof![amz_name(), "[a-zA-Z-]{1,12}"], "[ -~]{0,8}"), 0..8),
        ) {
            let signed: Vec<String> = signed.iter().map(|s| s.to_ascii_lowercase()).collect();
            let headers: Vec<(&str, &str)> = sent.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let reported = unsigned_amz_headers(&headers, &signed);
            for (name, _) in &sent {
                let lower = name.to_ascii_lowercase();
                let must_report = lower.starts_with("x-amz-") && lower != UNSIGNED_AMZ_HEADER_ALLOWED && !signed.contains(&lower);
                prop_assert_eq!(reported.contains(&lower), must_report, "{}", name);
            }
            prop_assert!(reported.iter().all(|r| sent.iter().any(|(n, _)| n.eq_ignore_ascii_case(r))));
        }

        /// Adding one unsigned x-amz-* header to any well-formed header-signed or presigned
        /// request turns it into an UnsignedHeaders refusal naming that header.
        #[test]
        fn one_added_amz_header_is_always_refused(extra in amz_name(), presigned in any::<bool>()) {
            prop_assume!(!extra.eq_ignore_ascii_case(UNSIGNED_AMZ_HEADER_ALLOWED) && !extra.eq_ignore_ascii_case("x-amz-date"));
            let auth = header_auth("host;x-amz-date");
            let q = presigned_query("host", 60);
            let (base, query): (Vec<(&str, &str)>, &str) = if presigned {
                (vec![("host", "h")], &q)
            } else {
                (vec![("host", "h"), ("x-amz-date", "d"), ("authorization", &auth)], "")
            };
            prop_assert!(check_request(&base, query).is_ok());
            let mut with = base.clone();
            with.push((&extra, "v"));
            prop_assert_eq!(
                check_request(&with, query),
                Err(AuthError::UnsignedHeaders { names: vec![extra.to_ascii_lowercase()] })
            );
        }

        #[test]
        fn random_envelopes_never_panic(auth in proptest::option::of("\\PC{0,120}"), query in "[a-zA-Z0-9%=&;-]{0,120}") {
            let mut headers = vec![("host", "h"), ("x-amz-meta-a", "1")];
            if let Some(a) = &auth {
                headers.push(("authorization", a));
            }
            let _ = check_request(&headers, &query);
        }
    }
}
