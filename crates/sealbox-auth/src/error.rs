/// Why a request's signature was refused. Every variant maps to one KMS/IAM error `__type` and
/// status ([`AuthError::aws_type`], [`AuthError::status`]); S3 codes are decided by s3s.
/// Messages follow AWS's wording and never contain a secret or a signature we computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No Authorization header and no presigned query parameters.
    #[error("Missing Authentication Token")]
    Missing,
    /// Authorization header or presigned parameters we cannot parse, or a wrong scope.
    #[error("{0}")]
    Malformed(String),
    /// The access key id is not known.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey { access_key_id: String },
    /// The signature does not match the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    /// The body does not hash to the `x-amz-content-sha256` the client signed.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
    /// X-Amz-Date more than 15 minutes from the server clock.
    #[error("Signature expired: {amz_date} is now earlier than {earliest} ({now} - 15 min.)")]
    SignatureExpired { amz_date: String, earliest: String, now: String },
    /// X-Amz-Date more than 15 minutes ahead of the server clock.
    #[error("Signature not yet current: {amz_date} is still later than {latest} ({now} + 15 min.)")]
    SignatureNotYetCurrent { amz_date: String, latest: String, now: String },
    /// A presigned URL past its X-Amz-Expires.
    #[error("Signature expired: {expired_at} is now earlier than {now}")]
    PresignedUrlExpired { expired_at: String, now: String },
}

impl AuthError {
    /// The KMS/IAM JSON `__type` (AWS contract A.1 table).
    pub fn aws_type(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Malformed(_) => "IncompleteSignatureException",
            AuthError::UnknownAccessKey { .. } => "UnrecognizedClientException",
            AuthError::SignatureMismatch
            | AuthError::PayloadHashMismatch
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::PresignedUrlExpired { .. } => "InvalidSignatureException",
        }
    }

    /// HTTP status to answer with: 403 for a missing token, 400 for the rest (as KMS does).
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing => 403,
            _ => 400,
        }
    }

    /// True for the date-skew refusals (S3's RequestTimeTooSkewed).
    pub fn is_clock_skew(&self) -> bool {
        matches!(self, AuthError::SignatureExpired { .. } | AuthError::SignatureNotYetCurrent { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_kms_type_and_status() {
        let cases = [
            (AuthError::Missing, "MissingAuthenticationTokenException", 403),
            (AuthError::Malformed("x".into()), "IncompleteSignatureException", 400),
            (AuthError::UnknownAccessKey { access_key_id: "AK".into() }, "UnrecognizedClientException", 400),
            (AuthError::SignatureMismatch, "InvalidSignatureException", 400),
            (AuthError::PayloadHashMismatch, "InvalidSignatureException", 400),
            (
                AuthError::SignatureExpired { amz_date: "a".into(), earliest: "b".into(), now: "c".into() },
                "InvalidSignatureException",
                400,
            ),
            (
                AuthError::SignatureNotYetCurrent { amz_date: "a".into(), latest: "b".into(), now: "c".into() },
                "InvalidSignatureException",
                400,
            ),
            (
                AuthError::PresignedUrlExpired { expired_at: "a".into(), now: "b".into() },
                "InvalidSignatureException",
                400,
            ),
        ];
        for (err, ty, status) in cases {
            assert_eq!((err.aws_type(), err.status()), (ty, status), "{err:?}");
        }
        let expired = AuthError::SignatureExpired { amz_date: "a".into(), earliest: "b".into(), now: "c".into() };
        assert!(expired.to_string().starts_with("Signature expired: "));
        assert!(expired.is_clock_skew());
    }
}
