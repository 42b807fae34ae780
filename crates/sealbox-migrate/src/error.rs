//! What can go wrong in a migration, in words an operator can act on.

use std::path::PathBuf;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Which end of a migration an error happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Destination => "destination",
        })
    }
}

/// Errors of the migrate library.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot reach the {side} endpoint {endpoint}: {detail}")]
    Unreachable { side: Side, endpoint: String, detail: String },
    #[error(
        "the {side} endpoint {endpoint} rejected the credentials ({code}): check --{flag}-profile, \
         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file"
    )]
    BadCredentials { side: Side, endpoint: String, code: String, flag: &'static str },
    #[error("access denied by the {side} on {what} ({code})")]
    AccessDenied { side: Side, what: String, code: String },
    #[error("bucket {bucket} does not exist on the {side}")]
    NoSuchBucket { side: Side, bucket: String },
    #[error("object {key} vanished from the source during the copy")]
    Vanished { key: String },
    #[error("the destination is out of space (507 InsufficientStorage) while writing {key}")]
    OutOfSpace { key: String },
    #[error("verification ({mode}) failed for {key}: {reason}")]
    VerifyFailed { key: String, mode: &'static str, reason: String },
    #[error("{side} {op} on {what} failed: {code} (HTTP {status}): {message}")]
    Request { side: Side, op: &'static str, what: String, code: String, status: u16, message: String },
    #[error("checkpoint {path}: {source}")]
    Checkpoint { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Plan { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{0} is not a local folder or s3://bucket[/prefix]")]
    BadLocation(String),
    #[error("{0}")]
    BadArgument(String),
    #[error("decommission refused: {0}")]
    DecommissionRefused(String),
    #[error(
        "`migrate rewrap` is not available yet: re-wrapping data keys without rewriting data needs a \
         server admin API that sealbox does not have yet; use `migrate reencrypt` meanwhile"
    )]
    RewrapUnavailable,
}

impl MigrateError {
    /// Whether every later write to the destination would fail the same way.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, MigrateError::OutOfSpace { .. })
    }
}

/// Context of a failed SDK call, for [`classify`].
pub(crate) struct CallSite<'a> {
    pub side: Side,
    pub endpoint: &'a str,
    pub op: &'static str,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
}

/// HTTP status of an SDK error, when a response arrived.
pub(crate) fn status_of<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Turns an SDK error into the error an operator can act on.
pub(crate) fn classify<E>(site: CallSite<'_>, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> MigrateError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let what = match site.key {
        Some(k) => format!("s3://{}/{}", site.bucket, k),
        None => format!("s3://{}", site.bucket),
    };
    if matches!(err, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
        return MigrateError::Unreachable {
            side: site.side,
            endpoint: site.endpoint.to_owned(),
            detail: DisplayErrorContext(&err).to_string(),
        };
    }
    let status = status_of(&err).unwrap_or(0);
    let code = err.code().unwrap_or("").to_owned();
    let message = err.message().unwrap_or("").to_owned();
    let flag = match site.side {
        Side::Source => "src",
        Side::Destination => "dst",
    };
    match (code.as_str(), status) {
        ("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken", _) => {
            MigrateError::BadCredentials { side: site.side, endpoint: site.endpoint.to_owned(), code, flag }
        }
        ("NoSuchBucket", _) => MigrateError::NoSuchBucket { side: site.side, bucket: site.bucket.to_owned() },
        ("InsufficientStorage", _) | (_, 507) => {
            MigrateError::OutOfSpace { key: site.key.unwrap_or(site.bucket).to_owned() }
        }
        ("NoSuchKey", _) if site.side == Side::Source => {
            MigrateError::Vanished { key: site.key.unwrap_or("").to_owned() }
        }
        ("AccessDenied", _) | ("", 403) => MigrateError::AccessDenied {
            side: site.side,
            what,
            code: if code.is_empty() { "403 Forbidden: wrong credentials or no permission".into() } else { code },
        },
        _ => MigrateError::Request {
            side: site.side,
            op: site.op,
            what,
            code: if code.is_empty() { "(no error code)".into() } else { code },
            status,
            message: if message.is_empty() { DisplayErrorContext(&err).to_string() } else { message },
        },
    }
}
