//! Key specs, key usages, origins and the algorithms each key type allows, under AWS's own names
//! (the wire values). Every check ("may this key sign?") and every list DescribeKey shows comes
//! from the tables here, so they cannot disagree. Pure: no I/O, no cryptography.

use std::fmt;

/// An enum of AWS wire names.
pub trait AwsName: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn parse(s: &str) -> Option<Self>;
}

/// Declares an enum whose variants are AWS wire names, with `as_str`, `parse` and `ALL`.
macro_rules! aws_names {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl AwsName for $name {
            const ALL: &'static [$name] = $name::ALL;
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn parse(s: &str) -> Option<Self> {
                $name::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

aws_names!(
    /// `KeySpec` (and its deprecated twin `CustomerMasterKeySpec`).
    KeySpec {
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        Rsa2048 = "RSA_2048",
        Rsa3072 = "RSA_3072",
        Rsa4096 = "RSA_4096",
        EccNistP256 = "ECC_NIST_P256",
        EccNistP384 = "ECC_NIST_P384",
        EccNistP521 = "ECC_NIST_P521",
        EccSecgP256k1 = "ECC_SECG_P256K1",
        Hmac224 = "HMAC_224",
        Hmac256 = "HMAC_256",
        Hmac384 = "HMAC_384",
        Hmac512 = "HMAC_512",
    }
);

/// Key specs in AWS's model that sealbox does not implement (China-only SM2, ML-DSA, Ed25519):
/// valid on the wire, answered `UnsupportedOperationException`.
pub const UNSUPPORTED_KEY_SPECS: &[&str] = &["SM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519"];

aws_names!(
    KeyUsage {
        EncryptDecrypt = "ENCRYPT_DECRYPT",
        SignVerify = "SIGN_VERIFY",
        GenerateVerifyMac = "GENERATE_VERIFY_MAC",
    }
);

/// ECDH key agreement keys (DeriveSharedSecret) are not implemented.
pub const UNSUPPORTED_KEY_USAGES: &[&str] = &["KEY_AGREEMENT"];

aws_names!(
    /// Where a key's material comes from.
    Origin {
        AwsKms = "AWS_KMS",
        External = "EXTERNAL",
    }
);

/// Custom key stores (CloudHSM, external key stores) are not implemented.
pub const UNSUPPORTED_ORIGINS: &[&str] = &["AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];

aws_names!(
    EncryptionAlgorithm {
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
    }
);

/// Valid on the wire, but no sealbox key supports them (InvalidKeyUsageException).
pub const FOREIGN_ENCRYPTION_ALGORITHMS: &[&str] = &["SM2PKE"];

aws_names!(
    SigningAlgorithm {
        RsassaPssSha256 = "RSASSA_PSS_SHA_256",
        RsassaPssSha384 = "RSASSA_PSS_SHA_384",
        RsassaPssSha512 = "RSASSA_PSS_SHA_512",
        RsassaPkcs1V15Sha256 = "RSASSA_PKCS1_V1_5_SHA_256",
        RsassaPkcs1V15Sha384 = "RSASSA_PKCS1_V1_5_SHA_384",
        RsassaPkcs1V15Sha512 = "RSASSA_PKCS1_V1_5_SHA_512",
        EcdsaSha256 = "ECDSA_SHA_256",
        EcdsaSha384 = "ECDSA_SHA_384",
        EcdsaSha512 = "ECDSA_SHA_512",
    }
);

/// Valid on the wire, but for key specs sealbox does not implement (InvalidKeyUsageException).
pub const FOREIGN_SIGNING_ALGORITHMS: &[&str] =
    &["SM2DSA", "ML_DSA_SHAKE_256", "ED25519_SHA_512", "ED25519_PH_SHA_512"];

aws_names!(
    MacAlgorithm {
        HmacSha224 = "HMAC_SHA_224",
        HmacSha256 = "HMAC_SHA_256",
        HmacSha384 = "HMAC_SHA_384",
        HmacSha512 = "HMAC_SHA_512",
    }
);

aws_names!(
    MessageType {
        Raw = "RAW",
        Digest = "DIGEST",
    }
);

/// ML-DSA's external mu: valid on the wire, no sealbox key supports it.
pub const FOREIGN_MESSAGE_TYPES: &[&str] = &["EXTERNAL_MU"];

aws_names!(
    /// How imported key material is wrapped for transport (GetParametersForImport).
    WrappingAlgorithm {
        RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
        RsaAesKeyWrapSha1 = "RSA_AES_KEY_WRAP_SHA_1",
        RsaAesKeyWrapSha256 = "RSA_AES_KEY_WRAP_SHA_256",
    }
);

/// RSAES_PKCS1_V1_5 (which AWS stopped accepting on 2023-10-10) and China-only SM2PKE.
pub const UNSUPPORTED_WRAPPING_ALGORITHMS: &[&str] = &["RSAES_PKCS1_V1_5", "SM2PKE"];

aws_names!(
    WrappingKeySpec {
        Rsa2048 = "RSA_2048",
        Rsa3072 = "RSA_3072",
        Rsa4096 = "RSA_4096",
    }
);

pub const UNSUPPORTED_WRAPPING_KEY_SPECS: &[&str] = &["SM2"];

aws_names!(
    ExpirationModel {
        KeyMaterialExpires = "KEY_MATERIAL_EXPIRES",
        KeyMaterialDoesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }
);

aws_names!(
    /// What a grant may allow (`Operations` of CreateGrant).
    GrantOperation {
        Decrypt = "Decrypt",
        Encrypt = "Encrypt",
        GenerateDataKey = "GenerateDataKey",
        GenerateDataKeyWithoutPlaintext = "GenerateDataKeyWithoutPlaintext",
        ReEncryptFrom = "ReEncryptFrom",
        ReEncryptTo = "ReEncryptTo",
        Sign = "Sign",
        Verify = "Verify",
        GetPublicKey = "GetPublicKey",
        CreateGrant = "CreateGrant",
        RetireGrant = "RetireGrant",
        DescribeKey = "DescribeKey",
        GenerateDataKeyPair = "GenerateDataKeyPair",
        GenerateDataKeyPairWithoutPlaintext = "GenerateDataKeyPairWithoutPlaintext",
        GenerateMac = "GenerateMac",
        VerifyMac = "VerifyMac",
        DeriveSharedSecret = "DeriveSharedSecret",
    }
);

/// The three families UpdateAlias keeps apart ("both symmetric or both asymmetric or both HMAC").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Symmetric,
    Asymmetric,
    Hmac,
}

impl KeySpec {
    pub fn family(self) -> KeyFamily {
        match self {
            KeySpec::SymmetricDefault => KeyFamily::Symmetric,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => KeyFamily::Hmac,
            _ => KeyFamily::Asymmetric,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
    }

    pub fn is_ecc(self) -> bool {
        matches!(self, KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 | KeySpec::EccSecgP256k1)
    }

    /// RSA modulus size in bits.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeySpec::Rsa2048 => Some(2048),
            KeySpec::Rsa3072 => Some(3072),
            KeySpec::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// Length of a generated HMAC key, and the lengths AWS accepts for imported HMAC material.
    pub fn hmac_key_lengths(self) -> Option<(usize, std::ops::RangeInclusive<usize>)> {
        match self {
            KeySpec::Hmac224 => Some((28, 28..=64)),
            KeySpec::Hmac256 => Some((32, 32..=64)),
            KeySpec::Hmac384 => Some((48, 48..=128)),
            KeySpec::Hmac512 => Some((64, 64..=128)),
            _ => None,
        }
    }

    /// The key usages CreateKey accepts for this spec.
    pub fn usages(self) -> &'static [KeyUsage] {
        match self.family() {
            KeyFamily::Symmetric => &[KeyUsage::EncryptDecrypt],
            KeyFamily::Hmac => &[KeyUsage::GenerateVerifyMac],
            KeyFamily::Asymmetric if self.is_rsa() => &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify],
            KeyFamily::Asymmetric => &[KeyUsage::SignVerify],
        }
    }

    /// `EncryptionAlgorithms` of a key with this spec and usage (empty: the key does not encrypt).
    pub fn encryption_algorithms(self, usage: KeyUsage) -> &'static [EncryptionAlgorithm] {
        match (self, usage) {
            (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt) => &[EncryptionAlgorithm::SymmetricDefault],
            (s, KeyUsage::EncryptDecrypt) if s.is_rsa() => {
                &[EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256]
            }
            _ => &[],
        }
    }

    /// `SigningAlgorithms` of a key with this spec and usage (AWS's key spec reference).
    pub fn signing_algorithms(self, usage: KeyUsage) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm as S;
        if usage != KeyUsage::SignVerify {
            return &[];
        }
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[
                S::RsassaPssSha256,
                S::RsassaPssSha384,
                S::RsassaPssSha512,
                S::RsassaPkcs1V15Sha256,
                S::RsassaPkcs1V15Sha384,
                S::RsassaPkcs1V15Sha512,
            ],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &[S::EcdsaSha256],
            KeySpec::EccNistP384 => &[S::EcdsaSha384],
            KeySpec::EccNistP521 => &[S::EcdsaSha512],
            _ => &[],
        }
    }

    pub fn mac_algorithms(self) -> &'static [MacAlgorithm] {
        match self {
            KeySpec::Hmac224 => &[MacAlgorithm::HmacSha224],
            KeySpec::Hmac256 => &[MacAlgorithm::HmacSha256],
            KeySpec::Hmac384 => &[MacAlgorithm::HmacSha384],
            KeySpec::Hmac512 => &[MacAlgorithm::HmacSha512],
            _ => &[],
        }
    }

    /// The operations a grant on a key of this spec and usage may allow; others are a
    /// ValidationException at CreateGrant ("you cannot create a grant for a symmetric encryption
    /// KMS key that allows the Sign operation").
    pub fn grant_operations(self, usage: KeyUsage) -> Vec<GrantOperation> {
        use GrantOperation as G;
        let mut ops = vec![G::CreateGrant, G::RetireGrant, G::DescribeKey];
        match (self.family(), usage) {
            (KeyFamily::Symmetric, _) => ops.extend([
                G::Decrypt,
                G::Encrypt,
                G::GenerateDataKey,
                G::GenerateDataKeyWithoutPlaintext,
                G::ReEncryptFrom,
                G::ReEncryptTo,
                G::GenerateDataKeyPair,
                G::GenerateDataKeyPairWithoutPlaintext,
            ]),
            (KeyFamily::Hmac, _) => ops.extend([G::GenerateMac, G::VerifyMac]),
            (KeyFamily::Asymmetric, KeyUsage::EncryptDecrypt) => {
                ops.extend([G::Decrypt, G::Encrypt, G::ReEncryptFrom, G::ReEncryptTo, G::GetPublicKey])
            }
            (KeyFamily::Asymmetric, _) => ops.extend([G::Sign, G::Verify, G::GetPublicKey]),
        }
        ops
    }

    /// Specs GenerateDataKeyPair makes (`KeyPairSpec`): the asymmetric ones.
    pub fn is_data_key_pair_spec(self) -> bool {
        self.family() == KeyFamily::Asymmetric
    }
}

impl SigningAlgorithm {
    /// Length in bytes of the digest a DIGEST message must have.
    pub fn digest_len(self) -> usize {
        use SigningAlgorithm as S;
        match self {
            S::RsassaPssSha256 | S::RsassaPkcs1V15Sha256 | S::EcdsaSha256 => 32,
            S::RsassaPssSha384 | S::RsassaPkcs1V15Sha384 | S::EcdsaSha384 => 48,
            S::RsassaPssSha512 | S::RsassaPkcs1V15Sha512 | S::EcdsaSha512 => 64,
        }
    }
}

impl EncryptionAlgorithm {
    /// Largest plaintext RSAES-OAEP takes under a modulus of `bits` (k - 2·hLen - 2, RFC 8017).
    pub fn max_plaintext(self, bits: usize) -> usize {
        let h = match self {
            EncryptionAlgorithm::SymmetricDefault => return 4096,
            EncryptionAlgorithm::RsaesOaepSha1 => 20,
            EncryptionAlgorithm::RsaesOaepSha256 => 32,
        };
        bits / 8 - 2 * h - 2
    }
}

impl WrappingKeySpec {
    pub fn bits(self) -> usize {
        match self {
            WrappingKeySpec::Rsa2048 => 2048,
            WrappingKeySpec::Rsa3072 => 3072,
            WrappingKeySpec::Rsa4096 => 4096,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in KeySpec::ALL {
            assert_eq!(KeySpec::parse(s.as_str()), Some(*s));
        }
        for a in SigningAlgorithm::ALL {
            assert_eq!(SigningAlgorithm::parse(&a.to_string()), Some(*a));
        }
        assert_eq!(KeySpec::parse("SM2"), None);
        assert_eq!(GrantOperation::parse("ReEncryptFrom"), Some(GrantOperation::ReEncryptFrom));
    }

    /// The per-spec tables of AWS's key spec reference.
    #[test]
    fn algorithms_per_spec() {
        assert_eq!(KeySpec::Rsa3072.usages(), &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify]);
        assert_eq!(KeySpec::EccSecgP256k1.usages(), &[KeyUsage::SignVerify]);
        assert_eq!(KeySpec::Hmac384.usages(), &[KeyUsage::GenerateVerifyMac]);
        assert_eq!(KeySpec::Rsa2048.signing_algorithms(KeyUsage::SignVerify).len(), 6);
        assert!(KeySpec::Rsa2048.signing_algorithms(KeyUsage::EncryptDecrypt).is_empty());
        assert_eq!(KeySpec::EccNistP521.signing_algorithms(KeyUsage::SignVerify), &[SigningAlgorithm::EcdsaSha512]);
        assert_eq!(KeySpec::EccSecgP256k1.signing_algorithms(KeyUsage::SignVerify), &[SigningAlgorithm::EcdsaSha256]);
        assert_eq!(KeySpec::Rsa4096.encryption_algorithms(KeyUsage::EncryptDecrypt).len(), 2);
        assert!(KeySpec::Rsa4096.encryption_algorithms(KeyUsage::SignVerify).is_empty());
        assert_eq!(KeySpec::Hmac224.mac_algorithms(), &[MacAlgorithm::HmacSha224]);
        assert!(!KeySpec::SymmetricDefault.grant_operations(KeyUsage::EncryptDecrypt).contains(&GrantOperation::Sign));
        assert!(!KeySpec::Rsa2048.grant_operations(KeyUsage::SignVerify).contains(&GrantOperation::Decrypt));
    }

    /// AWS's documented maximum plaintexts for RSA keys.
    #[test]
    fn oaep_plaintext_limits() {
        use EncryptionAlgorithm::*;
        assert_eq!((RsaesOaepSha1.max_plaintext(2048), RsaesOaepSha256.max_plaintext(2048)), (214, 190));
        assert_eq!((RsaesOaepSha1.max_plaintext(3072), RsaesOaepSha256.max_plaintext(3072)), (342, 318));
        assert_eq!((RsaesOaepSha1.max_plaintext(4096), RsaesOaepSha256.max_plaintext(4096)), (470, 446));
    }
}
