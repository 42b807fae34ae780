//! Which sealbox keys the XKS API serves, and their cryptography through the key store.
//!
//! A key is served when it is a customer key (symmetric, ENCRYPT_DECRYPT) carrying the tag
//! `sealbox:xks` = `true`; its key id is the `externalKeyId`. Every other key, hidden service
//! keys and AWS managed keys (`alias/aws/s3`) included, is "not found" here, so the XKS
//! credentials reach only what an operator chose to expose. Material is the key's own, kept
//! wrapped by the root key like every version; Encrypt uses the newest version, Decrypt the one
//! the ciphertext metadata names (`cipher.rs`).

use std::sync::Arc;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::cipher::{self, CiphertextMetadata, Sealed};
use super::XksError;
use crate::blob::MaterialKey;
use crate::kms::{KeyRecord, Kms, Material};
use crate::spec::{KeySpec, KeyUsage};
use crate::KmsError;

/// The tag that exposes a key over XKS (`aws kms tag-resource --tags TagKey=sealbox:xks,TagValue=true`).
pub const XKS_TAG_KEY: &str = "sealbox:xks";
/// The only value of [`XKS_TAG_KEY`] that exposes a key.
pub const XKS_TAG_VALUE: &str = "true";
/// The spec's longest `externalKeyId`.
const MAX_EXTERNAL_KEY_ID: usize = 128;

/// `keyStatus` in GetKeyMetadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XksKeyStatus {
    Enabled,
    Disabled,
}

impl XksKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            XksKeyStatus::Enabled => "ENABLED",
            XksKeyStatus::Disabled => "DISABLED",
        }
    }
}

fn internal(e: KmsError) -> XksError {
    XksError::Internal(format!("key store: {e}"))
}

/// Letters, digits, `-`, `.` and `_`, at most 128 (spec, "API operations").
pub fn is_valid_external_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EXTERNAL_KEY_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// The key served under `external_key_id`, whatever its state.
pub fn xks_key(kms: &Kms, external_key_id: &str) -> Result<KeyRecord, XksError> {
    if !is_valid_external_key_id(external_key_id) {
        return Err(XksError::Validation("externalKeyId must be 1 to 128 of A-Z, a-z, 0-9, '-', '.' and '_'".into()));
    }
    let not_found = || XksError::KeyNotFound(format!("No key {external_key_id} is served over XKS."));
    let rec = kms.key(external_key_id).map_err(internal)?.ok_or_else(not_found)?;
    let symmetric = rec.key_spec == KeySpec::SymmetricDefault && rec.key_usage == KeyUsage::EncryptDecrypt;
    if rec.hidden || rec.key_manager != "CUSTOMER" || !symmetric {
        return Err(not_found());
    }
    let tagged = kms.tags(&rec.key_id).map_err(internal)?.iter().any(|(k, v)| k == XKS_TAG_KEY && v == XKS_TAG_VALUE);
    if !tagged {
        return Err(not_found());
    }
    Ok(rec)
}

pub fn key_status(rec: &KeyRecord) -> XksKeyStatus {
    if rec.state == "Enabled" {
        XksKeyStatus::Enabled
    } else {
        XksKeyStatus::Disabled
    }
}

/// Encrypt and Decrypt need an enabled key: Disabled and PendingDeletion are the spec's
/// InvalidStateException ("disabled, deactivated or blocked").
fn require_enabled(kms: &Kms, rec: &KeyRecord) -> Result<(), XksError> {
    match rec.state.as_str() {
        "Enabled" => Ok(()),
        "Disabled" => Err(XksError::InvalidState(format!("{} is disabled.", kms.key_arn(&rec.key_id)))),
        other => Err(XksError::InvalidState(format!("{} is {other}.", kms.key_arn(&rec.key_id)))),
    }
}

/// The unwrapped AES material of one version of a served key (always symmetric: `xks_key`
/// serves no other kind).
struct SymmetricMaterial(Arc<Material>);

impl std::ops::Deref for SymmetricMaterial {
    type Target = MaterialKey;
    fn deref(&self) -> &MaterialKey {
        match &*self.0 {
            Material::Symmetric(key) => key,
            // `symmetric_material` constructs this only around symmetric material.
            _ => unreachable!("SymmetricMaterial holds symmetric material"),
        }
    }
}

fn symmetric_material(kms: &Kms, rec: &KeyRecord, version: u32) -> Result<SymmetricMaterial, KmsError> {
    let material = kms.material(rec, version)?;
    match &*material {
        Material::Symmetric(_) => Ok(SymmetricMaterial(material)),
        _ => Err(KmsError::InvalidKeyUsage(format!("{} is not a symmetric key", rec.key_id))),
    }
}

fn key_uuid(rec: &KeyRecord) -> Result<Uuid, XksError> {
    Uuid::parse_str(&rec.key_id).map_err(|e| XksError::Internal(format!("key id {}: {e}", rec.key_id)))
}

/// An Encrypt: the sealed parts and the material that sealed them.
pub struct Encrypted {
    pub sealed: Sealed,
    pub material_id: String,
    /// Present when the caller asked for the CDIV.
    pub cdiv: Option<[u8; 32]>,
}

/// Encrypts under the key's newest material. With `want_cdiv`, follows Appendix C: the CDIV is
/// computed over the output first, then the output is decrypted to prove it opens; a result that
/// does not open is never returned.
pub fn encrypt(
    kms: &Kms,
    rec: &KeyRecord,
    plaintext: &[u8],
    aad: &[u8],
    want_cdiv: bool,
) -> Result<Encrypted, XksError> {
    require_enabled(kms, rec)?;
    let key_id = key_uuid(rec)?;
    let newest = kms.materials(&rec.key_id).map_err(internal)?.last().map(|m| m.version);
    let version = newest.ok_or_else(|| XksError::Internal(format!("key {} has no material", rec.key_id)))?;
    let material = symmetric_material(kms, rec, version).map_err(internal)?;
    let sealed = cipher::seal(&material, &key_id, version, plaintext, aad).map_err(internal)?;
    let cdiv = if want_cdiv {
        let metadata = sealed.metadata.encode();
        let value = cipher::cdiv(aad, &metadata, &sealed.iv, &sealed.ciphertext, &sealed.tag);
        let reopened =
            cipher::open(&material, &key_id, &sealed.metadata, &sealed.iv, &sealed.ciphertext, &sealed.tag, aad);
        if !reopened.is_ok_and(|p| p[..] == *plaintext) {
            return Err(XksError::Internal("the encryption output did not decrypt; nothing was returned".into()));
        }
        Some(value)
    } else {
        None
    };
    Ok(Encrypted { sealed, material_id: material.material_id.clone(), cdiv })
}

/// What Decrypt is given, decoded.
pub struct DecryptInput<'a> {
    pub ciphertext: &'a [u8],
    pub metadata: Option<&'a [u8]>,
    pub iv: &'a [u8],
    pub tag: &'a [u8],
    pub aad: &'a [u8],
}

/// Decrypts with the material version the metadata names. Metadata we did not write, a version
/// the key does not have, or any tampering: InvalidCiphertextException.
pub fn decrypt(kms: &Kms, rec: &KeyRecord, input: &DecryptInput<'_>) -> Result<(Zeroizing<Vec<u8>>, String), XksError> {
    require_enabled(kms, rec)?;
    let invalid = |why: &str| XksError::InvalidCiphertext(format!("The ciphertext is invalid: {why}."));
    let metadata = input
        .metadata
        .and_then(CiphertextMetadata::parse)
        .ok_or_else(|| invalid("ciphertextMetadata is missing or was not written by this proxy"))?;
    if input.iv.len() != cipher::IV_LEN {
        return Err(invalid("this proxy writes 12-byte initialization vectors only"));
    }
    let material = match symmetric_material(kms, rec, metadata.material_version) {
        Ok(m) => m,
        Err(KmsError::InvalidCiphertext(_)) => return Err(invalid("it names key material this key does not have")),
        Err(e) => return Err(internal(e)),
    };
    let key_id = key_uuid(rec)?;
    let plaintext = cipher::open(&material, &key_id, &metadata, input.iv, input.ciphertext, input.tag, input.aad)
        .map_err(|e| match e {
            KmsError::InvalidCiphertext(m) => XksError::InvalidCiphertext(m),
            other => internal(other),
        })?;
    Ok((plaintext, material.material_id.clone()))
}

/// The deep health check (spec, GetHealthStatus): the key store answers a query, the root key
/// (file, passphrase or PKCS#11 token) seals and opens a value, and the XKS cipher round-trips
/// under a throwaway test key. No customer key is used, so the check leaves no key use to explain.
pub fn health_check(kms: &Kms) -> Result<(), String> {
    kms.key(&Uuid::nil().to_string()).map_err(|e| format!("key store: {e}"))?;
    const PURPOSE: &str = "xks health check";
    let probe = crate::root::random::<16>().map_err(|e| e.to_string())?;
    let sealed = kms.seal_secret(&probe, PURPOSE).map_err(|e| format!("root key: {e}"))?;
    let opened = kms.open_secret(&sealed, PURPOSE).map_err(|e| format!("root key: {e}"))?;
    if opened[..] != probe {
        return Err("root key: a sealed value did not open to itself".into());
    }
    let material = Zeroizing::new(crate::root::random::<32>().map_err(|e| e.to_string())?);
    let test_key = MaterialKey::new(&material[..], "xks-health-check".into()).map_err(|e| e.to_string())?;
    let s = cipher::seal(&test_key, &Uuid::nil(), 1, &probe, b"xks health").map_err(|e| e.to_string())?;
    let back = cipher::open(&test_key, &Uuid::nil(), &s.metadata, &s.iv, &s.ciphertext, &s.tag, b"xks health")
        .map_err(|e| format!("AES-GCM self-test: {e}"))?;
    if back[..] != probe {
        return Err("AES-GCM self-test: wrong plaintext".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_key_ids_follow_the_spec() {
        for ok in ["1234abcd-12ab-34cd-56ef-1234567890ab", "a", "A.b_c-9", &"k".repeat(128)] {
            assert!(is_valid_external_key_id(ok), "{ok}");
        }
        for bad in ["", "a/b", "a%2Fb", "a b", "alias:x", "é", &"k".repeat(129)] {
            assert!(!is_valid_external_key_id(bad), "{bad}");
        }
    }
}
