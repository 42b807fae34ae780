//! The ciphertext blob format (what Encrypt/GenerateDataKey return and Decrypt takes):
//! `b"SBK" | 0x01 | key id (16 bytes) | material version (u32 BE) | nonce (12) | ciphertext+tag`.
//! The first 24 bytes (the header) and the canonical encryption context are the AES-GCM AAD, so a
//! blob cannot be moved to another key, version or context. Decrypt without KeyId reads the key id
//! from the header.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::KmsError;

const MAGIC: &[u8; 4] = b"SBK\x01";
pub(crate) const HEADER_LEN: usize = 4 + 16 + 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

pub(crate) struct BlobHeader {
    pub key_id: Uuid,
    pub version: u32,
}

pub(crate) fn encode_header(key_id: &Uuid, version: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4..20].copy_from_slice(key_id.as_bytes());
    h[20..24].copy_from_slice(&version.to_be_bytes());
    h
}

/// A parsed blob: its header fields, the header bytes (AAD), the nonce, ciphertext+tag.
pub(crate) type ParsedBlob<'a> = (BlobHeader, &'a [u8], &'a [u8], &'a [u8]);

/// Splits a blob into (header, nonce, ciphertext+tag); any malformation is InvalidCiphertext.
pub(crate) fn parse(blob: &[u8]) -> Result<ParsedBlob<'_>, KmsError> {
    let bad = || KmsError::InvalidCiphertext("The ciphertext is invalid.".into());
    if blob.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || &blob[..4] != MAGIC {
        return Err(bad());
    }
    let key_id = Uuid::from_slice(&blob[4..20]).map_err(|_| bad())?;
    let version = u32::from_be_bytes(blob[20..24].try_into().map_err(|_| bad())?);
    Ok((
        BlobHeader { key_id, version },
        &blob[..HEADER_LEN],
        &blob[HEADER_LEN..HEADER_LEN + NONCE_LEN],
        &blob[HEADER_LEN + NONCE_LEN..],
    ))
}

/// AAD = header || canonical context: pairs sorted by key, each length-prefixed, so no two
/// different contexts serialise alike.
pub(crate) fn aad(header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(&(context.len() as u32).to_be_bytes());
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}
