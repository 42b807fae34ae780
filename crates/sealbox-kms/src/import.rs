//! Imported key material (BYOK): import tokens, unwrapping what a customer wrapped with the RSA
//! public key GetParametersForImport returned (RSAES-OAEP directly, or RSA-OAEP of an AES key
//! plus AES key wrap with padding, RFC 5649, exactly as AWS's BYOK guide does with openssl), and
//! the checks that unwrapped material fits the KMS key's spec. All primitives are aws-lc-rs.

use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::asym::{HmacKey, PrivateKey};
use crate::spec::{EncryptionAlgorithm, KeySpec, KeyUsage, WrappingAlgorithm};
use crate::KmsError;

/// How long an import token and its wrapping key are valid (AWS: 24 hours).
pub(crate) const PARAMETERS_VALID_SECS: i64 = 24 * 3600;
/// ValidTo may be at most this far in the future (AWS: 365 days).
pub(crate) const MAX_VALID_TO_SECS: i64 = 365 * 86_400;

const TOKEN_MAGIC: &[u8] = b"SBIT\x01";
const TOKEN_LEN: usize = TOKEN_MAGIC.len() + 16 + 16;

/// Import token: magic ‖ KMS key id ‖ 16 random bytes naming the stored wrapping key. It carries
/// no secret; the wrapping private key stays in the store, wrapped by the root key.
pub(crate) fn encode_token(key_id: &Uuid, token_id: &[u8; 16]) -> Vec<u8> {
    [TOKEN_MAGIC, key_id.as_bytes(), token_id].concat()
}

/// (KMS key id, token id) of a token; InvalidImportTokenException for anything else.
pub(crate) fn decode_token(token: &[u8]) -> Result<(Uuid, String), KmsError> {
    if token.len() != TOKEN_LEN || !token.starts_with(TOKEN_MAGIC) {
        return Err(invalid_token());
    }
    let key = Uuid::from_slice(&token[TOKEN_MAGIC.len()..TOKEN_MAGIC.len() + 16]).map_err(|_| invalid_token())?;
    Ok((key, hex::encode(&token[TOKEN_MAGIC.len() + 16..])))
}

pub(crate) fn invalid_token() -> KmsError {
    KmsError::InvalidImportToken("The import token is invalid or does not belong to this KMS key.".into())
}

/// AAD under which the root key wraps an import wrapping key: bound to the token and KMS key.
pub(crate) fn wrapping_key_aad(token_id: &str, key_id: &str) -> Vec<u8> {
    format!("sealbox kms import wrapping key v1 {token_id} {key_id}").into_bytes()
}

fn bad_ciphertext() -> KmsError {
    KmsError::InvalidCiphertext("The EncryptedKeyMaterial could not be unwrapped with the import parameters.".into())
}

/// Unwraps `encrypted` with the wrapping private key (`wrapping_pkcs8`, RSA of `bits`).
pub(crate) fn unwrap_material(
    wrapping_pkcs8: &[u8],
    bits: usize,
    algorithm: WrappingAlgorithm,
    encrypted: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let spec = match bits {
        2048 => KeySpec::Rsa2048,
        3072 => KeySpec::Rsa3072,
        _ => KeySpec::Rsa4096,
    };
    let rsa = PrivateKey::from_pkcs8(spec, KeyUsage::EncryptDecrypt, wrapping_pkcs8)
        .map_err(|e| KmsError::Internal(format!("stored wrapping key: {}", e.0)))?;
    let k = bits / 8;
    let oaep = match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => EncryptionAlgorithm::RsaesOaepSha1,
        _ => EncryptionAlgorithm::RsaesOaepSha256,
    };
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaesOaepSha256 => {
            if encrypted.len() != k {
                return Err(bad_ciphertext());
            }
            rsa.decrypt(oaep, encrypted).map_err(|_| bad_ciphertext())
        }
        WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256 => {
            // RSA-OAEP(256-bit AES key) ‖ AES-KWP(AES key, material) (RFC 5649, 8-byte blocks).
            if encrypted.len() <= k + 8 {
                return Err(bad_ciphertext());
            }
            let aes = rsa.decrypt(oaep, &encrypted[..k]).map_err(|_| bad_ciphertext())?;
            if aes.len() != 32 {
                return Err(bad_ciphertext());
            }
            let kek = AesKek::new(&AES_256, &aes).map_err(|_| bad_ciphertext())?;
            let wrapped = &encrypted[k..];
            let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
            let n = kek.unwrap_with_padding(wrapped, &mut out).map_err(|_| bad_ciphertext())?.len();
            out.truncate(n);
            Ok(out)
        }
    }
}

/// Whether unwrapped material is material for a key of `spec` and `usage` (IncorrectKeyMaterial
/// otherwise): 32 bytes for symmetric keys, the HMAC spec's length range, or a PKCS#8 private key
/// of exactly the spec (RSA size, EC curve).
pub(crate) fn check_material(spec: KeySpec, usage: KeyUsage, material: &[u8]) -> Result<(), KmsError> {
    let wrong =
        |why: String| KmsError::IncorrectKeyMaterial(format!("The key material is not valid for a {spec} key: {why}."));
    match spec {
        KeySpec::SymmetricDefault if material.len() == 32 => Ok(()),
        KeySpec::SymmetricDefault => Err(wrong(format!("{} bytes, not 32", material.len()))),
        s if s.family() == crate::spec::KeyFamily::Hmac => {
            let (_, range) = s.hmac_key_lengths().ok_or_else(|| wrong("no HMAC length".into()))?;
            if !range.contains(&material.len()) {
                return Err(wrong(format!("{} bytes, not {}-{}", material.len(), range.start(), range.end())));
            }
            HmacKey::new(s, material).map(|_| ())
        }
        s => PrivateKey::from_pkcs8(s, usage, material).map(|_| ()).map_err(|e| wrong(e.0)),
    }
}

/// Which algorithms can carry material of `spec` (AWS: RSA private keys only with RSA_AES, and
/// not an ECC_NIST_P521 key directly under a 2048-bit wrapping key). The limit is what OAEP can
/// carry, so it is checked on the actual material length, where it shows as InvalidCiphertext.
pub(crate) fn algorithm_fits(spec: KeySpec, algorithm: WrappingAlgorithm) -> Result<(), KmsError> {
    let direct = matches!(algorithm, WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaesOaepSha256);
    if direct && spec.is_rsa() {
        return Err(KmsError::Validation(format!(
            "{algorithm} cannot wrap {spec} key material: use RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256"
        )));
    }
    Ok(())
}

/// AWS: "KMS assigns a unique identifier to the key material based on the KMS key ID and the
/// imported key material" — stable across re-imports of the same material, so a re-import of
/// other material is recognised (IncorrectKeyMaterialException) without keeping the material.
pub(crate) fn material_id(key_id: &str, material: &[u8]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"sealbox kms imported material id v1\0");
    ctx.update(key_id.as_bytes());
    ctx.update(b"\0");
    ctx.update(material);
    hex::encode(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asym::generate_rsa_decryption_key;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::key_wrap::KeyWrapPadded;
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};

    fn wrap_oaep(spki: &[u8], data: &[u8]) -> Vec<u8> {
        let pk = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(spki).unwrap()).unwrap();
        let mut out = vec![0u8; pk.ciphertext_size()];
        pk.encrypt(&OAEP_SHA256_MGF1SHA256, data, &mut out, None).unwrap().to_vec()
    }

    #[test]
    fn both_wrapping_schemes_unwrap_and_tampering_fails() {
        let (pkcs8, spki) = generate_rsa_decryption_key(2048).unwrap();
        let material = [9u8; 32];
        let direct = wrap_oaep(&spki, &material);
        assert_eq!(&unwrap_material(&pkcs8, 2048, WrappingAlgorithm::RsaesOaepSha256, &direct).unwrap()[..], &material);
        assert!(unwrap_material(&pkcs8, 2048, WrappingAlgorithm::RsaesOaepSha1, &direct).is_err());
        // RSA_AES_KEY_WRAP: OAEP(aes key) ‖ KWP(aes key, material), here with a 2 KB PKCS#8.
        let (big, _) = crate::asym::generate_key_pair(KeySpec::Rsa2048).unwrap();
        let aes = [4u8; 32];
        let mut kwp = vec![0u8; big.len() + 16];
        let n = AesKek::new(&AES_256, &aes).unwrap().wrap_with_padding(&big, &mut kwp).unwrap().len();
        let blob = [wrap_oaep(&spki, &aes), kwp[..n].to_vec()].concat();
        let got = unwrap_material(&pkcs8, 2048, WrappingAlgorithm::RsaAesKeyWrapSha256, &blob).unwrap();
        assert_eq!(&got[..], &big[..]);
        check_material(KeySpec::Rsa2048, KeyUsage::SignVerify, &got).unwrap();
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            unwrap_material(&pkcs8, 2048, WrappingAlgorithm::RsaAesKeyWrapSha256, &bad),
            Err(KmsError::InvalidCiphertext(_))
        ));
        let _ = PublicEncryptingKey::from_der(&spki).unwrap().as_der().unwrap();
    }

    #[test]
    fn material_must_fit_the_spec() {
        assert!(check_material(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt, &[1; 32]).is_ok());
        assert!(check_material(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt, &[1; 16]).is_err());
        assert!(check_material(KeySpec::Hmac256, KeyUsage::GenerateVerifyMac, &[1; 64]).is_ok());
        assert!(check_material(KeySpec::Hmac256, KeyUsage::GenerateVerifyMac, &[1; 31]).is_err());
        assert!(check_material(KeySpec::Hmac512, KeyUsage::GenerateVerifyMac, &[1; 129]).is_err());
        let (p256, _) = crate::asym::generate_key_pair(KeySpec::EccNistP256).unwrap();
        assert!(check_material(KeySpec::EccNistP256, KeyUsage::SignVerify, &p256).is_ok());
        assert!(matches!(
            check_material(KeySpec::EccNistP384, KeyUsage::SignVerify, &p256),
            Err(KmsError::IncorrectKeyMaterial(_))
        ));
        assert!(algorithm_fits(KeySpec::Rsa2048, WrappingAlgorithm::RsaesOaepSha256).is_err());
        assert!(algorithm_fits(KeySpec::EccNistP256, WrappingAlgorithm::RsaesOaepSha256).is_ok());
    }

    #[test]
    fn tokens_and_material_ids() {
        let id = Uuid::new_v4();
        let t = encode_token(&id, &[3u8; 16]);
        assert_eq!(decode_token(&t).unwrap(), (id, "03".repeat(16)));
        assert!(decode_token(&t[1..]).is_err());
        let k = id.to_string();
        assert_eq!(material_id(&k, b"m"), material_id(&k, b"m"));
        assert_ne!(material_id(&k, b"m"), material_id(&k, b"n"));
        assert_ne!(material_id(&k, b"m"), material_id(&Uuid::new_v4().to_string(), b"m"));
    }
}
