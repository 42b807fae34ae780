use thiserror::Error;

/// What can go wrong below the S3 layer. The S3 layer maps these to S3 error codes.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("bucket {0} already exists")]
    BucketExists(String),
    #[error("bucket {0} is not empty")]
    BucketNotEmpty(String),
    #[error("multipart upload {0} does not exist")]
    NoSuchUpload(String),
    #[error("the write condition was not met")]
    PreconditionFailed,
    /// An `If-Match` write found its object when the request started, but the object was deleted
    /// before the write committed (S3's 409 ConditionalRequestConflict).
    #[error("the object the write condition was checked against was deleted meanwhile")]
    ConditionalConflict,
    /// The caller's own check inside a store transaction refused the change (its error, boxed:
    /// the store does not interpret it).
    #[error("refused: {0}")]
    Refused(Box<dyn std::error::Error + Send + Sync>),
    #[error("no space left on the data volume")]
    NoSpace,
    #[error("meta store: {0}")]
    Sql(rusqlite::Error),
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A row failed its MAC (or has none): `meta.db` was changed outside sealbox. Refused, never
    /// read as if the row were absent.
    #[error("stored {0} failed its integrity check (meta.db was changed outside sealbox)")]
    Tampered(String),
    /// A record would name a blob that was not written through the blob store, or that the orphan
    /// sweep already queued for deletion (its write took longer than the orphan age).
    #[error("blob {0} is not a pending write (never written, or swept as an orphan)")]
    BlobNotWritten(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        // SQLite reports a full disk as SQLITE_FULL: keep it distinguishable from corruption.
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::NoSpace,
            _ => StoreError::Sql(err),
        }
    }
}

impl StoreError {
    /// Errors from the file system that mean "disk full" get their own variant so the S3 layer can
    /// answer with a clear, retryable error instead of a bare 500.
    pub fn from_io(err: std::io::Error) -> Self {
        if err.raw_os_error() == Some(28) || err.kind() == std::io::ErrorKind::StorageFull {
            StoreError::NoSpace
        } else {
            StoreError::Io(err)
        }
    }
}
