//! The XKS ciphertext: the only code choosing keys and nonces for XKS Encrypt and Decrypt.
//!
//! The spec's Encrypt returns the ciphertext (as long as the plaintext), a 12- or 16-byte IV, a
//! 16-byte tag and up to 20 bytes of `ciphertextMetadata`, which AWS KMS stores in its own blob
//! and hands back on Decrypt. Our 20 bytes of metadata are
//!
//! `format (0x01) | material version (u32 BE) | salt (15 random bytes)`
//!
//! - the material version says which version of the key's material sealed the data, so Decrypt
//!   after a rotation opens it with the right one (no trying versions in turn);
//! - the AES-256-GCM key is HKDF-SHA256-expanded from that version with
//!   `"sealbox xks key v1" | key id (16 bytes) | salt`: a fresh key for every Encrypt, bound to the
//!   key id (a ciphertext cannot be moved to another key) and independent of the blob keys derived
//!   from the same material (`blob.rs`). The IV is 12 random bytes under that fresh key, so no
//!   (key, nonce) pair repeats however many calls a key serves (no 2^32 random-nonce bound);
//! - the GCM AAD is the spec's `len(aad) u16 BE | aad | len(metadata) u8 | metadata`, so the tag
//!   covers the caller's AAD and our metadata, and neither can be passed off as the other.
//!
//! Pure: no I/O, no key lookup (`keys.rs` does that).

use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::blob::MaterialKey;
use crate::root::random;
use crate::KmsError;

/// The first byte of our `ciphertextMetadata`: the layout above.
const METADATA_FORMAT_V1: u8 = 1;
/// Bytes of `ciphertextMetadata` we write (the spec's maximum).
pub const METADATA_LEN: usize = 20;
const SALT_LEN: usize = METADATA_LEN - 1 - 4;
/// The IV we write; the spec also allows 16 bytes, which we never produce.
pub const IV_LEN: usize = NONCE_LEN;
/// The spec's only tag size.
pub const TAG_LEN: usize = 16;
/// HKDF info prefix of XKS keys (differs from the blob prefix from its 9th byte).
const XKS_KEY_INFO: &[u8] = b"sealbox xks key v1";

/// What our `ciphertextMetadata` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiphertextMetadata {
    pub material_version: u32,
    salt: [u8; SALT_LEN],
}

impl CiphertextMetadata {
    fn fresh(material_version: u32) -> Result<Self, KmsError> {
        Ok(CiphertextMetadata { material_version, salt: random::<SALT_LEN>()? })
    }

    pub fn encode(&self) -> [u8; METADATA_LEN] {
        let mut out = [0u8; METADATA_LEN];
        out[0] = METADATA_FORMAT_V1;
        out[1..5].copy_from_slice(&self.material_version.to_be_bytes());
        out[5..].copy_from_slice(&self.salt);
        out
    }

    /// `None` for anything we did not write (wrong length or format).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != METADATA_LEN || bytes[0] != METADATA_FORMAT_V1 {
            return None;
        }
        let material_version = u32::from_be_bytes(bytes[1..5].try_into().ok()?);
        let salt = bytes[5..].try_into().ok()?;
        Some(CiphertextMetadata { material_version, salt })
    }
}

/// An Encrypt result, in the spec's parts.
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub iv: [u8; IV_LEN],
    pub tag: [u8; TAG_LEN],
    pub metadata: CiphertextMetadata,
}

/// The spec's AAD input to AES-GCM: `len(aad)` (2 bytes BE) | aad | `len(metadata)` (1 byte) |
/// metadata. `None` when the AAD is longer than 65535 bytes (callers cap it far below).
pub fn gcm_aad(aad: &[u8], metadata: &[u8]) -> Option<Vec<u8>> {
    let aad_len = u16::try_from(aad.len()).ok()?;
    let metadata_len = u8::try_from(metadata.len()).ok()?;
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(metadata_len);
    out.extend_from_slice(metadata);
    Some(out)
}

/// The spec's Ciphertext Data Integrity Value (Appendix C): SHA-256 over
/// `aad | ciphertextMetadata | iv | ciphertext | tag`, without lengths.
pub fn cdiv(aad: &[u8], metadata: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [aad, metadata, iv, ciphertext, tag] {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn key_for(
    material: &MaterialKey,
    key_id: &Uuid,
    metadata: &CiphertextMetadata,
) -> Result<aws_lc_rs::aead::LessSafeKey, KmsError> {
    material.derived_key(&[XKS_KEY_INFO, key_id.as_bytes(), &metadata.salt])
}

fn too_long() -> KmsError {
    KmsError::Validation("additionalAuthenticatedData is longer than 65535 bytes".into())
}

/// Encrypts `plaintext` with `aad` under `material` (version `material_version` of `key_id`).
pub fn seal(
    material: &MaterialKey,
    key_id: &Uuid,
    material_version: u32,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Sealed, KmsError> {
    let metadata = CiphertextMetadata::fresh(material_version)?;
    let key = key_for(material, key_id, &metadata)?;
    let iv = random::<IV_LEN>()?;
    let full_aad = gcm_aad(aad, &metadata.encode()).ok_or_else(too_long)?;
    let mut ciphertext = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(full_aad), &mut ciphertext)
        .map_err(|_| KmsError::Internal("AES-GCM encryption failed".into()))?;
    let tag: [u8; TAG_LEN] =
        tag.as_ref().try_into().map_err(|_| KmsError::Internal("AES-GCM tag is not 16 bytes".into()))?;
    Ok(Sealed { ciphertext, iv, tag, metadata })
}

/// Decrypts; any mismatch (key, version, AAD, metadata, IV, ciphertext, tag) is
/// InvalidCiphertext, never saying which.
pub fn open(
    material: &MaterialKey,
    key_id: &Uuid,
    metadata: &CiphertextMetadata,
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let invalid = || KmsError::InvalidCiphertext("The ciphertext, IV, tag, metadata or AAD is invalid.".into());
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| invalid())?;
    if tag.len() != TAG_LEN {
        return Err(invalid());
    }
    let key = key_for(material, key_id, metadata)?;
    let full_aad = gcm_aad(aad, &metadata.encode()).ok_or_else(too_long)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(ciphertext.len() + TAG_LEN));
    buf.extend_from_slice(ciphertext);
    buf.extend_from_slice(tag);
    let len = key.open_in_place(nonce, Aad::from(full_aad), &mut buf).map_err(|_| invalid())?.len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(byte: u8) -> MaterialKey {
        MaterialKey::new(&[byte; 32], "m".into()).unwrap()
    }

    fn key_id() -> Uuid {
        Uuid::from_u128(0x1234)
    }

    #[test]
    fn round_trip_and_every_part_is_authenticated() {
        let m = material(7);
        let s = seal(&m, &key_id(), 3, b"Hello World!", b"project=nile").unwrap();
        assert_eq!(s.ciphertext.len(), 12, "AES-GCM ciphertext is as long as the plaintext");
        assert_eq!(s.metadata.material_version, 3);
        let open_with = |meta: &CiphertextMetadata, iv: &[u8], ct: &[u8], tag: &[u8], aad: &[u8]| {
            open(&m, &key_id(), meta, iv, ct, tag, aad)
        };
        let plain = open_with(&s.metadata, &s.iv, &s.ciphertext, &s.tag, b"project=nile").unwrap();
        assert_eq!(&plain[..], b"Hello World!");

        let mut ct = s.ciphertext.clone();
        ct[0] ^= 1;
        let mut iv = s.iv;
        iv[11] ^= 1;
        let mut tag = s.tag;
        tag[15] ^= 0x80;
        let mut other_version = s.metadata;
        other_version.material_version = 4;
        let mut other_salt = s.metadata;
        other_salt.salt[0] ^= 1;
        for bad in [
            open_with(&s.metadata, &s.iv, &ct, &s.tag, b"project=nile"),
            open_with(&s.metadata, &iv, &s.ciphertext, &s.tag, b"project=nile"),
            open_with(&s.metadata, &s.iv, &s.ciphertext, &tag, b"project=nile"),
            open_with(&s.metadata, &s.iv, &s.ciphertext, &s.tag, b"project=nilf"),
            open_with(&s.metadata, &s.iv, &s.ciphertext, &s.tag, b""),
            open_with(&other_version, &s.iv, &s.ciphertext, &s.tag, b"project=nile"),
            open_with(&other_salt, &s.iv, &s.ciphertext, &s.tag, b"project=nile"),
            open_with(&s.metadata, &s.iv[..11], &s.ciphertext, &s.tag, b"project=nile"),
            open_with(&s.metadata, &s.iv, &s.ciphertext, &s.tag[..15], b"project=nile"),
            open(&m, &Uuid::from_u128(0x1235), &s.metadata, &s.iv, &s.ciphertext, &s.tag, b"project=nile"),
            open(&material(8), &key_id(), &s.metadata, &s.iv, &s.ciphertext, &s.tag, b"project=nile"),
        ] {
            assert!(matches!(bad, Err(KmsError::InvalidCiphertext(_))), "{:?}", bad.map(|p| p.to_vec()));
        }
    }

    #[test]
    fn aad_lengths_keep_aad_and_metadata_apart() {
        // The spec's example: an empty AAD whose metadata is then passed as AAD must not open.
        assert_ne!(gcm_aad(b"", b"abc"), gcm_aad(b"abc", b""));
        assert_eq!(gcm_aad(b"ab", b"c").unwrap(), [0, 2, b'a', b'b', 1, b'c']);
        assert_eq!(gcm_aad(b"", b"").unwrap(), [0, 0, 0]);
        assert!(gcm_aad(&vec![0; 65536], b"").is_none());
    }

    #[test]
    fn every_encrypt_uses_a_fresh_salt_and_iv() {
        let m = material(1);
        let a = seal(&m, &key_id(), 1, b"same", b"").unwrap();
        let b = seal(&m, &key_id(), 1, b"same", b"").unwrap();
        assert_ne!(a.metadata.encode(), b.metadata.encode());
        assert_ne!(a.iv, b.iv);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn metadata_encodes_and_refuses_what_we_did_not_write() {
        let meta = CiphertextMetadata { material_version: 0x0102_0304, salt: [9; SALT_LEN] };
        let bytes = meta.encode();
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[..5], &[1, 1, 2, 3, 4]);
        assert_eq!(CiphertextMetadata::parse(&bytes), Some(meta));
        assert_eq!(CiphertextMetadata::parse(&bytes[..19]), None);
        let mut other_format = bytes;
        other_format[0] = 2;
        assert_eq!(CiphertextMetadata::parse(&other_format), None);
        assert_eq!(CiphertextMetadata::parse(b""), None);
    }

    /// The worked example of the spec's Appendix C.
    #[test]
    fn cdiv_matches_the_specs_example() {
        let aad = b"project=nile,department=marketing";
        let metadata = b"key_version=1";
        let iv = [0x1c, 0xca, 0xe5, 0x47, 0x0f, 0x39, 0x70, 0x02, 0x54, 0x77, 0x90, 0x31];
        let ciphertext = [0x82, 0x1c, 0x64, 0x2b, 0x5b, 0x71, 0x78, 0x33, 0x67, 0xde, 0xaf, 0x18];
        let tag = [0xbc, 0x1c, 0x4d, 0xda, 0x77, 0x07, 0xd6, 0x81, 0x24, 0x47, 0xc5, 0x95, 0x5e, 0x99, 0xb2, 0x61];
        let value = cdiv(aad, metadata, &iv, &ciphertext, &tag);
        assert_eq!(hex::encode(value), "a8703f2260bd8791ec2d15ea0b23e65a0631eedcf2a13a65cc82db3f47cf5ec7");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_plaintext_and_aad_round_trip(
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            aad in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            flip in proptest::prelude::any::<usize>(),
        ) {
            let m = material(3);
            let s = seal(&m, &key_id(), 1, &plain, &aad).unwrap();
            let back = open(&m, &key_id(), &s.metadata, &s.iv, &s.ciphertext, &s.tag, &aad).unwrap();
            proptest::prop_assert_eq!(&back[..], &plain[..]);
            // Any single flipped bit of ciphertext||tag is refused.
            let mut joined = [s.ciphertext.clone(), s.tag.to_vec()].concat();
            let bit = flip % (joined.len() * 8);
            joined[bit / 8] ^= 1 << (bit % 8);
            let (ct, tag) = joined.split_at(s.ciphertext.len());
            proptest::prop_assert!(open(&m, &key_id(), &s.metadata, &s.iv, ct, tag, &aad).is_err());
        }
    }
}
