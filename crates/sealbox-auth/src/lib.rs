//! sealbox-auth: the one AWS Signature Version 4 of sealbox. It verifies every API s3s does not
//! (KMS, IAM, CloudTrail, the admin endpoints), checks the envelope of S3 requests before s3s
//! verifies them ([`check_request`]: one auth mechanism, presigned lifetime, every `x-amz-*`
//! header signed), signs for our clients (admin and rewrap CLIs, the bench) and holds the one
//! table of auth error codes per API ([`AuthError::code`]).
//!
//! Owns: canonicalisation (AWS contract A.1), header and presigned-query verification, the
//! signing-key derivation and the signer.
//! Must never: do I/O, know about HTTP frameworks, print or keep a secret beyond one call, or
//! compare signatures in anything but constant time.
//! Start at [`verify`] (server side), [`check_request`] (the envelope) and [`sign`] (client side).

mod age;
mod canonical;
mod error;
mod parse;
mod scheme;
mod secret;
mod sign;
mod signing_key;
mod verify;

pub use age::request_age;
pub use error::{AuthError, AwsErrorCode, Protocol};
pub use scheme::{
    check_request, check_s3_request, credential_service, unsigned_amz_headers, AuthScheme, S3Envelope,
    UNSIGNED_AMZ_HEADER_ALLOWED,
};
pub use secret::SecretAccessKey;
pub use sign::{presign, sign, Credentials, RequestToSign};
pub use verify::{verify, Expected, SignedRequest, VerifiedCaller};

/// The one algorithm sealbox speaks (SigV4a is not supported).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash value for bodies that are not signed (S3, presigned URLs).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Hex SHA-256 of the empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// How far a request's date may be from the server clock (AWS: 15 minutes).
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(15);
/// Longest presigned URL lifetime AWS allows (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: i64 = 604_800;

/// Hex SHA-256 of `body`: what [`SignedRequest::body_sha256_hex`] and [`RequestToSign`] expect.
pub fn hex_sha256(body: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body))
}

#[cfg(test)]
mod tests;
