//! Every mapping from an internal error to an S3 error code and status lives here.

use s3s::{s3_error, S3Error, S3ErrorCode};
use sealbox_store::StoreError;

pub(crate) fn store_error(err: StoreError) -> S3Error {
    match err {
        StoreError::NoSuchBucket(b) => s3_error!(NoSuchBucket, "The specified bucket does not exist: {b}"),
        StoreError::BucketExists(_) => s3_error!(BucketAlreadyOwnedByYou, "Your previous request to create the named bucket succeeded and you already own it."),
        StoreError::BucketNotEmpty(_) => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        StoreError::NoSuchUpload(_) => s3_error!(NoSuchUpload, "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."),
        StoreError::PreconditionFailed => s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"),
        StoreError::ConditionalConflict => s3_error!(ConditionalRequestConflict, "The conditional request cannot succeed due to a conflicting operation against this resource."),
        StoreError::NoSpace => insufficient_storage(),
        StoreError::Refused(e) => match e.downcast::<S3Error>() {
            Ok(s3) => *s3,
            Err(other) => internal("store update refused", other),
        },
        StoreError::Tampered(what) => s3_error!(
            InternalError,
            "The stored {what} failed its integrity check (meta.db was changed outside sealbox); the request was refused."
        ),
        other => {
            tracing::error!(error = %other, "store failure");
            s3_error!(InternalError, "We encountered an internal error. Please try again.")
        }
    }
}

/// Disk full: a clear, retryable answer (507), never a half-written object.
pub(crate) fn insufficient_storage() -> S3Error {
    let mut err = S3Error::with_message(
        S3ErrorCode::Custom("InsufficientStorage".into()),
        "The server has no room left to store the object. Free space and retry.",
    );
    err.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
    err
}

/// An object record that failed its integrity check (`integrity.rs`): 500, since the fault is
/// the server's storage, with a message that says what happened.
pub(crate) fn record_integrity_error() -> S3Error {
    s3_error!(
        InternalError,
        "The object's stored record failed its integrity check (it was changed outside sealbox); it was not served."
    )
}

pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> S3Error {
    tracing::error!(%err, "{context}");
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}

/// Runs blocking meta-store work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, S3Error>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(res) => res.map_err(store_error),
        Err(join) => Err(internal("meta store task failed", join)),
    }
}
