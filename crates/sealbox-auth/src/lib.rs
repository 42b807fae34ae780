//! sealbox-auth: AWS Signature Version 4 for the APIs s3s does not verify (KMS, IAM, CloudTrail).
//!
//! Owns: canonicalisation (AWS contract A.1), header and presigned-query verification, the
//! signing-key derivation and a signer for clients (the bench, tests).
//! Must never: do I/O, know about HTTP frameworks, print or keep a secret beyond one call, or
//! compare signatures in anything but constant time.
//! Start at [`verify`] (server side) and [`sign`] (client side).

mod age;
mod canonical;
mod error;
mod parse;
mod secret;
mod sign;
mod signing_key;
mod verify;

pub use age::request_age;
pub use error::AuthError;
pub use secret::SecretAccessKey;
pub use sign::{presign, sign, Credentials, RequestToSign};
pub use verify::{verify, SignedRequest, VerifiedCaller};

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
