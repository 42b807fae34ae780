//! The AWS KMS External Key Store (XKS) proxy API, v1 (the spec is
//! `xks-proxy-api-spec.md`; docs/xks.md says how sealbox implements it): sealbox keys tagged
//! `sealbox:xks` = `true` serve as external keys of an AWS KMS external key store.
//!
//! - `api.rs`: the JSON protocol, [`handle`] (operation + key id + body in, status + JSON out);
//! - `keys.rs`: which keys are served, their states, the deep health check;
//! - `cipher.rs`: the ciphertext (metadata layout, key derivation, IVs, AAD, CDIV): the only code
//!   choosing keys and nonces for XKS;
//! - `error.rs`: the spec's error names and statuses.
//!
//! Not here: HTTP, SigV4 (service `kms-xks-proxy`, checked by the server with sealbox-auth
//! against the XKS credentials, which are not IAM users), mTLS, auditing.

mod api;
mod cipher;
mod error;
mod keys;

pub use api::{handle, XksCallSummary, XksReply, MAX_AAD, MAX_DATA};
pub use cipher::cdiv;
pub use error::XksError;
pub use keys::{is_valid_external_key_id, XksKeyStatus, XKS_TAG_KEY, XKS_TAG_VALUE};

/// The SigV4 service name XKS requests are signed for.
pub const SIGV4_SERVICE: &str = "kms-xks-proxy";

/// The four APIs, by the names the spec gives them (and the audit trail records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XksOperation {
    GetKeyMetadata,
    Encrypt,
    Decrypt,
    GetHealthStatus,
}

impl XksOperation {
    pub fn name(self) -> &'static str {
        match self {
            XksOperation::GetKeyMetadata => "GetKeyMetadata",
            XksOperation::Encrypt => "Encrypt",
            XksOperation::Decrypt => "Decrypt",
            XksOperation::GetHealthStatus => "GetHealthStatus",
        }
    }
}

/// Where a path below `[/<prefix>]/kms/xks/v1` leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XksPath {
    /// `/keys/<externalKeyId>/{metadata,encrypt,decrypt}` or `/health`.
    Api { operation: XksOperation, external_key_id: Option<String> },
    /// Anything else: InvalidUriPathException.
    Invalid,
}

/// Parses the rest of a path after `[/<prefix>]/kms/xks/v1` (e.g. `/keys/k1/encrypt`, `/health`).
/// The key id is taken as sent (still percent-encoded); the allowed characters need no encoding,
/// so an encoded one is simply not a valid id.
pub fn parse_path(rest: &str) -> XksPath {
    if rest == "/health" {
        return XksPath::Api { operation: XksOperation::GetHealthStatus, external_key_id: None };
    }
    let Some(keyed) = rest.strip_prefix("/keys/") else { return XksPath::Invalid };
    let Some((id, op)) = keyed.split_once('/') else { return XksPath::Invalid };
    let operation = match op {
        "metadata" => XksOperation::GetKeyMetadata,
        "encrypt" => XksOperation::Encrypt,
        "decrypt" => XksOperation::Decrypt,
        _ => return XksPath::Invalid,
    };
    if id.is_empty() {
        return XksPath::Invalid;
    }
    XksPath::Api { operation, external_key_id: Some(id.to_owned()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_four_apis_and_nothing_else() {
        let keyed = |op| XksPath::Api { operation: op, external_key_id: Some("k-1".to_owned()) };
        assert_eq!(parse_path("/keys/k-1/metadata"), keyed(XksOperation::GetKeyMetadata));
        assert_eq!(parse_path("/keys/k-1/encrypt"), keyed(XksOperation::Encrypt));
        assert_eq!(parse_path("/keys/k-1/decrypt"), keyed(XksOperation::Decrypt));
        assert_eq!(
            parse_path("/health"),
            XksPath::Api { operation: XksOperation::GetHealthStatus, external_key_id: None }
        );
        for bad in [
            "",
            "/",
            "/health/",
            "/healthz",
            "/keys",
            "/keys/",
            "/keys/k-1",
            "/keys/k-1/",
            "/keys//encrypt",
            "/keys/k-1/sign",
            "/keys/k-1/encrypt/x",
            "/keys/k-1/ENCRYPT",
            "/key/k-1/encrypt",
        ] {
            assert_eq!(parse_path(bad), XksPath::Invalid, "{bad:?}");
        }
    }
}
