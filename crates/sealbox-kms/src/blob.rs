//! The ciphertext blob format (what Encrypt/GenerateDataKey return and Decrypt takes), and the
//! one place that decides nonces and per-blob keys. Full description: docs/key-hierarchy.md.
//!
//! Version 2 (written today):
//! `b"SBK" | 0x02 | key id (16 bytes) | material version (u32 BE) | salt (32) | ciphertext+tag (16)`.
//! Each blob is sealed with its own AES-256-GCM key, HKDF-SHA256-expanded from the material
//! version with the blob's random 256-bit salt, and a zero nonce (each derived key seals exactly
//! one message). So there is no random-nonce birthday bound per material version: a key can
//! seal any number of blobs, where a 96-bit random nonce under the material itself would be
//! limited to about 2^32 (NIST SP 800-38D), i.e. about a day of one key at full speed here.
//!
//! Version 1 (read only): `b"SBK" | 0x01 | key id | version | nonce (12) | ciphertext+tag`,
//! AES-256-GCM directly under the material with a random nonce.
//!
//! Both: the 24-byte header and the canonical encryption context are the AAD, so a blob cannot
//! be moved to another key, version or context. Decrypt without KeyId reads the key id from the
//! header.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::root::random;
use crate::KmsError;

const MAGIC: &[u8; 3] = b"SBK";
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
pub(crate) const HEADER_LEN: usize = 4 + 16 + 4;
const SALT_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// HKDF info prefix for per-blob keys (followed by the blob's salt).
const BLOB_KEY_INFO: &[u8] = b"sealbox kms blob key v2";
/// HKDF-Extract salt for a material version's PRK (domain separation from any other use).
const MATERIAL_PRK_SALT: &[u8] = b"sealbox kms material prk v2";

/// One material version, ready to seal and open blobs. Built once per version (the KMS caches
/// it); neither form exposes the 32 material bytes.
pub(crate) struct MaterialKey {
    /// For version-1 blobs: AES-256-GCM under the material itself.
    direct: LessSafeKey,
    /// For version-2 blobs: HKDF PRK of the material.
    prk: hkdf::Prk,
    pub material_id: String,
}

impl MaterialKey {
    pub(crate) fn new(material: &[u8], material_id: String) -> Result<Self, KmsError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, material).map_err(|_| KmsError::Internal("malformed key material".into()))?;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, MATERIAL_PRK_SALT).extract(material);
        Ok(MaterialKey { direct: LessSafeKey::new(unbound), prk, material_id })
    }

    fn blob_key(&self, salt: &[u8]) -> Result<LessSafeKey, KmsError> {
        self.derived_key(&[BLOB_KEY_INFO, salt])
    }

    /// An AES-256-GCM key HKDF-expanded from this version's PRK with `info`. Every user of the
    /// material derives under its own info prefix (blobs: `BLOB_KEY_INFO`; XKS: `xks.rs`), so
    /// keys for different purposes are independent.
    pub(crate) fn derived_key(&self, info: &[&[u8]]) -> Result<LessSafeKey, KmsError> {
        let okm = self.prk.expand(info, &AES_256_GCM).map_err(|_| KmsError::Internal("HKDF expand".into()))?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

pub(crate) struct BlobHeader {
    pub key_id: Uuid,
    pub version: u32,
}

fn encode_header(format: u8, key_id: &Uuid, version: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..3].copy_from_slice(MAGIC);
    h[3] = format;
    h[4..20].copy_from_slice(key_id.as_bytes());
    h[20..24].copy_from_slice(&version.to_be_bytes());
    h
}

/// A blob split into its parts; any malformation is InvalidCiphertext.
pub(crate) struct ParsedBlob<'a> {
    pub header: BlobHeader,
    format: u8,
    header_bytes: &'a [u8],
    /// Salt (v2) or nonce (v1).
    seed: &'a [u8],
    sealed: &'a [u8],
}

fn invalid() -> KmsError {
    KmsError::InvalidCiphertext("The ciphertext is invalid.".into())
}

pub(crate) fn parse(blob: &[u8]) -> Result<ParsedBlob<'_>, KmsError> {
    if blob.len() < HEADER_LEN || &blob[..3] != MAGIC {
        return Err(invalid());
    }
    let format = blob[3];
    let seed_len = match format {
        FORMAT_V1 => NONCE_LEN,
        FORMAT_V2 => SALT_LEN,
        _ => return Err(invalid()),
    };
    if blob.len() < HEADER_LEN + seed_len + TAG_LEN {
        return Err(invalid());
    }
    let key_id = Uuid::from_slice(&blob[4..20]).map_err(|_| invalid())?;
    let version = u32::from_be_bytes(blob[20..24].try_into().map_err(|_| invalid())?);
    Ok(ParsedBlob {
        header: BlobHeader { key_id, version },
        format,
        header_bytes: &blob[..HEADER_LEN],
        seed: &blob[HEADER_LEN..HEADER_LEN + seed_len],
        sealed: &blob[HEADER_LEN + seed_len..],
    })
}

/// Seals `plaintext` under `material` (version `version` of key `key_id`) as a version-2 blob.
pub(crate) fn seal(
    material: &MaterialKey,
    key_id: &Uuid,
    version: u32,
    plaintext: &[u8],
    context: &BTreeMap<String, String>,
) -> Result<Vec<u8>, KmsError> {
    let header = encode_header(FORMAT_V2, key_id, version);
    let salt = random::<SALT_LEN>()?;
    let key = material.blob_key(&salt)?;
    let mut out = Vec::with_capacity(HEADER_LEN + SALT_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(&salt);
    let mut sealed = plaintext.to_vec();
    // The zero nonce is safe: this derived key seals this one message and nothing else.
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
        Aad::from(aad(&header, context)),
        &mut sealed,
    )
    .map_err(|_| KmsError::Internal("encrypt failed".into()))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a parsed blob with the material it names. Wrong context, wrong material or any
/// tampering: InvalidCiphertext, never saying which.
pub(crate) fn open(
    material: &MaterialKey,
    blob: &ParsedBlob<'_>,
    context: &BTreeMap<String, String>,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let derived;
    let (key, nonce) = match blob.format {
        FORMAT_V1 => (&material.direct, Nonce::try_assume_unique_for_key(blob.seed).map_err(|_| invalid())?),
        _ => {
            derived = material.blob_key(blob.seed)?;
            (&derived, Nonce::assume_unique_for_key([0u8; NONCE_LEN]))
        }
    };
    let mut buf = Zeroizing::new(blob.sealed.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad(blob.header_bytes, context)), &mut buf)
        .map_err(|_| {
            KmsError::InvalidCiphertext("The ciphertext is invalid or the encryption context does not match.".into())
        })?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Seals a version-1 blob: only for tests proving old blobs still open.
#[cfg(test)]
pub(crate) fn seal_v1(
    material: &MaterialKey,
    key_id: &Uuid,
    version: u32,
    plaintext: &[u8],
    context: &BTreeMap<String, String>,
) -> Vec<u8> {
    let header = encode_header(FORMAT_V1, key_id, version);
    let nonce = random::<NONCE_LEN>().unwrap();
    let mut sealed = plaintext.to_vec();
    material
        .direct
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(&header, context)), &mut sealed)
        .unwrap();
    [&header[..], &nonce[..], &sealed[..]].concat()
}

/// AAD = header || canonical context: the number of pairs, then each pair sorted by key, each
/// string length-prefixed (u32 BE), so no two different contexts serialise alike.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn material() -> MaterialKey {
        MaterialKey::new(&[7u8; 32], "id".into()).unwrap()
    }

    #[test]
    fn v2_round_trip_layout_and_binding() {
        let (m, id) = (material(), Uuid::new_v4());
        let c = ctx(&[("aws:s3:arn", "arn:aws:s3:::b/k")]);
        let blob = seal(&m, &id, 3, &[1u8; 32], &c).unwrap();
        assert_eq!(blob.len(), 24 + 32 + 32 + 16);
        assert_eq!(&blob[..4], b"SBK\x02");
        let p = parse(&blob).unwrap();
        assert_eq!((p.header.key_id, p.header.version), (id, 3));
        assert_eq!(&open(&m, &p, &c).unwrap()[..], &[1u8; 32]);
        assert!(open(&m, &p, &ctx(&[])).is_err());
        assert!(open(&MaterialKey::new(&[8u8; 32], "x".into()).unwrap(), &p, &c).is_err());
        // Two blobs of the same plaintext share nothing but the header.
        let again = seal(&m, &id, 3, &[1u8; 32], &c).unwrap();
        assert_eq!(blob[..24], again[..24]);
        assert_ne!(blob[24..], again[24..]);
    }

    #[test]
    fn v1_blobs_still_open() {
        let (m, id) = (material(), Uuid::new_v4());
        let c = ctx(&[("a", "b")]);
        let blob = seal_v1(&m, &id, 1, b"old", &c);
        assert_eq!(blob.len(), 24 + 12 + 3 + 16);
        assert_eq!(&open(&m, &parse(&blob).unwrap(), &c).unwrap()[..], b"old");
        assert!(open(&m, &parse(&blob).unwrap(), &ctx(&[])).is_err());
    }

    #[test]
    fn short_or_foreign_blobs_are_invalid_ciphertext() {
        let (m, id) = (material(), Uuid::new_v4());
        let blob = seal(&m, &id, 1, b"", &ctx(&[])).unwrap();
        assert_eq!(blob.len(), 24 + 32 + 16);
        assert!(parse(&blob).is_ok());
        assert!(matches!(parse(&blob[..blob.len() - 1]), Err(KmsError::InvalidCiphertext(_))));
        let mut future = blob.clone();
        future[3] = 3; // a format this build does not know
        assert!(matches!(parse(&future), Err(KmsError::InvalidCiphertext(_))));
        assert!(parse(b"").is_err());
        assert!(parse(b"SBK").is_err());
    }

    #[test]
    fn contexts_never_serialise_alike() {
        let h = [0u8; HEADER_LEN];
        let distinct = [
            ctx(&[]),
            ctx(&[("a", "bc")]),
            ctx(&[("ab", "c")]),
            ctx(&[("a", "b"), ("c", "")]),
            ctx(&[("a", "b\0\0\0\x01c")]),
            ctx(&[("", "")]),
        ];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(aad(&h, a), aad(&h, b), "{a:?} vs {b:?}");
            }
        }
        // The context is canonical: sorted by key whatever the order it came in.
        assert_eq!(aad(&h, &ctx(&[("z", "1"), ("a", "2")])), aad(&h, &ctx(&[("a", "2"), ("z", "1")])));
    }
}
