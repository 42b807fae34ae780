//! The PKCS#11 root key provider against SoftHSM2 (skipped, with a message, when SoftHSM2 is not
//! installed; `./scripts/test` installs it).

#![cfg(feature = "pkcs11")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use sealbox_kms::{FakeClock, Kms, KmsConfig, KmsError, RootKey};

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
