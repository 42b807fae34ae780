//! Asymmetric and HMAC keys through the JSON API: the key-state table cell by cell for every new
//! key type (and imported keys, with their PendingImport column), the wire shapes clients read,
//! AWS's errors for wrong usage, signatures and ciphertexts checked with aws-lc-rs outside the
//! service, data key pairs, UpdateAlias between key types, and attacks on the stored material.

mod common;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use sealbox_kms::{Kms, RootKey};
use serde_json::{json, Value};

const DISABLED: &str = "DisabledException";
const INVALID: &str = "KMSInvalidStateException";
const USAGE: &str = "InvalidKeyUsageException";
const UNSUPPORTED: &str = "UnsupportedOperationException";
const NA: &str = "n/a";

/// A key of one kind with what its operations need, all made while it was Enabled.
struct Made {
    id: String,
    other: String,
    signature: String,
    rsa_ciphertext: String,
    blob: String,
    mac: String,
    /// (token, wrapped material) to import the same material again.
    reimport: Option<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    RsaSign,
    RsaEncrypt,
    Ecc,
    Hmac,
    ExternalSymmetric,
    ExternalEcc,
}

fn p256_pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

/// `reimport`: also prepare a second import of the same material (two RSA key generations).
fn make(f: &Fixture, kind: Kind, reimport: bool) -> Made {
    let other = if kind == Kind::RsaEncrypt { key(f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT") } else { String::new() };
    let (id, material, wrapping) = match kind {
        Kind::RsaSign => (key(f, "RSA_2048", "SIGN_VERIFY"), None, ""),
        Kind::RsaEncrypt => (key(f, "RSA_2048", "ENCRYPT_DECRYPT"), None, ""),
        Kind::Ecc => (key(f, "ECC_NIST_P256", "SIGN_VERIFY"), None, ""),
        Kind::Hmac => (key(f, "HMAC_256", "GENERATE_VERIFY_MAC"), None, ""),
        Kind::ExternalSymmetric => {
            (create(f, json!({"Origin": "EXTERNAL"})), Some(vec![3u8; 32]), "RSAES_OAEP_SHA_256")
        }
        Kind::ExternalEcc => (
            create(f, json!({"Origin": "EXTERNAL", "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})),
            Some(p256_pkcs8()),
            "RSA_AES_KEY_WRAP_SHA_256",
        ),
    };
    let reimport = material.and_then(|m| {
        import(f, &id, &m, wrapping);
        reimport.then(|| {
            let (t, w) = wrapped_for_import(f, &id, &m, wrapping);
            (B64.encode(t), B64.encode(w))
        })
    });
    let mut made = Made {
        id: id.clone(),
        other,
        signature: String::new(),
        rsa_ciphertext: String::new(),
        blob: String::new(),
        mac: String::new(),
        reimport,
    };
    match kind {
        Kind::RsaSign | Kind::Ecc | Kind::ExternalEcc => {
            let alg = if kind == Kind::RsaSign { "RSASSA_PSS_SHA_256" } else { "ECDSA_SHA_256" };
            made.signature = ok(f, "Sign", json!({"KeyId": id, "Message": "bXNn", "SigningAlgorithm": alg}))
                ["Signature"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        Kind::RsaEncrypt => {
            made.rsa_ciphertext = ok(
                f,
                "Encrypt",
                json!({"KeyId": id, "Plaintext": "bXNn", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
            )["CiphertextBlob"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        Kind::Hmac => {
            made.mac = ok(f, "GenerateMac", json!({"KeyId": id, "Message": "bXNn", "MacAlgorithm": "HMAC_SHA_256"}))
                ["Mac"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        Kind::ExternalSymmetric => {
            made.blob = ok(f, "Encrypt", json!({"KeyId": id, "Plaintext": "bXNn"}))["CiphertextBlob"]
                .as_str()
                .unwrap()
                .to_owned();
        }
    }
    made
}

fn into_state(f: &Fixture, m: &Made, state: &str) {
    match state {
        "Disabled" => {
            ok(f, "DisableKey", json!({"KeyId": m.id}));
        }
        "PendingDeletion" => {
            ok(f, "ScheduleKeyDeletion", json!({"KeyId": m.id, "PendingWindowInDays": 7}));
        }
        "PendingImport" => {
            ok(f, "DeleteImportedKeyMaterial", json!({"KeyId": m.id}));
        }
        _ => {}
    }
    assert_eq!(self::state(f, &m.id), state);
}

type Body = fn(&Made) -> Value;
type Row = (&'static str, Body, [&'static str; 4]);

fn grant(m: &Made, ops: &[&str]) -> Value {
    json!({"KeyId": m.id, "GranteePrincipal": "arn:aws:iam::000000000000:user/g", "Operations": ops})
}

/// Rows every key type shares (state changes, description, rotation for non-symmetric keys).
fn common_rows(external: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = vec![
        ("DescribeKey", |m| json!({"KeyId": m.id}), ["ok", "ok", "ok", "ok"]),
        ("ListGrants", |m| json!({"KeyId": m.id}), ["ok", "ok", "ok", "ok"]),
        ("UpdateKeyDescription", |m| json!({"KeyId": m.id, "Description": "d"}), ["ok", "ok", INVALID, "ok"]),
        (
            "TagResource",
            |m| json!({"KeyId": m.id, "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
            ["ok", "ok", INVALID, "ok"],
        ),
        (
            "CreateAlias",
            |m| json!({"AliasName": format!("alias/a-{}", m.id), "TargetKeyId": m.id}),
            ["ok", "ok", INVALID, "ok"],
        ),
        ("EnableKey", |m| json!({"KeyId": m.id}), ["ok", "ok", INVALID, INVALID]),
        ("DisableKey", |m| json!({"KeyId": m.id}), ["ok", "ok", INVALID, INVALID]),
        ("ScheduleKeyDeletion", |m| json!({"KeyId": m.id, "PendingWindowInDays": 7}), ["ok", "ok", INVALID, "ok"]),
        ("CancelKeyDeletion", |m| json!({"KeyId": m.id}), [INVALID, INVALID, "ok", INVALID]),
        ("EnableKeyRotation", |m| json!({"KeyId": m.id}), [UNSUPPORTED; 4]),
        ("DisableKeyRotation", |m| json!({"KeyId": m.id}), [UNSUPPORTED; 4]),
        ("RotateKeyOnDemand", |m| json!({"KeyId": m.id}), [UNSUPPORTED; 4]),
    ];
    if external {
        // Imported keys: rotation status is unsupported ("origin is EXTERNAL"); import works
        // except while pending deletion.
        rows.extend::<Vec<Row>>(vec![
            ("GetKeyRotationStatus", |m| json!({"KeyId": m.id}), [UNSUPPORTED; 4]),
            (
                "GetParametersForImport",
                |m| json!({"KeyId": m.id, "WrappingAlgorithm": "RSA_AES_KEY_WRAP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
                ["ok", "ok", INVALID, "ok"],
            ),
            (
                "ImportKeyMaterial",
                |m| {
                    let (t, w) = m.reimport.clone().unwrap();
                    json!({"KeyId": m.id, "ImportToken": t, "EncryptedKeyMaterial": w, "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
                },
                ["ok", "ok", INVALID, "ok"],
            ),
            ("DeleteImportedKeyMaterial", |m| json!({"KeyId": m.id}), ["ok", "ok", "ok", "ok"]),
        ]);
    } else {
        // Asymmetric and HMAC keys: rotation is simply off (AWS answers false, as Terraform
        // relies on); import is for EXTERNAL keys only.
        rows.extend::<Vec<Row>>(vec![
            ("GetKeyRotationStatus", |m| json!({"KeyId": m.id}), ["ok", "ok", "ok", NA]),
            (
                "GetParametersForImport",
                |m| json!({"KeyId": m.id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
                [UNSUPPORTED, UNSUPPORTED, UNSUPPORTED, NA],
            ),
            ("DeleteImportedKeyMaterial", |m| json!({"KeyId": m.id}), [UNSUPPORTED, UNSUPPORTED, UNSUPPORTED, NA]),
        ]);
    }
    rows
}

fn rows(kind: Kind) -> Vec<Row> {
    let crypto: [&str; 4] = ["ok", DISABLED, INVALID, INVALID];
    let mut rows: Vec<Row> = match kind {
        Kind::RsaSign | Kind::Ecc | Kind::ExternalEcc => vec![
            ("Sign", |m| json!({"KeyId": m.id, "Message": "bXNn", "SigningAlgorithm": alg_of(m)}), crypto),
            (
                "Verify",
                |m| json!({"KeyId": m.id, "Message": "bXNn", "Signature": m.signature, "SigningAlgorithm": alg_of(m)}),
                crypto,
            ),
            ("GetPublicKey", |m| json!({"KeyId": m.id}), crypto),
            ("CreateGrant", |m| grant(m, &["Sign", "Verify"]), crypto),
            (
                "Encrypt",
                |m| json!({"KeyId": m.id, "Plaintext": "eA==", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
                [USAGE; 4],
            ),
            ("GenerateMac", |m| json!({"KeyId": m.id, "Message": "eA==", "MacAlgorithm": "HMAC_SHA_256"}), [USAGE; 4]),
            ("GenerateDataKey", |m| json!({"KeyId": m.id, "KeySpec": "AES_256"}), [USAGE; 4]),
        ],
        Kind::RsaEncrypt => vec![
            (
                "Encrypt",
                |m| json!({"KeyId": m.id, "Plaintext": "eA==", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
                crypto,
            ),
            (
                "Decrypt",
                |m| json!({"KeyId": m.id, "CiphertextBlob": m.rsa_ciphertext, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
                crypto,
            ),
            (
                "ReEncrypt",
                |m| json!({"SourceKeyId": m.id, "CiphertextBlob": m.rsa_ciphertext, "SourceEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "DestinationKeyId": m.other}),
                crypto,
            ),
            ("GetPublicKey", |m| json!({"KeyId": m.id}), crypto),
            ("CreateGrant", |m| grant(m, &["Encrypt", "Decrypt", "GetPublicKey"]), crypto),
            (
                "Sign",
                |m| json!({"KeyId": m.id, "Message": "eA==", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
                [USAGE; 4],
            ),
            ("GenerateDataKey", |m| json!({"KeyId": m.id, "KeySpec": "AES_256"}), [USAGE; 4]),
            ("GenerateDataKeyPair", |m| json!({"KeyId": m.id, "KeyPairSpec": "ECC_NIST_P256"}), [USAGE; 4]),
        ],
        Kind::Hmac => vec![
            ("GenerateMac", |m| json!({"KeyId": m.id, "Message": "bXNn", "MacAlgorithm": "HMAC_SHA_256"}), crypto),
            (
                "VerifyMac",
                |m| json!({"KeyId": m.id, "Message": "bXNn", "Mac": m.mac, "MacAlgorithm": "HMAC_SHA_256"}),
                crypto,
            ),
            ("CreateGrant", |m| grant(m, &["GenerateMac", "VerifyMac"]), crypto),
            ("GetPublicKey", |m| json!({"KeyId": m.id}), [UNSUPPORTED; 4]),
            ("Encrypt", |m| json!({"KeyId": m.id, "Plaintext": "eA=="}), [USAGE; 4]),
            ("Sign", |m| json!({"KeyId": m.id, "Message": "eA==", "SigningAlgorithm": "ECDSA_SHA_256"}), [USAGE; 4]),
        ],
        Kind::ExternalSymmetric => vec![
            ("Encrypt", |m| json!({"KeyId": m.id, "Plaintext": "eA=="}), crypto),
            ("Decrypt", |m| json!({"CiphertextBlob": m.blob}), crypto),
            ("GenerateDataKey", |m| json!({"KeyId": m.id, "NumberOfBytes": 16}), crypto),
            ("GenerateDataKeyPair", |m| json!({"KeyId": m.id, "KeyPairSpec": "ECC_NIST_P256"}), crypto),
            ("CreateGrant", |m| grant(m, &["Encrypt", "Decrypt"]), crypto),
            ("GetPublicKey", |m| json!({"KeyId": m.id}), [UNSUPPORTED; 4]),
        ],
    };
    let external = matches!(kind, Kind::ExternalSymmetric | Kind::ExternalEcc);
    rows.extend(common_rows(external));
    rows
}

fn alg_of(m: &Made) -> &'static str {
    // RSA signatures are base64 of 256 bytes; ECDSA P-256 ones are about 71.
    if m.signature.len() > 300 {
        "RSASSA_PSS_SHA_256"
    } else {
        "ECDSA_SHA_256"
    }
}

/// Operations that change a key's state (or its material) get a fresh key per cell; the others
/// share one key per kind and state (they leave it as it was, which the assertions check too).
const STATE_CHANGING: &[&str] = &[
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "DeleteImportedKeyMaterial",
    "ImportKeyMaterial",
];

/// The key-state table for every new key type: each operation on a key in each state.
#[test]
fn key_state_table_for_asymmetric_hmac_and_imported_keys() {
    let f = fixture();
    for kind in [Kind::RsaSign, Kind::RsaEncrypt, Kind::Ecc, Kind::Hmac, Kind::ExternalSymmetric, Kind::ExternalEcc] {
        let external = matches!(kind, Kind::ExternalSymmetric | Kind::ExternalEcc);
        for (i, state) in ["Enabled", "Disabled", "PendingDeletion", "PendingImport"].into_iter().enumerate() {
            if state == "PendingImport" && !external {
                continue;
            }
            let shared = make(&f, kind, false);
            into_state(&f, &shared, state);
            for (op, body, expected) in rows(kind) {
                let want = expected[i];
                if want == NA {
                    continue;
                }
                let fresh;
                let m = if STATE_CHANGING.contains(&op) {
                    fresh = make(&f, kind, op == "ImportKeyMaterial");
                    into_state(&f, &fresh, state);
                    &fresh
                } else {
                    &shared
                };
                let got = outcome(&f, op, body(m));
                assert_eq!(got, want, "{op} on a {state} {kind:?} key");
            }
            assert_eq!(self::state(&f, &shared.id), state, "{kind:?}: the shared key kept its state");
        }
    }
}

/// Where the state changes of imported keys lead: import enables a PendingImport key, deleting
/// the material of a pending-deletion key leaves it pending deletion, cancelling the deletion of
/// a key without material brings it back PendingImport.
#[test]
fn imported_key_state_transitions() {
    let f = fixture();
    let id = create(&f, json!({"Origin": "EXTERNAL"}));
    assert_eq!(state(&f, &id), "PendingImport");
    let md = ok(&f, "DescribeKey", json!({"KeyId": id}))["KeyMetadata"].clone();
    assert_eq!((md["Enabled"].as_bool(), md["Origin"].as_str()), (Some(false), Some("EXTERNAL")));
    assert!(md.get("CurrentKeyMaterialId").is_none() && md.get("ExpirationModel").is_none());
    import(&f, &id, &[1u8; 32], "RSAES_OAEP_SHA_256");
    assert_eq!(state(&f, &id), "Enabled");
    ok(&f, "DisableKey", json!({"KeyId": id}));
    let (t, w) = wrapped_for_import(&f, &id, &[1u8; 32], "RSA_AES_KEY_WRAP_SHA_256");
    ok(
        &f,
        "ImportKeyMaterial",
        json!({"KeyId": id, "ImportToken": B64.encode(t), "EncryptedKeyMaterial": B64.encode(w), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
    );
    assert_eq!(state(&f, &id), "Disabled", "re-importing does not enable a disabled key");
    ok(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7}));
    ok(&f, "DeleteImportedKeyMaterial", json!({"KeyId": id}));
    assert_eq!(state(&f, &id), "PendingDeletion");
    ok(&f, "CancelKeyDeletion", json!({"KeyId": id}));
    assert_eq!(state(&f, &id), "PendingImport");
}

fn verifier(spec: &str, alg: &str) -> &'static dyn VerificationAlgorithm {
    match (spec, alg) {
        (_, "RSASSA_PSS_SHA_256") => &signature::RSA_PSS_2048_8192_SHA256,
        (_, "RSASSA_PSS_SHA_384") => &signature::RSA_PSS_2048_8192_SHA384,
        (_, "RSASSA_PSS_SHA_512") => &signature::RSA_PSS_2048_8192_SHA512,
        (_, "RSASSA_PKCS1_V1_5_SHA_256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        (_, "RSASSA_PKCS1_V1_5_SHA_384") => &signature::RSA_PKCS1_2048_8192_SHA384,
        (_, "RSASSA_PKCS1_V1_5_SHA_512") => &signature::RSA_PKCS1_2048_8192_SHA512,
        ("ECC_NIST_P256", _) => &signature::ECDSA_P256_SHA256_ASN1,
        ("ECC_NIST_P384", _) => &signature::ECDSA_P384_SHA384_ASN1,
        ("ECC_NIST_P521", _) => &signature::ECDSA_P521_SHA512_ASN1,
        ("ECC_SECG_P256K1", _) => &signature::ECDSA_P256K1_SHA256_ASN1,
        _ => panic!("{spec} {alg}"),
    }
}

fn digest_of(alg: &str, msg: &[u8]) -> Vec<u8> {
    let d = if alg.ends_with("256") {
        &digest::SHA256
    } else if alg.ends_with("384") {
        &digest::SHA384
    } else {
        &digest::SHA512
    };
    digest::digest(d, msg).as_ref().to_vec()
}

/// DescribeKey and GetPublicKey of every spec and usage list what AWS lists, and every signing
/// algorithm's signatures (RAW and DIGEST) verify outside the service with the SPKI it exports.
#[test]
fn every_spec_signs_and_describes_itself_as_aws_does() {
    let f = fixture();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "RSA_2048",
            "SIGN_VERIFY",
            &[
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
        ),
        ("RSA_3072", "SIGN_VERIFY", &["RSASSA_PSS_SHA_384", "RSASSA_PKCS1_V1_5_SHA_256"]),
        ("ECC_NIST_P256", "SIGN_VERIFY", &["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", "SIGN_VERIFY", &["ECDSA_SHA_384"]),
        ("ECC_NIST_P521", "SIGN_VERIFY", &["ECDSA_SHA_512"]),
        ("ECC_SECG_P256K1", "SIGN_VERIFY", &["ECDSA_SHA_256"]),
    ];
    let msg = b"the message AWS clients sign";
    for (spec, usage, algs) in cases {
        let md =
            ok(&f, "CreateKey", json!({"KeySpec": spec, "KeyUsage": usage, "Description": "d"}))["KeyMetadata"].clone();
        let id = md["KeyId"].as_str().unwrap();
        assert_eq!((md["KeySpec"].as_str(), md["CustomerMasterKeySpec"].as_str()), (Some(*spec), Some(*spec)));
        assert_eq!(md["KeyUsage"], *usage);
        assert_eq!(md["KeyState"], "Enabled");
        assert!(md.get("EncryptionAlgorithms").is_none() && md.get("MacAlgorithms").is_none(), "{md}");
        assert!(md.get("CurrentKeyMaterialId").is_none(), "only symmetric keys have material ids: {md}");
        let listed: Vec<&str> =
            md["SigningAlgorithms"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for a in *algs {
            assert!(listed.contains(a), "{spec}: {listed:?}");
        }
        let pk = ok(&f, "GetPublicKey", json!({"KeyId": format!("arn:aws:kms:us-east-1:000000000000:key/{id}")}));
        assert_eq!(pk["KeyId"], md["Arn"]);
        assert_eq!((pk["KeySpec"].as_str(), pk["KeyUsage"].as_str()), (Some(*spec), Some(*usage)));
        assert_eq!(pk["SigningAlgorithms"], md["SigningAlgorithms"]);
        assert!(pk.get("EncryptionAlgorithms").is_none());
        let spki = b64(&pk["PublicKey"]);
        assert_eq!(spki[0], 0x30, "DER SEQUENCE");
        for alg in *algs {
            for (kind, message) in [("RAW", msg.to_vec()), ("DIGEST", digest_of(alg, msg))] {
                let s = ok(
                    &f,
                    "Sign",
                    json!({"KeyId": id, "Message": B64.encode(&message), "MessageType": kind, "SigningAlgorithm": alg}),
                );
                assert_eq!(s["KeyId"], md["Arn"]);
                assert_eq!(s["SigningAlgorithm"], *alg);
                let sig = b64(&s["Signature"]);
                // Outside the service, over the plain message, with the exported public key.
                UnparsedPublicKey::new(verifier(spec, alg), &spki)
                    .verify(msg, &sig)
                    .unwrap_or_else(|_| panic!("{spec} {alg} {kind}: exported key does not verify"));
                let v = ok(
                    &f,
                    "Verify",
                    json!({"KeyId": id, "Message": B64.encode(msg), "Signature": B64.encode(&sig), "SigningAlgorithm": alg}),
                );
                assert_eq!(v["SignatureValid"], true);
                let mut bad = sig.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0x01;
                assert_eq!(
                    outcome(
                        &f,
                        "Verify",
                        json!({"KeyId": id, "Message": B64.encode(msg), "Signature": B64.encode(&bad), "SigningAlgorithm": alg})
                    ),
                    "KMSInvalidSignatureException"
                );
            }
        }
    }
}

/// AWS's answers to a key used the wrong way, and to bad input of the new operations.
#[test]
fn wrong_usage_and_bad_input_answer_aws_errors() {
    let f = fixture();
    let sym = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let rsa_enc = key(&f, "RSA_2048", "ENCRYPT_DECRYPT");
    let rsa_sign = key(&f, "RSA_2048", "SIGN_VERIFY");
    let ecc = key(&f, "ECC_NIST_P384", "SIGN_VERIFY");
    let hmac = key(&f, "HMAC_224", "GENERATE_VERIFY_MAC");
    let sign = |id: &str, alg: &str| json!({"KeyId": id, "Message": "eA==", "SigningAlgorithm": alg});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("Sign", sign(&rsa_enc, "RSASSA_PSS_SHA_256"), USAGE),
        ("Sign", sign(&sym, "ECDSA_SHA_256"), USAGE),
        ("Sign", sign(&hmac, "ECDSA_SHA_256"), USAGE),
        ("Sign", sign(&ecc, "ECDSA_SHA_256"), USAGE),
        ("Sign", sign(&ecc, "RSASSA_PSS_SHA_384"), USAGE),
        ("Sign", sign(&ecc, "SM2DSA"), USAGE),
        ("Sign", sign(&ecc, "ECDSA_SHA_999"), "ValidationException"),
        ("Sign", json!({"KeyId": ecc, "Message": "eA=="}), "ValidationException"),
        (
            "Sign",
            json!({"KeyId": ecc, "Message": B64.encode([0u8; 4097]), "SigningAlgorithm": "ECDSA_SHA_384"}),
            "ValidationException",
        ),
        (
            "Sign",
            json!({"KeyId": ecc, "Message": B64.encode([0u8; 32]), "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_384"}),
            "ValidationException",
        ),
        (
            "Sign",
            json!({"KeyId": ecc, "Message": "eA==", "MessageType": "EXTERNAL_MU", "SigningAlgorithm": "ECDSA_SHA_384"}),
            USAGE,
        ),
        (
            "Sign",
            json!({"KeyId": ecc, "Message": "eA==", "MessageType": "HASHED", "SigningAlgorithm": "ECDSA_SHA_384"}),
            "ValidationException",
        ),
        (
            "Verify",
            json!({"KeyId": ecc, "Message": "eA==", "Signature": "AAAA", "SigningAlgorithm": "ECDSA_SHA_384"}),
            "KMSInvalidSignatureException",
        ),
        (
            "Verify",
            json!({"KeyId": ecc, "Message": "eA==", "SigningAlgorithm": "ECDSA_SHA_384"}),
            "ValidationException",
        ),
        (
            "Encrypt",
            json!({"KeyId": rsa_sign, "Plaintext": "eA==", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
            USAGE,
        ),
        ("Encrypt", json!({"KeyId": rsa_enc, "Plaintext": "eA=="}), USAGE),
        ("Encrypt", json!({"KeyId": rsa_enc, "Plaintext": "eA==", "EncryptionAlgorithm": "SM2PKE"}), USAGE),
        (
            "Encrypt",
            json!({"KeyId": rsa_enc, "Plaintext": B64.encode([1u8; 191]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
            "ValidationException",
        ),
        (
            "Encrypt",
            json!({"KeyId": rsa_enc, "Plaintext": "eA==", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256", "EncryptionContext": {"a": "b"}}),
            "ValidationException",
        ),
        ("Encrypt", json!({"KeyId": hmac, "Plaintext": "eA=="}), USAGE),
        (
            "Decrypt",
            json!({"KeyId": rsa_enc, "CiphertextBlob": B64.encode([7u8; 256]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
            "InvalidCiphertextException",
        ),
        (
            "Decrypt",
            json!({"CiphertextBlob": B64.encode([7u8; 256]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
            USAGE,
        ),
        ("Decrypt", json!({"KeyId": rsa_enc, "CiphertextBlob": B64.encode([7u8; 256])}), USAGE),
        (
            "Decrypt",
            json!({"KeyId": rsa_sign, "CiphertextBlob": B64.encode([7u8; 256]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
            USAGE,
        ),
        ("GenerateMac", json!({"KeyId": sym, "Message": "eA==", "MacAlgorithm": "HMAC_SHA_256"}), USAGE),
        ("GenerateMac", json!({"KeyId": hmac, "Message": "eA==", "MacAlgorithm": "HMAC_SHA_256"}), USAGE),
        ("GenerateMac", json!({"KeyId": hmac, "Message": "eA==", "MacAlgorithm": "HMAC_MD5"}), "ValidationException"),
        ("GenerateMac", json!({"KeyId": hmac, "Message": "", "MacAlgorithm": "HMAC_SHA_224"}), "ValidationException"),
        (
            "VerifyMac",
            json!({"KeyId": hmac, "Message": "eA==", "Mac": "AAAA", "MacAlgorithm": "HMAC_SHA_224"}),
            "KMSInvalidMacException",
        ),
        ("GetPublicKey", json!({"KeyId": sym}), UNSUPPORTED),
        ("GetPublicKey", json!({"KeyId": hmac}), UNSUPPORTED),
        ("GenerateDataKey", json!({"KeyId": rsa_enc, "KeySpec": "AES_256"}), USAGE),
        ("GenerateDataKeyPair", json!({"KeyId": rsa_enc, "KeyPairSpec": "RSA_2048"}), USAGE),
        ("GenerateDataKeyPair", json!({"KeyId": sym, "KeyPairSpec": "SYMMETRIC_DEFAULT"}), "ValidationException"),
        ("GenerateDataKeyPair", json!({"KeyId": sym, "KeyPairSpec": "SM2"}), UNSUPPORTED),
        ("GenerateDataKeyPair", json!({"KeyId": sym}), "ValidationException"),
        ("ListKeyRotations", json!({"KeyId": ecc}), UNSUPPORTED),
        ("EnableKeyRotation", json!({"KeyId": hmac}), UNSUPPORTED),
        ("GenerateRandom", json!({"NumberOfBytes": 8, "CustomKeyStoreId": "cks-1"}), UNSUPPORTED),
        (
            "Encrypt",
            json!({"KeyId": sym, "Plaintext": "eA==", "GrantTokens": ["not-a-token"]}),
            "InvalidGrantTokenException",
        ),
    ];
    for (op, body, want) in cases {
        assert_eq!(outcome(&f, op, body.clone()), want, "{op} {body}");
    }
    let (_, v) = call(&f, "Encrypt", json!({"KeyId": rsa_enc, "Plaintext": "eA=="}));
    assert_eq!(v["message"], "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.");
    let (_, v) = call(&f, "Sign", sign(&rsa_enc, "RSASSA_PSS_SHA_256"));
    assert!(
        v["message"].as_str().unwrap().ends_with("key usage is ENCRYPT_DECRYPT which is not valid for Sign."),
        "{v}"
    );
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": ecc}))["KeyRotationEnabled"], false);
}

/// RSAES-OAEP both ways across the service boundary, and ReEncrypt between every pairing of
/// symmetric and RSA keys.
#[test]
fn rsa_encryption_round_trips_and_reencrypt() {
    let f = fixture();
    for spec in ["RSA_2048", "RSA_4096"] {
        let id = key(&f, spec, "ENCRYPT_DECRYPT");
        let md = ok(&f, "DescribeKey", json!({"KeyId": id}))["KeyMetadata"].clone();
        assert_eq!(md["EncryptionAlgorithms"], json!(["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]));
        let pk = ok(&f, "GetPublicKey", json!({"KeyId": id}));
        assert_eq!(pk["EncryptionAlgorithms"], md["EncryptionAlgorithms"]);
        // Encrypted outside with the exported key, decrypted inside.
        let ct = oaep_sha256(&b64(&pk["PublicKey"]), b"from outside");
        let d = ok(
            &f,
            "Decrypt",
            json!({"KeyId": id, "CiphertextBlob": B64.encode(&ct), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        );
        assert_eq!(b64(&d["Plaintext"]), b"from outside");
        assert_eq!(d["EncryptionAlgorithm"], "RSAES_OAEP_SHA_256");
        assert!(d.get("KeyMaterialId").is_none());
        let max = if spec == "RSA_2048" { 214 } else { 470 };
        let e = ok(
            &f,
            "Encrypt",
            json!({"KeyId": id, "Plaintext": B64.encode(vec![9u8; max]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}),
        );
        assert_eq!(b64(&e["CiphertextBlob"]).len(), if spec == "RSA_2048" { 256 } else { 512 });
        assert_eq!(
            outcome(
                &f,
                "Decrypt",
                json!({"KeyId": id, "CiphertextBlob": e["CiphertextBlob"], "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"})
            ),
            "InvalidCiphertextException",
            "the algorithm must be the one used"
        );
    }
    let rsa_a = key(&f, "RSA_3072", "ENCRYPT_DECRYPT");
    let rsa_b = key(&f, "RSA_2048", "ENCRYPT_DECRYPT");
    let sym = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let alg = "RSAES_OAEP_SHA_256";
    let e = ok(&f, "Encrypt", json!({"KeyId": rsa_a, "Plaintext": B64.encode(b"secret"), "EncryptionAlgorithm": alg}));
    // RSA -> RSA
    let r1 = ok(
        &f,
        "ReEncrypt",
        json!({"CiphertextBlob": e["CiphertextBlob"], "SourceKeyId": rsa_a, "SourceEncryptionAlgorithm": alg,
        "DestinationKeyId": rsa_b, "DestinationEncryptionAlgorithm": alg}),
    );
    assert_eq!(r1["SourceKeyId"], format!("arn:aws:kms:us-east-1:000000000000:key/{rsa_a}"));
    assert_eq!(
        (r1["SourceEncryptionAlgorithm"].as_str(), r1["DestinationEncryptionAlgorithm"].as_str()),
        (Some(alg), Some(alg))
    );
    // RSA -> symmetric (with a context), and back.
    let r2 = ok(
        &f,
        "ReEncrypt",
        json!({"CiphertextBlob": r1["CiphertextBlob"], "SourceKeyId": rsa_b, "SourceEncryptionAlgorithm": alg,
        "DestinationKeyId": sym, "DestinationEncryptionContext": {"c": "1"}}),
    );
    assert_eq!(r2["DestinationEncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert_eq!(r2["DestinationKeyMaterialId"].as_str().unwrap().len(), 64);
    let r3 = ok(
        &f,
        "ReEncrypt",
        json!({"CiphertextBlob": r2["CiphertextBlob"], "SourceEncryptionContext": {"c": "1"},
        "DestinationKeyId": rsa_a, "DestinationEncryptionAlgorithm": "RSAES_OAEP_SHA_1"}),
    );
    assert_eq!(r3["SourceKeyMaterialId"], r2["DestinationKeyMaterialId"]);
    let d = ok(
        &f,
        "Decrypt",
        json!({"KeyId": rsa_a, "CiphertextBlob": r3["CiphertextBlob"], "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}),
    );
    assert_eq!(b64(&d["Plaintext"]), b"secret");
    // Without SourceKeyId an RSA ciphertext is not a blob of ours.
    assert_eq!(
        outcome(&f, "ReEncrypt", json!({"CiphertextBlob": e["CiphertextBlob"], "DestinationKeyId": sym})),
        "InvalidCiphertextException"
    );
}

/// Data key pairs: the plaintext private key is the one sealed in the blob, it matches the
/// public key, the context is bound, and WithoutPlaintext leaves the private key out.
#[test]
fn data_key_pairs() {
    let f = fixture();
    let sym = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let ctx = json!({"purpose": "pair"});
    for spec in ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1"] {
        let p = ok(&f, "GenerateDataKeyPair", json!({"KeyId": sym, "KeyPairSpec": spec, "EncryptionContext": ctx}));
        assert_eq!(p["KeyPairSpec"], spec);
        assert_eq!(p["KeyId"], format!("arn:aws:kms:us-east-1:000000000000:key/{sym}"));
        assert_eq!(p["KeyMaterialId"].as_str().unwrap().len(), 64);
        let private = b64(&p["PrivateKeyPlaintext"]);
        let d = ok(&f, "Decrypt", json!({"CiphertextBlob": p["PrivateKeyCiphertextBlob"], "EncryptionContext": ctx}));
        assert_eq!(b64(&d["Plaintext"]), private);
        assert_eq!(
            outcome(&f, "Decrypt", json!({"CiphertextBlob": p["PrivateKeyCiphertextBlob"]})),
            "InvalidCiphertextException"
        );
        // The pair matches: sign with the private key, verify with the public one.
        let spki = b64(&p["PublicKey"]);
        let msg = b"pair check";
        let (sig, alg): (Vec<u8>, &dyn VerificationAlgorithm) = if spec == "RSA_2048" {
            let kp = signature::RsaKeyPair::from_pkcs8(&private).unwrap();
            let mut sig = vec![0u8; kp.public_modulus_len()];
            kp.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig).unwrap();
            (sig, &signature::RSA_PKCS1_2048_8192_SHA256)
        } else {
            let (s, v) = match spec {
                "ECC_NIST_P256" => (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &signature::ECDSA_P256_SHA256_ASN1),
                "ECC_NIST_P384" => (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &signature::ECDSA_P384_SHA384_ASN1),
                "ECC_NIST_P521" => (&signature::ECDSA_P521_SHA512_ASN1_SIGNING, &signature::ECDSA_P521_SHA512_ASN1),
                _ => (&signature::ECDSA_P256K1_SHA256_ASN1_SIGNING, &signature::ECDSA_P256K1_SHA256_ASN1),
            };
            let kp = EcdsaKeyPair::from_pkcs8(s, &private).unwrap();
            (kp.sign(&SystemRandom::new(), msg).unwrap().as_ref().to_vec(), v)
        };
        UnparsedPublicKey::new(alg, &spki).verify(msg, &sig).unwrap_or_else(|_| panic!("{spec} pair does not match"));
        let w = ok(&f, "GenerateDataKeyPairWithoutPlaintext", json!({"KeyId": sym, "KeyPairSpec": spec}));
        assert!(w.get("PrivateKeyPlaintext").is_none());
        assert!(w["PrivateKeyCiphertextBlob"].is_string() && w["PublicKey"].is_string());
    }
}

/// UpdateAlias moves an alias only between keys of one type and one key usage.
#[test]
fn update_alias_keeps_type_and_usage() {
    let f = fixture();
    let rsa_sign = key(&f, "RSA_2048", "SIGN_VERIFY");
    let ecc_sign = key(&f, "ECC_NIST_P256", "SIGN_VERIFY");
    let rsa_enc = key(&f, "RSA_2048", "ENCRYPT_DECRYPT");
    let sym = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let hmac = key(&f, "HMAC_256", "GENERATE_VERIFY_MAC");
    let hmac2 = key(&f, "HMAC_512", "GENERATE_VERIFY_MAC");
    ok(&f, "CreateAlias", json!({"AliasName": "alias/signer", "TargetKeyId": rsa_sign}));
    assert_eq!(outcome(&f, "UpdateAlias", json!({"AliasName": "alias/signer", "TargetKeyId": ecc_sign})), "ok");
    for other in [&rsa_enc, &sym, &hmac] {
        assert_eq!(
            outcome(&f, "UpdateAlias", json!({"AliasName": "alias/signer", "TargetKeyId": other})),
            "ValidationException"
        );
    }
    let s = ok(&f, "Sign", json!({"KeyId": "alias/signer", "Message": "eA==", "SigningAlgorithm": "ECDSA_SHA_256"}));
    assert_eq!(s["KeyId"], format!("arn:aws:kms:us-east-1:000000000000:key/{ecc_sign}"));
    ok(&f, "CreateAlias", json!({"AliasName": "alias/mac", "TargetKeyId": hmac}));
    assert_eq!(outcome(&f, "UpdateAlias", json!({"AliasName": "alias/mac", "TargetKeyId": hmac2})), "ok");
    ok(&f, "CreateAlias", json!({"AliasName": "alias/data", "TargetKeyId": sym}));
    assert_eq!(
        outcome(&f, "UpdateAlias", json!({"AliasName": "alias/data", "TargetKeyId": rsa_enc})),
        "ValidationException"
    );
}

/// An edited `keys` row cannot turn a signing key's material into an encryption key (or an HMAC
/// key into another size): the material's AAD binds spec and usage, so the unwrap fails with an
/// internal error instead of the key working under its new label.
#[test]
fn edited_key_rows_do_not_repurpose_material() {
    let f = fixture();
    let signer = key(&f, "RSA_2048", "SIGN_VERIFY");
    let mac = key(&f, "HMAC_256", "GENERATE_VERIFY_MAC");
    drop(ok(&f, "DescribeKey", json!({"KeyId": signer})));
    let db = rusqlite::Connection::open(f.dir.path().join("kms.db")).unwrap();
    db.execute("UPDATE keys SET key_usage = 'ENCRYPT_DECRYPT' WHERE key_id = ?1", [&signer]).unwrap();
    db.execute("UPDATE keys SET key_spec = 'HMAC_512' WHERE key_id = ?1", [&mac]).unwrap();
    let (s, v) =
        call(&f, "Encrypt", json!({"KeyId": signer, "Plaintext": "eA==", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}));
    assert_eq!((s, v["__type"].as_str()), (500, Some("KMSInternalException")), "{v}");
    let (s, v) = call(&f, "GenerateMac", json!({"KeyId": mac, "Message": "eA==", "MacAlgorithm": "HMAC_SHA_512"}));
    assert_eq!((s, v["__type"].as_str()), (500, Some("KMSInternalException")), "{v}");
}

/// A root key change re-wraps the material of every kind of key and the import wrapping keys;
/// after it, signatures made before still verify and a pending import still completes.
#[test]
fn root_key_change_covers_every_kind_of_material() {
    let f = fixture();
    let rsa = key(&f, "RSA_2048", "SIGN_VERIFY");
    let hmac = key(&f, "HMAC_384", "GENERATE_VERIFY_MAC");
    let ext = create(&f, json!({"Origin": "EXTERNAL"}));
    let (token, wrapped) = wrapped_for_import(&f, &ext, &[4u8; 32], "RSAES_OAEP_SHA_256");
    let sig = ok(&f, "Sign", json!({"KeyId": rsa, "Message": "eA==", "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}))
        ["Signature"]
        .clone();
    let mac =
        ok(&f, "GenerateMac", json!({"KeyId": hmac, "Message": "eA==", "MacAlgorithm": "HMAC_SHA_384"}))["Mac"].clone();
    let (_, n) = f.kms.change_root_key(RootKey::from_bytes(&[9u8; 32]).unwrap()).unwrap();
    assert_eq!(n, 2, "the RSA and HMAC material (the imported key has none yet)");
    drop(f.kms);
    let kms =
        Kms::open(&f.dir.path().join("kms.db"), RootKey::from_bytes(&[9u8; 32]).unwrap(), f.clock.clone(), config())
            .unwrap();
    let f = Fixture { dir: f.dir, kms, clock: f.clock };
    let v = ok(
        &f,
        "Verify",
        json!({"KeyId": rsa, "Message": "eA==", "Signature": sig, "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}),
    );
    assert_eq!(v["SignatureValid"], true);
    ok(&f, "VerifyMac", json!({"KeyId": hmac, "Message": "eA==", "Mac": mac, "MacAlgorithm": "HMAC_SHA_384"}));
    ok(
        &f,
        "ImportKeyMaterial",
        json!({"KeyId": ext, "ImportToken": B64.encode(token), "EncryptedKeyMaterial": B64.encode(wrapped), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
    );
    assert_eq!(state(&f, &ext), "Enabled");
}

/// The audit summary of the new operations names the key and never carries the message,
/// signature, MAC, wrapped material or tokens.
#[test]
fn audit_summaries_leave_secrets_out() {
    let f = fixture();
    let ecc = key(&f, "ECC_NIST_P256", "SIGN_VERIFY");
    let root = "arn:aws:iam::000000000000:root";
    let (_, _, s) = call_with(
        &f,
        root,
        &allow,
        "Sign",
        json!({"KeyId": ecc, "Message": "c2VjcmV0IG1lc3NhZ2U=", "SigningAlgorithm": "ECDSA_SHA_256"}),
    );
    assert_eq!(s.key_arn.as_deref(), Some(format!("arn:aws:kms:us-east-1:000000000000:key/{ecc}").as_str()));
    assert_eq!(s.request_parameters["signingAlgorithm"], "ECDSA_SHA_256");
    assert_eq!(s.request_parameters["keyId"], ecc);
    let logged = s.request_parameters.to_string();
    assert!(!logged.contains("c2VjcmV0"), "{logged}");
    let (_, _, s) = call_with(
        &f,
        root,
        &allow,
        "ImportKeyMaterial",
        json!({"KeyId": ecc, "ImportToken": "dG9rZW4=", "EncryptedKeyMaterial": "d3JhcHBlZA==", "GrantTokens": []}),
    );
    let logged = s.request_parameters.to_string();
    assert!(
        !logged.contains("dG9rZW4") && !logged.contains("d3JhcHBlZA") && !logged.contains("grantTokens"),
        "{logged}"
    );
}
