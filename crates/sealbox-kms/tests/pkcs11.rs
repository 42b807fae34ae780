//! The PKCS#11 root key provider against SoftHSM2, for every kind of key material (skipped, with a message, when SoftHSM2 is not
//! installed; `./scripts/test` installs it).

#![cfg(feature = "pkcs11")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sealbox_kms::api::{handle, AuthzRequest};
use sealbox_kms::{Caller, FakeClock, Kms, KmsConfig, KmsError, RootKey};
use serde_json::{json, Value};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn softhsm_token(dir: &Path) -> Option<()> {
    if !Path::new(MODULE).exists() {
        eprintln!("SoftHSM2 not installed: skipping the PKCS#11 test");
        return None;
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).ok()?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display())).ok()?;
    // The variable is read by the SoftHSM2 library at load: each test process sets its own.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let ok = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "sealbox-test", "--pin", "1234", "--so-pin", "5678"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .ok()?
        .status
        .success();
    ok.then_some(())
}

fn allow(_: &AuthzRequest<'_>) -> Result<(), KmsError> {
    Ok(())
}

#[test]
fn root_key_inside_softhsm_wraps_material_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    if softhsm_token(dir.path()).is_none() {
        return;
    }
    let cfg = KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() };
    let clock = Arc::new(FakeClock::at(1_800_000_000));
    let db = dir.path().join("kms.db");
    let blob = {
        let root = RootKey::from_pkcs11(Path::new(MODULE), "sealbox-test", "1234", "sealbox-root").unwrap();
        let kms = Kms::open(&db, root, clock.clone(), cfg.clone()).unwrap();
        let key = kms.create_key("hsm", None, &[]).unwrap();
        kms.encrypt_with(&key, b"wrapped in the HSM", &BTreeMap::new()).unwrap().0
    };
    // The material in the store is only ever wrapped by the HSM key.
    let raw = std::fs::read(&db).unwrap();
    assert!(!raw.windows(18).any(|w| w == b"wrapped in the HSM"));
    // Same token, same key label: the key is found again, old material opens.
    let root = RootKey::from_pkcs11(Path::new(MODULE), "sealbox-test", "1234", "sealbox-root").unwrap();
    let kms = Kms::open(&db, root, clock.clone(), cfg.clone()).unwrap();
    assert_eq!(&kms.decrypt_data_key(&blob, &BTreeMap::new()).unwrap().plaintext[..], b"wrapped in the HSM");
    // Asymmetric, HMAC and imported material are wrapped by the HSM key like symmetric material.
    let call = |kms: &Kms, op: &str, body: Value| -> Value {
        let (r, _) = handle(kms, op, body.to_string().as_bytes(), &Caller::default(), &allow);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, 200, "{op}: {v}");
        v
    };
    let id = |v: Value| v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let rsa = id(call(&kms, "CreateKey", json!({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"})));
    let hmac = id(call(&kms, "CreateKey", json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"})));
    let ext = id(call(&kms, "CreateKey", json!({"Origin": "EXTERNAL"})));
    let p = call(
        &kms,
        "GetParametersForImport",
        json!({"KeyId": ext, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
    );
    let spki = B64.decode(p["PublicKey"].as_str().unwrap()).unwrap();
    let pk = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&spki).unwrap()).unwrap();
    let mut wrapped = vec![0u8; pk.ciphertext_size()];
    let n = pk.encrypt(&OAEP_SHA256_MGF1SHA256, &[6u8; 32], &mut wrapped, None).unwrap().len();
    call(
        &kms,
        "ImportKeyMaterial",
        json!({"KeyId": ext, "ImportToken": p["ImportToken"],
        "EncryptedKeyMaterial": B64.encode(&wrapped[..n]), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
    );
    let sig = call(&kms, "Sign", json!({"KeyId": rsa, "Message": "eA==", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}))
        ["Signature"]
        .clone();
    let mac = call(&kms, "GenerateMac", json!({"KeyId": hmac, "Message": "eA==", "MacAlgorithm": "HMAC_SHA_256"}))
        ["Mac"]
        .clone();
    let sealed = call(&kms, "Encrypt", json!({"KeyId": ext, "Plaintext": "aW1wb3J0ZWQ="}))["CiphertextBlob"].clone();
    drop(kms);
    let root = RootKey::from_pkcs11(Path::new(MODULE), "sealbox-test", "1234", "sealbox-root").unwrap();
    let kms = Kms::open(&db, root, clock.clone(), cfg.clone()).unwrap();
    call(
        &kms,
        "Verify",
        json!({"KeyId": rsa, "Message": "eA==", "Signature": sig, "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
    );
    call(&kms, "VerifyMac", json!({"KeyId": hmac, "Message": "eA==", "Mac": mac, "MacAlgorithm": "HMAC_SHA_256"}));
    assert_eq!(call(&kms, "Decrypt", json!({"CiphertextBlob": sealed}))["Plaintext"], "aW1wb3J0ZWQ=");
    let raw = std::fs::read(&db).unwrap();
    assert!(!raw.windows(32).any(|w| w == [6u8; 32]), "imported material in the clear");
    drop(kms);
    // Another key label in the same token is another root key: refused before anything is touched.
    let other = RootKey::from_pkcs11(Path::new(MODULE), "sealbox-test", "1234", "another-root").unwrap();
    assert!(matches!(Kms::open(&db, other, clock.clone(), cfg.clone()), Err(KmsError::WrongRootKey)));
    assert!(matches!(
        RootKey::from_pkcs11(Path::new(MODULE), "sealbox-test", "0000", "sealbox-root"),
        Err(KmsError::RootKey(_))
    ));
    assert!(matches!(
        RootKey::from_pkcs11(Path::new(MODULE), "no-such-token", "1234", "sealbox-root"),
        Err(KmsError::RootKey(_))
    ));
}
