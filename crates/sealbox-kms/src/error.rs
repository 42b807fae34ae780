use thiserror::Error;

/// A KMS failure, named as AWS names it on the wire (`__type` without the `Exception` suffix in
/// the variant, with it in [`KmsError::aws_type`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidMarker(String),
    #[error("{0}")]
    Tag(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    /// Verify: the signature does not match (`KMSInvalidSignatureException`).
    #[error("{0}")]
    InvalidSignature(String),
    /// VerifyMac: the MAC does not match (`KMSInvalidMacException`).
    #[error("{0}")]
    InvalidMac(String),
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    #[error("{0}")]
    InvalidImportToken(String),
    #[error("{0}")]
    ExpiredImportToken(String),
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    InvalidGrantId(String),
    #[error("{0}")]
    InvalidArn(String),
    /// `DryRun: true` on a request that would have succeeded.
    #[error("The request would have succeeded, but the DryRun option is set.")]
    DryRun,
    #[error("the root key does not open this key store (wrong key file or passphrase)")]
    WrongRootKey,
    #[error("root key: {0}")]
    RootKey(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl KmsError {
    /// The `__type` AWS puts in the JSON error body.
    pub fn aws_type(&self) -> &'static str {
        match self {
            KmsError::NotFound(_) => "NotFoundException",
            KmsError::Disabled(_) => "DisabledException",
            KmsError::InvalidState(_) => "KMSInvalidStateException",
            KmsError::InvalidCiphertext(_) => "InvalidCiphertextException",
            KmsError::IncorrectKey(_) => "IncorrectKeyException",
            KmsError::Validation(_) => "ValidationException",
            KmsError::Serialization(_) => "SerializationException",
            KmsError::UnknownOperation(_) => "UnknownOperationException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::InvalidAliasName(_) => "InvalidAliasNameException",
            KmsError::UnsupportedOperation(_) => "UnsupportedOperationException",
            KmsError::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            KmsError::LimitExceeded(_) => "LimitExceededException",
            KmsError::InvalidMarker(_) => "InvalidMarkerException",
            KmsError::Tag(_) => "TagException",
            KmsError::AccessDenied(_) => "AccessDeniedException",
            KmsError::Conflict(_) => "ConflictException",
            KmsError::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            KmsError::InvalidSignature(_) => "KMSInvalidSignatureException",
            KmsError::InvalidMac(_) => "KMSInvalidMacException",
            KmsError::IncorrectKeyMaterial(_) => "IncorrectKeyMaterialException",
            KmsError::InvalidImportToken(_) => "InvalidImportTokenException",
            KmsError::ExpiredImportToken(_) => "ExpiredImportTokenException",
            KmsError::InvalidGrantToken(_) => "InvalidGrantTokenException",
            KmsError::InvalidGrantId(_) => "InvalidGrantIdException",
            KmsError::InvalidArn(_) => "InvalidArnException",
            KmsError::DryRun => "DryRunOperationException",
            KmsError::WrongRootKey | KmsError::RootKey(_) | KmsError::Internal(_) => "KMSInternalException",
        }
    }

    /// HTTP status of the error response: 400 for client errors, 500 for internal ones.
    pub fn status(&self) -> u16 {
        match self {
            KmsError::WrongRootKey | KmsError::RootKey(_) | KmsError::Internal(_) => 500,
            // botocore's KMS model gives DryRunOperationException HTTP 412.
            KmsError::DryRun => 412,
            _ => 400,
        }
    }
}

impl From<rusqlite::Error> for KmsError {
    fn from(e: rusqlite::Error) -> Self {
        KmsError::Internal(format!("key store: {e}"))
    }
}
