/// Why a request's authentication was refused. [`AuthError::code`] is the one table that turns
/// each variant into the status and error code of every API on our port (S3, KMS, CloudTrail,
/// IAM). Messages follow AWS's wording and never contain a secret or a signature we computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No Authorization header and no presigned query parameters.
    #[error("Missing Authentication Token")]
    Missing,
    /// An Authorization header we cannot parse, or a wrong scope.
    #[error("{0}")]
    Malformed(String),
    /// Presigned-URL query parameters we cannot parse, or out of range (`X-Amz-Expires` above
    /// 604800 seconds).
    #[error("{0}")]
    MalformedQuery(String),
    /// An Authorization header of a scheme we do not speak (not SigV4 `AWS4-HMAC-SHA256`; SigV2
    /// outside S3).
    #[error("Unsupported Authorization Type")]
    UnsupportedAuthorizationType,
    /// An Authorization header and presigned query parameters (or SigV2 and SigV4 query
    /// parameters) in one request.
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"
    )]
    MultipleAuthMechanisms,
    /// `x-amz-*` headers the signature does not cover (their names, lower-case, sorted).
    #[error("There were headers present in the request which were not signed")]
    UnsignedHeaders { names: Vec<String> },
    /// The access key id is not known.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey { access_key_id: String },
    /// The signature does not match the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    /// The body does not hash to the `x-amz-content-sha256` the client signed, or the body was
    /// left unsigned where it must be signed.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
    /// X-Amz-Date more than 15 minutes from the server clock.
    #[error("Signature expired: {amz_date} is now earlier than {earliest} ({now} - 15 min.)")]
    SignatureExpired { amz_date: String, earliest: String, now: String },
    /// X-Amz-Date more than 15 minutes ahead of the server clock.
    #[error("Signature not yet current: {amz_date} is still later than {latest} ({now} + 15 min.)")]
    SignatureNotYetCurrent { amz_date: String, latest: String, now: String },
    /// A presigned URL past its X-Amz-Expires.
    #[error("Request has expired")]
    PresignedUrlExpired { expired_at: String, now: String },
    /// The credential scope names another region than the server's: S3 names the right one
    /// (`<Region>` in the error), so clients such as s3cmd retry there.
    #[error("{}the region '{region}' is wrong; expecting '{expected}'", if *.presigned { "Error parsing the X-Amz-Credential parameter; " } else { "The authorization header is malformed; " })]
    WrongRegion { region: String, expected: String, presigned: bool },
    /// A SigV2-signed request without a parsable `Date` or `x-amz-date` header.
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    MissingDate,
    /// A SigV2-signed request whose date is more than 15 minutes from the server clock.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed { request_time: String, server_time: String },
}

/// The wire protocols on our port, by AWS's names: each reports errors with its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// S3 (and the admin endpoints in S3's URL space).
    RestXml,
    /// KMS (`TrentService`), CloudTrail (`CloudTrail_20131101`): JSON 1.1 with a `__type`.
    AwsJson,
    /// IAM: form-encoded requests, XML `ErrorResponse`.
    AwsQuery,
}

/// An HTTP status and the AWS error code to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsErrorCode {
    pub status: u16,
    pub code: &'static str,
}

const fn answer(status: u16, code: &'static str) -> AwsErrorCode {
    AwsErrorCode { status, code }
}

impl AuthError {
    /// The status and error code for `protocol` (AWS contract A.1; S3 as its error table,
    /// KMS as its `__type`s, IAM as its query-API codes).
    pub fn code(&self, protocol: Protocol) -> AwsErrorCode {
        use AuthError::*;
        use Protocol::*;
        match (protocol, self) {
            (RestXml, Missing) => answer(403, "AccessDenied"),
            (RestXml, Malformed(_)) => answer(400, "AuthorizationHeaderMalformed"),
            (RestXml, MalformedQuery(_)) => answer(400, "AuthorizationQueryParametersError"),
            (RestXml, UnsupportedAuthorizationType | MultipleAuthMechanisms) => answer(400, "InvalidArgument"),
            (RestXml, UnsignedHeaders { .. }) => answer(403, "AccessDenied"),
            (RestXml, UnknownAccessKey { .. }) => answer(403, "InvalidAccessKeyId"),
            (RestXml, SignatureMismatch) => answer(403, "SignatureDoesNotMatch"),
            (RestXml, PayloadHashMismatch) => answer(400, "XAmzContentSHA256Mismatch"),
            (RestXml, SignatureExpired { .. } | SignatureNotYetCurrent { .. }) => answer(403, "RequestTimeTooSkewed"),
            (RestXml, PresignedUrlExpired { .. }) => answer(403, "AccessDenied"),
            (RestXml, WrongRegion { presigned: false, .. }) => answer(400, "AuthorizationHeaderMalformed"),
            (RestXml, WrongRegion { presigned: true, .. }) => answer(400, "AuthorizationQueryParametersError"),
            (RestXml, MissingDate) => answer(403, "AccessDenied"),
            (RestXml, RequestTimeTooSkewed { .. }) => answer(403, "RequestTimeTooSkewed"),

            (AwsJson, Missing) => answer(403, "MissingAuthenticationTokenException"),
            (
                AwsJson,
                Malformed(_)
                | MalformedQuery(_)
                | UnsupportedAuthorizationType
                | MultipleAuthMechanisms
                | WrongRegion { .. }
                | MissingDate,
            ) => answer(400, "IncompleteSignatureException"),
            (AwsJson, UnsignedHeaders { .. }) => answer(403, "AccessDeniedException"),
            (AwsJson, UnknownAccessKey { .. }) => answer(400, "UnrecognizedClientException"),
            (
                AwsJson,
                SignatureMismatch
                | PayloadHashMismatch
                | SignatureExpired { .. }
                | SignatureNotYetCurrent { .. }
                | PresignedUrlExpired { .. }
                | RequestTimeTooSkewed { .. },
            ) => answer(400, "InvalidSignatureException"),

            (AwsQuery, Missing) => answer(403, "MissingAuthenticationToken"),
            (
                AwsQuery,
                Malformed(_)
                | MalformedQuery(_)
                | UnsupportedAuthorizationType
                | MultipleAuthMechanisms
                | WrongRegion { .. }
                | MissingDate,
            ) => answer(400, "IncompleteSignature"),
            (AwsQuery, UnsignedHeaders { .. }) => answer(403, "AccessDenied"),
            (AwsQuery, UnknownAccessKey { .. }) => answer(403, "InvalidClientTokenId"),
            (
                AwsQuery,
                SignatureMismatch
                | PayloadHashMismatch
                | SignatureExpired { .. }
                | SignatureNotYetCurrent { .. }
                | PresignedUrlExpired { .. }
                | RequestTimeTooSkewed { .. },
            ) => answer(403, "SignatureDoesNotMatch"),
        }
    }

    /// True for the date-skew refusals (S3's RequestTimeTooSkewed).
    pub fn is_clock_skew(&self) -> bool {
        matches!(
            self,
            AuthError::SignatureExpired { .. }
                | AuthError::SignatureNotYetCurrent { .. }
                | AuthError::RequestTimeTooSkewed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<AuthError> {
        vec![
            AuthError::Missing,
            AuthError::Malformed("x".into()),
            AuthError::MalformedQuery("x".into()),
            AuthError::UnsupportedAuthorizationType,
            AuthError::MultipleAuthMechanisms,
            AuthError::UnsignedHeaders { names: vec!["x-amz-copy-source".into()] },
            AuthError::UnknownAccessKey { access_key_id: "AK".into() },
            AuthError::SignatureMismatch,
            AuthError::PayloadHashMismatch,
            AuthError::SignatureExpired { amz_date: "a".into(), earliest: "b".into(), now: "c".into() },
            AuthError::SignatureNotYetCurrent { amz_date: "a".into(), latest: "b".into(), now: "c".into() },
            AuthError::PresignedUrlExpired { expired_at: "a".into(), now: "b".into() },
            AuthError::WrongRegion { region: "US".into(), expected: "us-east-1".into(), presigned: false },
            AuthError::WrongRegion { region: "US".into(), expected: "us-east-1".into(), presigned: true },
            AuthError::MissingDate,
            AuthError::RequestTimeTooSkewed { request_time: "a".into(), server_time: "b".into() },
        ]
    }

    /// The whole table, one row per variant: (S3, KMS/CloudTrail, IAM).
    #[test]
    fn every_variant_has_its_code_in_every_protocol() {
        let want: [(&str, u16, &str, u16, &str, u16); 16] = [
            ("AccessDenied", 403, "MissingAuthenticationTokenException", 403, "MissingAuthenticationToken", 403),
            ("AuthorizationHeaderMalformed", 400, "IncompleteSignatureException", 400, "IncompleteSignature", 400),
            ("AuthorizationQueryParametersError", 400, "IncompleteSignatureException", 400, "IncompleteSignature", 400),
            ("InvalidArgument", 400, "IncompleteSignatureException", 400, "IncompleteSignature", 400),
            ("InvalidArgument", 400, "IncompleteSignatureException", 400, "IncompleteSignature", 400),
            ("AccessDenied", 403, "AccessDeniedException", 403, "AccessDenied", 403),
            ("InvalidAccessKeyId", 403, "UnrecognizedClientException", 400, "InvalidClientTokenId", 403),
            ("SignatureDoesNotMatch", 403, "InvalidSignatureException", 400, "SignatureDoesNotMatch", 403),
            ("XAmzContentSHA256Mismatch", 400, "InvalidSignatureException", 400, "SignatureDoesNotMatch", 403),
            ("RequestTimeTooSkewed", 403, "InvalidSignatureException", 400, "SignatureDoesNotMatch", 403),
            ("RequestTimeTooSkewed", 403, "InvalidSignatureException", 400, "SignatureDoesNotMatch", 403),
            ("AccessDenied", 403, "InvalidSignatureException", 400, "SignatureDoesNotMatch", 403),
            ("AuthorizationHeaderMalformed", 400, "IncompleteSignatureException", 400, "IncompleteSignature", 400),
            ("AuthorizationQueryParametersError", 400, "IncompleteSignatureException", 400, "IncompleteSignature", 400),
            ("AccessDenied", 403, "IncompleteSignatureException", 400, "IncompleteSignature", 400),
            ("RequestTimeTooSkewed", 403, "InvalidSignatureException", 400, "SignatureDoesNotMatch", 403),
        ];
        for (err, (s3, s3_status, json, json_status, query, query_status)) in every_variant().into_iter().zip(want) {
            assert_eq!(err.code(Protocol::RestXml), answer(s3_status, s3), "{err:?}");
            assert_eq!(err.code(Protocol::AwsJson), answer(json_status, json), "{err:?}");
            assert_eq!(err.code(Protocol::AwsQuery), answer(query_status, query), "{err:?}");
        }
    }

    #[test]
    fn messages_are_aws_wording() {
        let unsigned = AuthError::UnsignedHeaders { names: vec!["x-amz-copy-source".into()] };
        assert_eq!(unsigned.to_string(), "There were headers present in the request which were not signed");
        assert!(AuthError::MultipleAuthMechanisms.to_string().starts_with("Only one auth mechanism allowed;"));
        let expired = AuthError::SignatureExpired { amz_date: "a".into(), earliest: "b".into(), now: "c".into() };
        assert!(expired.to_string().starts_with("Signature expired: "));
        assert!(expired.is_clock_skew());
        let region = AuthError::WrongRegion { region: "US".into(), expected: "us-east-1".into(), presigned: false };
        assert_eq!(
            region.to_string(),
            "The authorization header is malformed; the region 'US' is wrong; expecting 'us-east-1'"
        );
        let query = AuthError::WrongRegion { region: "US".into(), expected: "us-east-1".into(), presigned: true };
        assert_eq!(
            query.to_string(),
            "Error parsing the X-Amz-Credential parameter; the region 'US' is wrong; expecting 'us-east-1'"
        );
        assert!(!AuthError::SignatureMismatch.is_clock_skew());
    }
}
