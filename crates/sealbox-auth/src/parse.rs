//! Parsing of the Authorization header and of presigned query parameters. Never panics on input.

use crate::canonical::percent_decode;
use crate::AuthError;

/// What a client claims: who, which scope, which headers, which signature.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Claim<'a> {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: &'a str,
}

fn malformed(msg: impl Into<String>) -> AuthError {
    AuthError::Malformed(msg.into())
}

/// `AWS4-HMAC-SHA256 Credential=AK/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex`
pub(crate) fn parse_authorization(value: &str) -> Result<Claim<'_>, AuthError> {
    let rest = value
        .strip_prefix(crate::ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| malformed(format!("Authorization header must use the {} algorithm.", crate::ALGORITHM)))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| malformed(format!("Authorization header requires '=' in every parameter: '{part}'.")))?;
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            other => return Err(malformed(format!("Unknown Authorization header parameter '{other}'."))),
        };
        if slot.replace(value.trim()).is_some() {
            return Err(malformed(format!("Authorization header repeats '{name}'.")));
        }
    }
    let credential = credential.ok_or_else(|| malformed("Authorization header requires 'Credential' parameter."))?;
    let signed = signed.ok_or_else(|| malformed("Authorization header requires 'SignedHeaders' parameter."))?;
    let signature = signature.ok_or_else(|| malformed("Authorization header requires 'Signature' parameter."))?;
    claim(credential, signed, signature)
}

/// The raw (still encoded) value of the first query parameter named `wanted` (names compared
/// decoded, case-sensitively, as AWS does).
pub(crate) fn query_param<'a>(raw_query: &'a str, wanted: &str) -> Option<&'a str> {
    raw_query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name) == wanted.as_bytes()).then_some(value)
    })
}

/// The presigned-URL (query-string authentication) parameters of a raw query.
pub(crate) struct PresignedParams<'a> {
    pub claim: Claim<'a>,
    pub amz_date: String,
    pub expires_secs: i64,
}

fn malformed_query(msg: impl Into<String>) -> AuthError {
    AuthError::MalformedQuery(msg.into())
}

/// Parses the SigV4 query parameters of a request that carries some (AWS contract A.4). Every
/// refusal is a [`AuthError::MalformedQuery`] in AWS's words.
pub(crate) fn parse_presigned(raw_query: &str) -> Result<PresignedParams<'_>, AuthError> {
    const REQUIRED: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";
    let text = |name: &str| -> Result<String, AuthError> {
        let raw = query_param(raw_query, name).ok_or_else(|| malformed_query(REQUIRED))?;
        String::from_utf8(percent_decode(raw)).map_err(|_| malformed_query(format!("{name} is not UTF-8.")))
    };
    let signature = query_param(raw_query, "X-Amz-Signature").ok_or_else(|| malformed_query(REQUIRED))?;
    let algorithm = text("X-Amz-Algorithm")?;
    let credential = text("X-Amz-Credential")?;
    let signed = text("X-Amz-SignedHeaders")?;
    let amz_date = text("X-Amz-Date")?;
    let expires = text("X-Amz-Expires")?;
    if algorithm != crate::ALGORITHM {
        return Err(malformed_query(format!("X-Amz-Algorithm only supports \"{}\"", crate::ALGORITHM)));
    }
    let expires_secs: i64 = expires.parse().map_err(|_| malformed_query("X-Amz-Expires should be a number"))?;
    if expires_secs < 0 {
        return Err(malformed_query("X-Amz-Expires must be non-negative"));
    }
    if expires_secs > crate::MAX_PRESIGNED_EXPIRES_SECS {
        return Err(malformed_query(
            "X-Amz-Expires must be less than a week (in seconds) that is; the maximum expires is 604800 seconds",
        ));
    }
    let claim = claim(&credential, &signed, signature).map_err(|e| match e {
        AuthError::Malformed(m) => AuthError::MalformedQuery(m),
        other => other,
    })?;
    Ok(PresignedParams { claim, amz_date, expires_secs })
}

fn claim<'a>(credential: &str, signed: &str, signature: &'a str) -> Result<Claim<'a>, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(malformed(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            parts.get(2).copied().unwrap_or_default()
        )));
    };
    if terminator != "aws4_request" {
        return Err(malformed(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed("Credential has an empty access key, region or service."));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("Credential should be scoped to a valid date, not '{date}'.")));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    let well_formed = signed_headers
        .iter()
        .all(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && b != b':'));
    if !well_formed {
        return Err(malformed(format!("SignedHeaders must be lower-case header names separated by ';': '{signed}'.")));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(malformed("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("Signature must be 64 hexadecimal characters."));
    }
    Ok(Claim {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    #[test]
    fn parses_what_botocore_sends() {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={SIG}"
        );
        let c = parse_authorization(&header).unwrap();
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!((c.date.as_str(), c.region.as_str(), c.service.as_str()), ("20261123", "us-east-1", "kms"));
        assert_eq!(c.signed_headers, ["content-type", "host", "x-amz-date", "x-amz-target"]);
        assert_eq!(c.signature, SIG);
        // No spaces after the commas is also legal.
        let tight = header.replace(", ", ",");
        assert_eq!(parse_authorization(&tight).unwrap().signature, SIG);
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            String::new(),
            "AWS4-HMAC-SHA256".into(),
            "AWS4-HMAC-SHA256X Credential=a".into(),
            "Basic dXNlcjpwYXNz".into(),
            "AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws4_request, SignedHeaders=host".to_string(),
            format!("AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AK/2026112/r/kms/aws4_request, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws5_request, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws4_request, SignedHeaders=x-amz-date, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws4_request, SignedHeaders=Host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws4_request, SignedHeaders=host;, Signature={SIG}"),
            "AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws4_request, SignedHeaders=host, Signature=zz".into(),
            format!("AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws4_request, Credential=x, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AK/20261123/r/kms/aws4_request, Foo=1, SignedHeaders=host, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=/20261123/r/kms/aws4_request, SignedHeaders=host, Signature={SIG}"),
        ] {
            assert!(matches!(parse_authorization(&bad), Err(AuthError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn presigned_parameters() {
        let q = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261123%2Fus-east-1%2Fkms%2Faws4_request&X-Amz-Date=20261123T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature={SIG}"
        );
        let p = parse_presigned(&q).unwrap();
        assert_eq!((p.claim.access_key_id.as_str(), p.expires_secs), ("AK", 60));
        let week = q.replace("X-Amz-Expires=60", "X-Amz-Expires=604800");
        assert_eq!(parse_presigned(&week).unwrap().expires_secs, 604_800);
        for (bad, message) in [
            (q.replace("X-Amz-Expires=60", "X-Amz-Expires=604801"), "X-Amz-Expires must be less than a week"),
            (q.replace("X-Amz-Expires=60", "X-Amz-Expires=315360000"), "X-Amz-Expires must be less than a week"),
            (q.replace("X-Amz-Expires=60", "X-Amz-Expires=x"), "X-Amz-Expires should be a number"),
            (q.replace("X-Amz-Expires=60", "X-Amz-Expires=-1"), "X-Amz-Expires must be non-negative"),
            (q.replace("&X-Amz-Date=20261123T000000Z", ""), "Query-string authentication version 4 requires"),
            (q.replace(&format!("&X-Amz-Signature={SIG}"), ""), "Query-string authentication version 4 requires"),
            (q.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), "X-Amz-Algorithm only supports"),
            (q.replace("%2Fkms%2F", "%2F"), "Credential should be scoped"),
        ] {
            match parse_presigned(&bad) {
                Err(AuthError::MalformedQuery(m)) => assert!(m.starts_with(message), "{bad}: {m}"),
                other => panic!("{bad}: {:?}", other.map(|p| p.expires_secs)),
            }
        }
    }

    #[test]
    fn query_parameter_names_are_decoded_and_case_sensitive() {
        assert_eq!(query_param("a=1&X%2DAmz%2DSignature=s&b", "X-Amz-Signature"), Some("s"));
        assert_eq!(query_param("x-amz-signature=s", "X-Amz-Signature"), None);
        assert_eq!(query_param("b", "b"), Some(""));
        assert_eq!(query_param("", "b"), None);
    }
}
