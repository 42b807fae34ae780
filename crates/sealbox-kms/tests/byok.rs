//! Imported key material (BYOK) through the JSON API, with the material wrapped as a customer
//! does (RSAES-OAEP-SHA-256, or RSA-OAEP + AES key wrap with padding): import, use, deletion and
//! re-import of the same material only, expiry at ValidTo on the fake clock, import tokens, and
//! the material never reaching the store unwrapped.

mod common;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use serde_json::json;

const MATERIAL: [u8; 32] = [0x42; 32];

#[test]
fn symmetric_import_delete_and_reimport_keep_old_blobs_readable() {
    let f = fixture();
    let id = create(&f, json!({"Origin": "EXTERNAL", "Description": "byok"}));
    let out = import(&f, &id, &MATERIAL, "RSAES_OAEP_SHA_256");
    assert_eq!(out["KeyId"], format!("arn:aws:kms:us-east-1:000000000000:key/{id}"));
    let material_id = out["KeyMaterialId"].as_str().unwrap().to_owned();
    assert_eq!(material_id.len(), 64);
    let md = ok(&f, "DescribeKey", json!({"KeyId": id}))["KeyMetadata"].clone();
    assert_eq!(
        (md["KeyState"].as_str(), md["ExpirationModel"].as_str()),
        (Some("Enabled"), Some("KEY_MATERIAL_DOES_NOT_EXPIRE"))
    );
    assert_eq!(md["CurrentKeyMaterialId"], material_id.as_str());
    assert!(md.get("ValidTo").is_none());
    let blob =
        ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"kept"), "EncryptionContext": {"a": "1"}}))
            ["CiphertextBlob"]
            .clone();
    let rot = ok(&f, "ListKeyRotations", json!({"KeyId": id, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}));
    assert_eq!(rot["Rotations"][0]["ImportState"], "IMPORTED");
    // Deleting the material makes the key unusable...
    let del = ok(&f, "DeleteImportedKeyMaterial", json!({"KeyId": id}));
    assert_eq!(del["KeyMaterialId"], material_id.as_str());
    assert_eq!(state(&f, &id), "PendingImport");
    assert_eq!(
        outcome(&f, "Decrypt", json!({"CiphertextBlob": blob, "EncryptionContext": {"a": "1"}})),
        "KMSInvalidStateException"
    );
    assert_eq!(outcome(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA=="})), "KMSInvalidStateException");
    // ...other material is refused...
    let (t, w) = wrapped_for_import(&f, &id, &[0x43; 32], "RSAES_OAEP_SHA_256");
    assert_eq!(
        outcome(
            &f,
            "ImportKeyMaterial",
            json!({"KeyId": id, "ImportToken": B64.encode(&t), "EncryptedKeyMaterial": B64.encode(&w), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
        ),
        "IncorrectKeyMaterialException"
    );
    assert_eq!(state(&f, &id), "PendingImport");
    // ...and the same material, re-imported (with another wrapping), reads the old blob.
    let again = import(&f, &id, &MATERIAL, "RSA_AES_KEY_WRAP_SHA_256");
    assert_eq!(again["KeyMaterialId"], material_id.as_str());
    let d = ok(&f, "Decrypt", json!({"CiphertextBlob": blob, "EncryptionContext": {"a": "1"}}));
    assert_eq!(b64(&d["Plaintext"]), b"kept");
    assert_eq!(d["KeyMaterialId"], material_id.as_str());
    // One material per imported key: NEW_KEY_MATERIAL after the first import is refused, and a
    // KeyMaterialId must name the key's material.
    let (t, w) = wrapped_for_import(&f, &id, &MATERIAL, "RSAES_OAEP_SHA_256");
    let body = |extra: serde_json::Value| {
        let mut b = json!({"KeyId": id, "ImportToken": B64.encode(&t), "EncryptedKeyMaterial": B64.encode(&w), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    assert_eq!(
        outcome(&f, "ImportKeyMaterial", body(json!({"ImportType": "NEW_KEY_MATERIAL"}))),
        "UnsupportedOperationException"
    );
    assert_eq!(
        outcome(&f, "ImportKeyMaterial", body(json!({"KeyMaterialId": "0".repeat(64)}))),
        "IncorrectKeyMaterialException"
    );
    assert_eq!(
        outcome(
            &f,
            "ImportKeyMaterial",
            body(json!({"KeyMaterialId": material_id, "ImportType": "EXISTING_KEY_MATERIAL"}))
        ),
        "ok"
    );
    assert_eq!(outcome(&f, "RotateKeyOnDemand", json!({"KeyId": id})), "UnsupportedOperationException");
}

#[test]
fn asymmetric_and_hmac_material_imported_with_rsa_aes_key_wrap() {
    let f = fixture();
    // An EC P-256 signing key the customer made: sealbox signs with exactly that key.
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
    let theirs = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let ec = create(&f, json!({"Origin": "EXTERNAL", "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}));
    assert_eq!(
        outcome(
            &f,
            "GetParametersForImport",
            json!({"KeyId": ec, "WrappingAlgorithm": "RSAES_PKCS1_V1_5", "WrappingKeySpec": "RSA_2048"})
        ),
        "UnsupportedOperationException"
    );
    import(&f, &ec, pkcs8.as_ref(), "RSA_AES_KEY_WRAP_SHA_256");
    let s =
        ok(&f, "Sign", json!({"KeyId": ec, "Message": B64.encode(b"imported"), "SigningAlgorithm": "ECDSA_SHA_256"}));
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, theirs.public_key().as_ref())
        .verify(b"imported", &b64(&s["Signature"]))
        .expect("signed with the imported key");
    // An RSA private key cannot travel under RSAES-OAEP alone (AWS: use RSA_AES).
    let rsa = create(&f, json!({"Origin": "EXTERNAL", "KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}));
    assert_eq!(
        outcome(
            &f,
            "GetParametersForImport",
            json!({"KeyId": rsa, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_4096"})
        ),
        "ValidationException"
    );
    // A key of the wrong curve or size is not this key's material.
    let (t, w) = wrapped_for_import(&f, &rsa, pkcs8.as_ref(), "RSA_AES_KEY_WRAP_SHA_256");
    assert_eq!(
        outcome(
            &f,
            "ImportKeyMaterial",
            json!({"KeyId": rsa, "ImportToken": B64.encode(t), "EncryptedKeyMaterial": B64.encode(w), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
        ),
        "IncorrectKeyMaterialException"
    );
    // HMAC material of an allowed length; too short is incorrect.
    let mac = create(&f, json!({"Origin": "EXTERNAL", "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}));
    let (t, w) = wrapped_for_import(&f, &mac, &[1u8; 16], "RSAES_OAEP_SHA_256");
    assert_eq!(
        outcome(
            &f,
            "ImportKeyMaterial",
            json!({"KeyId": mac, "ImportToken": B64.encode(t), "EncryptedKeyMaterial": B64.encode(w), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
        ),
        "IncorrectKeyMaterialException"
    );
    import(&f, &mac, b"Jefe-but-longer-than-thirty-two-bytes!", "RSAES_OAEP_SHA_256");
    let m = ok(
        &f,
        "GenerateMac",
        json!({"KeyId": mac, "Message": B64.encode(b"what do ya want for nothing?"), "MacAlgorithm": "HMAC_SHA_256"}),
    );
    let expected = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"Jefe-but-longer-than-thirty-two-bytes!"),
        b"what do ya want for nothing?",
    );
    assert_eq!(b64(&m["Mac"]), expected.as_ref(), "the MAC is the standard HMAC under the imported key");
}

#[test]
fn material_expires_at_valid_to() {
    let f = fixture();
    let id = create(&f, json!({"Origin": "EXTERNAL"}));
    let (t, w) = wrapped_for_import(&f, &id, &MATERIAL, "RSAES_OAEP_SHA_256");
    let body = |valid_to: Option<i64>, model: Option<&str>| {
        let mut b = json!({"KeyId": id, "ImportToken": B64.encode(&t), "EncryptedKeyMaterial": B64.encode(&w)});
        if let Some(v) = valid_to {
            b["ValidTo"] = json!(v as f64 + 0.5);
        }
        if let Some(m) = model {
            b["ExpirationModel"] = json!(m);
        }
        b
    };
    // The default model expires, so it needs a ValidTo in (now, now + 365 d].
    assert_eq!(outcome(&f, "ImportKeyMaterial", body(None, None)), "ValidationException");
    assert_eq!(outcome(&f, "ImportKeyMaterial", body(Some(T0 - 1), None)), "ValidationException");
    assert_eq!(outcome(&f, "ImportKeyMaterial", body(Some(T0 + 366 * DAY), None)), "ValidationException");
    assert_eq!(
        outcome(&f, "ImportKeyMaterial", body(Some(T0 + DAY), Some("KEY_MATERIAL_DOES_NOT_EXPIRE"))),
        "ValidationException"
    );
    assert_eq!(outcome(&f, "ImportKeyMaterial", body(Some(T0 + 2 * DAY), None)), "ok");
    let md = ok(&f, "DescribeKey", json!({"KeyId": id}))["KeyMetadata"].clone();
    assert_eq!(md["ExpirationModel"], "KEY_MATERIAL_EXPIRES");
    assert_eq!(md["ValidTo"].as_f64().unwrap() as i64, T0 + 2 * DAY);
    let blob = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA=="}))["CiphertextBlob"].clone();
    f.clock.advance_days(1);
    assert!(f.kms.expire_imported_material().unwrap().is_empty(), "not yet");
    f.clock.advance_days(1);
    // The next request sees the expiry at once (not a minute later), and the sweep reports it once.
    assert_eq!(outcome(&f, "Decrypt", json!({"CiphertextBlob": blob})), "KMSInvalidStateException");
    assert_eq!(state(&f, &id), "PendingImport");
    assert_eq!(f.kms.expire_imported_material().unwrap(), vec![id.clone()]);
    assert!(f.kms.expire_imported_material().unwrap().is_empty());
    assert!(f.kms.materials(&id).unwrap().is_empty(), "the wrapped material is gone");
    // The token is a day old now and still valid; re-import brings everything back.
    let back = import(&f, &id, &MATERIAL, "RSAES_OAEP_SHA_256");
    assert!(back["KeyMaterialId"].is_string());
    assert_eq!(b64(&ok(&f, "Decrypt", json!({"CiphertextBlob": blob}))["Plaintext"]), b"x");
    // Keys found expired by the minute sweep (no request in between) are reported too.
    let other = create(&f, json!({"Origin": "EXTERNAL"}));
    let (t2, w2) = wrapped_for_import(&f, &other, &MATERIAL, "RSAES_OAEP_SHA_256");
    ok(
        &f,
        "ImportKeyMaterial",
        json!({"KeyId": other, "ImportToken": B64.encode(t2), "EncryptedKeyMaterial": B64.encode(w2), "ValidTo": f.kms.now() + 60}),
    );
    f.clock.advance_secs(61);
    assert_eq!(f.kms.expire_imported_material().unwrap(), vec![other.clone()]);
    assert_eq!(state(&f, &other), "PendingImport");
}

#[test]
fn import_tokens_are_bound_to_their_key_and_expire() {
    let f = fixture();
    let a = create(&f, json!({"Origin": "EXTERNAL"}));
    let b = create(&f, json!({"Origin": "EXTERNAL"}));
    let p = ok(
        &f,
        "GetParametersForImport",
        json!({"KeyId": a, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_3072"}),
    );
    assert_eq!(p["KeyId"], format!("arn:aws:kms:us-east-1:000000000000:key/{a}"));
    assert_eq!(p["ParametersValidTo"].as_f64().unwrap() as i64, T0 + DAY);
    let spki = b64(&p["PublicKey"]);
    let token = p["ImportToken"].clone();
    let wrapped = B64.encode(oaep_sha256(&spki, &MATERIAL));
    let imp = |key: &str, token: &serde_json::Value, wrapped: &str| {
        outcome(
            &f,
            "ImportKeyMaterial",
            json!({"KeyId": key, "ImportToken": token, "EncryptedKeyMaterial": wrapped, "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
        )
    };
    assert_eq!(imp(&b, &token, &wrapped), "InvalidImportTokenException", "another key's token");
    assert_eq!(imp(&a, &json!(B64.encode(b"forged token")), &wrapped), "InvalidImportTokenException");
    let mut bad = b64(&json!(wrapped.clone()));
    bad[5] ^= 1;
    assert_eq!(imp(&a, &token, &B64.encode(&bad)), "InvalidCiphertextException");
    assert_eq!(imp(&a, &token, &B64.encode(&bad[..100])), "InvalidCiphertextException");
    f.clock.advance_secs(DAY + 1);
    assert_eq!(imp(&a, &token, &wrapped), "ExpiredImportTokenException");
    // The sweep drops expired wrapping keys; the token is then unknown.
    f.kms.purge_deleted_keys().unwrap();
    assert_eq!(imp(&a, &token, &wrapped), "InvalidImportTokenException");
    assert_eq!(
        outcome(
            &f,
            "GetParametersForImport",
            json!({"KeyId": a, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "SM2"})
        ),
        "UnsupportedOperationException"
    );
    assert_eq!(
        outcome(&f, "GetParametersForImport", json!({"KeyId": a, "WrappingAlgorithm": "RSAES_OAEP_SHA_256"})),
        "ValidationException"
    );
    let generated = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    assert_eq!(
        outcome(
            &f,
            "GetParametersForImport",
            json!({"KeyId": generated, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"})
        ),
        "UnsupportedOperationException"
    );
}

/// Neither the imported material nor the import wrapping key is ever in the store file or its
/// WAL unwrapped; after DeleteImportedKeyMaterial even the wrapped material is overwritten.
#[test]
fn imported_material_is_only_stored_wrapped_and_deletion_shreds_it() {
    let f = fixture();
    let material: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    let id = create(&f, json!({"Origin": "EXTERNAL"}));
    import(&f, &id, &material, "RSAES_OAEP_SHA_256");
    let files = || -> Vec<u8> {
        ["kms.db", "kms.db-wal"].iter().flat_map(|n| std::fs::read(f.dir.path().join(n)).unwrap_or_default()).collect()
    };
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&files(), &material), "imported material stored in the clear");
    let wrapped: Vec<u8> = rusqlite::Connection::open(f.dir.path().join("kms.db"))
        .unwrap()
        .query_row("SELECT wrapped FROM key_material WHERE key_id = ?1", [&id], |r| r.get(0))
        .unwrap();
    assert!(contains(&files(), &wrapped));
    ok(&f, "DeleteImportedKeyMaterial", json!({"KeyId": id}));
    assert!(!contains(&files(), &wrapped), "deleted material left in the file");
}
