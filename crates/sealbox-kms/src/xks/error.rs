//! The XKS proxy API's errors: the spec's "Error codes" table, one variant per error name we
//! answer with, and the one place that decides each name's HTTP status and body.

use serde_json::json;

/// `errorMessage` must be shorter than 512 characters of printable ASCII (spec, "Error codes").
const MAX_ERROR_MESSAGE: usize = 511;

/// An XKS API failure, named as the spec names it (`errorName`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XksError {
    /// 400: an input parameter is invalid (every API but GetHealthStatus).
    #[error("{0}")]
    Validation(String),
    /// 400: the key is disabled or pending deletion.
    #[error("{0}")]
    InvalidState(String),
    /// 400: ciphertext, IV, AAD, metadata or tag corrupted, missing or otherwise invalid (Decrypt).
    #[error("{0}")]
    InvalidCiphertext(String),
    /// 401: the SigV4 signature (or, with mTLS, the client certificate) did not authenticate.
    #[error("{0}")]
    AuthenticationFailed(String),
    /// 404: no key served over XKS has this externalKeyId.
    #[error("{0}")]
    KeyNotFound(String),
    /// 404: the path is not one of the XKS API's.
    #[error("{0}")]
    InvalidUriPath(String),
    /// 501: a parameter beyond the sizes this proxy supports (above the spec's minimums).
    #[error("{0}")]
    UnsupportedOperation(String),
    /// 500: the key store, root key or audit trail failed.
    #[error("{0}")]
    Internal(String),
}

impl XksError {
    /// The spec's `errorName`.
    pub fn error_name(&self) -> &'static str {
        match self {
            XksError::Validation(_) => "ValidationException",
            XksError::InvalidState(_) => "InvalidStateException",
            XksError::InvalidCiphertext(_) => "InvalidCiphertextException",
            XksError::AuthenticationFailed(_) => "AuthenticationFailedException",
            XksError::KeyNotFound(_) => "KeyNotFoundException",
            XksError::InvalidUriPath(_) => "InvalidUriPathException",
            XksError::UnsupportedOperation(_) => "UnsupportedOperationException",
            XksError::Internal(_) => "InternalException",
        }
    }

    /// The HTTP status the spec gives the error name.
    pub fn status(&self) -> u16 {
        match self {
            XksError::Validation(_) | XksError::InvalidState(_) | XksError::InvalidCiphertext(_) => 400,
            XksError::AuthenticationFailed(_) => 401,
            XksError::KeyNotFound(_) | XksError::InvalidUriPath(_) => 404,
            XksError::UnsupportedOperation(_) => 501,
            XksError::Internal(_) => 500,
        }
    }

    /// The `errorMessage`: printable ASCII, under 512 characters.
    pub fn message(&self) -> String {
        let text = self.to_string();
        text.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).take(MAX_ERROR_MESSAGE).collect()
    }

    /// The JSON error body: `{"errorName": ..., "errorMessage": ...}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"errorName": self.error_name(), "errorMessage": self.message()})).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's table, row by row, for every name we answer with.
    #[test]
    fn every_error_has_the_specs_name_and_status() {
        let table = [
            (XksError::Validation("x".into()), "ValidationException", 400),
            (XksError::InvalidState("x".into()), "InvalidStateException", 400),
            (XksError::InvalidCiphertext("x".into()), "InvalidCiphertextException", 400),
            (XksError::AuthenticationFailed("x".into()), "AuthenticationFailedException", 401),
            (XksError::KeyNotFound("x".into()), "KeyNotFoundException", 404),
            (XksError::InvalidUriPath("x".into()), "InvalidUriPathException", 404),
            (XksError::UnsupportedOperation("x".into()), "UnsupportedOperationException", 501),
            (XksError::Internal("x".into()), "InternalException", 500),
        ];
        for (e, name, status) in table {
            assert_eq!((e.error_name(), e.status()), (name, status), "{e:?}");
            let body: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
            assert_eq!(body["errorName"], name);
            assert_eq!(body["errorMessage"], "x");
        }
    }

    #[test]
    fn messages_are_short_printable_ascii() {
        let e = XksError::Validation(format!("héllo\n{}", "a".repeat(900)));
        let m = e.message();
        assert!(m.len() < 512);
        assert!(m.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{m}");
        assert!(m.starts_with("h?llo?a"));
    }
}
