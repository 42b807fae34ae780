//! Every kind of tampering with the audit directory is detected and named.

mod common;

use std::fs;

use common::*;
use sealbox_audit::*;

/// Three sealed files (seq 1-5, 6-10, 11-13), each covered by one of three digests.
fn sealed_env() -> (Env, Vec<String>, Vec<String>) {
    let env = Env::new();
    two_digests(&env).close().unwrap();
    let files = env.log_files();
    let digests = env.digest_files();
    assert_eq!((files.len(), digests.len()), (3, 3));
    let report = env.verify().unwrap();
    assert_eq!((report.records, report.files, report.digests, report.uncovered_records), (13, 3, 3, 0));
    (env, files, digests)
}

#[test]
fn edited_record_is_named() {
    let (env, files, _) = sealed_env();
    let path = env.log_path(&files[0]);
    let mut l = lines(&path);
    assert!(l[2].contains("\"eventName\":\"Decrypt\""));
    l[2] = l[2].replace("\"eventName\":\"Decrypt\"", "\"eventName\":\"Encrypt\"");
    write_lines(&path, &l);
    match env.verify() {
        Err(VerifyError::RecordEdited { file, line: 3, seq: 3 }) => assert_eq!(file, files[0]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deleted_record_is_named() {
    let (env, files, _) = sealed_env();
    let path = env.log_path(&files[1]);
    let mut l = lines(&path);
    l.remove(1); // seq 7
    write_lines(&path, &l);
    let err = env.verify().unwrap_err();
    assert!(
        matches!(&err, VerifyError::RecordsMissing { file, line: 2, expected: 7, found: 8 } if *file == files[1]),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn inserted_record_is_named() {
    let (env, files, _) = sealed_env();
    let path = env.log_path(&files[0]);
    let mut l = lines(&path);
    let copy = l[1].clone();
    l.insert(2, copy); // a replayed copy of seq 2 after seq 2
    write_lines(&path, &l);
    match env.verify() {
        Err(VerifyError::RecordInserted { file, line: 3, expected: 3, found: 2 }) => assert_eq!(file, files[0]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reordered_records_are_named() {
    let (env, files, _) = sealed_env();
    let path = env.log_path(&files[0]);
    let mut l = lines(&path);
    l.swap(3, 4); // seq 4 and 5
    write_lines(&path, &l);
    match env.verify() {
        Err(VerifyError::RecordsReordered { file, line: 4, expected: 4, found: 5 }) => assert_eq!(file, files[0]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_last_file_is_caught_by_its_digest() {
    let (env, files, digests) = sealed_env();
    let path = env.log_path(&files[2]);
    let l = lines(&path);
    write_lines(&path, &l[..1]); // keep seq 11, drop 12-13
    match env.verify() {
        Err(VerifyError::LogFileTruncated { digest, file, last_seq: 11, expected_last_seq: 13 }) => {
            assert_eq!(file, files[2]);
            assert_eq!(digest, digests[2]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_middle_file_is_named() {
    let (env, files, _) = sealed_env();
    let path = env.log_path(&files[0]);
    let l = lines(&path);
    write_lines(&path, &l[..3]);
    match env.verify() {
        Err(VerifyError::FileTruncated { file, last_seq: 3, next_first_seq: 6 }) => assert_eq!(file, files[0]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cut_mid_line_is_named() {
    let (env, files, _) = sealed_env();
    let path = env.log_path(&files[1]);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    match env.verify() {
        Err(VerifyError::TornLine { file, line: 5 }) => assert_eq!(file, files[1]),
        other => panic!("{other:?}"),
    }
}

/// An attacker without the signing key can rebuild a perfectly consistent chain after editing a
/// record; the signed digest's file hash still catches it.
#[test]
fn consistently_rewritten_chain_is_caught_by_the_digest() {
    let (env, files, digests) = sealed_env();
    let mut prev = GENESIS_PREV.to_owned();
    for name in &files {
        let path = env.log_path(name);
        let mut out = Vec::new();
        for line in lines(&path) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let seq = v["seq"].as_u64().unwrap();
            let start = line.find("\"record\":").unwrap() + "\"record\":".len();
            let mut record = line[start..line.len() - 1].to_owned();
            if seq == 7 {
                record = record.replace("127.0.0.1", "10.6.6.6");
            }
            let hash = record_hash(seq, &prev, record.as_bytes());
            out.push(format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"hash\":\"{hash}\",\"record\":{record}}}"));
            prev = hash;
        }
        write_lines(&path, &out);
    }
    match env.verify() {
        Err(VerifyError::LogFileModified { digest, file }) => {
            assert_eq!(file, files[1]);
            assert_eq!(digest, digests[1]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn deleted_digest_breaks_the_digest_chain() {
    let (env, _, digests) = sealed_env();
    fs::remove_file(env.digest_path(&digests[1])).unwrap();
    let err = env.verify().unwrap_err();
    match &err {
        VerifyError::DigestChainBroken { digest, reason } => {
            assert_eq!(*digest, digests[2]);
            assert!(reason.contains(&digests[1]), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn deleted_first_digest_is_detected() {
    let (env, _, digests) = sealed_env();
    fs::remove_file(env.digest_path(&digests[0])).unwrap();
    assert!(matches!(env.verify(), Err(VerifyError::DigestChainBroken { digest, .. }) if digest == digests[1]));
}

#[test]
fn edited_digest_fails_its_signature() {
    let (env, files, digests) = sealed_env();
    let path = env.digest_path(&digests[1]);
    let text = fs::read_to_string(&path).unwrap();
    // Pretend file 2 ended one record earlier.
    let edited = text.replace("\"lastSeq\": 10", "\"lastSeq\": 9");
    assert_ne!(edited, text);
    fs::write(&path, edited).unwrap();
    assert!(matches!(env.verify(), Err(VerifyError::DigestSignatureInvalid { digest }) if digest == digests[1]));
    let _ = files;
}

#[test]
fn forged_signature_is_detected() {
    let (env, _, digests) = sealed_env();
    // The attacker signs the edited digest with a key of their own, over the right string.
    let path = env.digest_path(&digests[0]);
    let doc = fs::read(&path).unwrap();
    let parsed: DigestDocument = serde_json::from_slice(&doc).unwrap();
    let hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &doc));
    let to_sign = string_to_sign(&parsed.digest_end_time, &digests[0], &hash, None);
    let forger = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(
        aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap().as_ref(),
    )
    .unwrap();
    let forged = hex::encode(forger.sign(to_sign.as_bytes()));
    fs::write(env.digest_path(&format!("{}.sig", digests[0])), forged).unwrap();
    assert!(matches!(env.verify(), Err(VerifyError::DigestSignatureInvalid { digest }) if digest == digests[0]));
}

#[test]
fn missing_signature_and_wrong_key_are_reported() {
    let (env, _, digests) = sealed_env();
    let other = AuditSigner::generate().unwrap().public_key();
    assert!(
        matches!(verify(&env.data(), &other), Err(VerifyError::DigestWrongKey { digest, .. }) if digest == digests[0])
    );
    fs::remove_file(env.digest_path(&format!("{}.sig", digests[2]))).unwrap();
    assert!(matches!(env.verify(), Err(VerifyError::DigestSignatureMissing { digest }) if digest == digests[2]));
}

#[test]
fn deleted_log_file_is_named_by_the_digest() {
    let (env, files, digests) = sealed_env();
    fs::remove_file(env.log_path(&files[2])).unwrap();
    match env.verify() {
        Err(VerifyError::LogFileMissing { digest, file }) => {
            assert_eq!(file, files[2]);
            assert_eq!(digest, digests[2]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn records_after_the_last_digest_are_reported_uncovered() {
    let env = Env::new();
    let log = two_digests(&env);
    let report = env.verify().unwrap();
    assert_eq!(report.records, 13);
    assert_eq!(report.covered_records, 10);
    assert_eq!(report.uncovered_records, 3);
    assert_eq!(report.uncovered_files, vec![env.log_files()[2].clone()]);
    assert_eq!(report.digests, 2);
    // Within the uncovered tail the chain still catches edits.
    let path = env.log_path(&env.log_files()[2]);
    let mut l = lines(&path);
    l[1] = l[1].replace("req-12", "req-99");
    write_lines(&path, &l);
    assert!(matches!(env.verify(), Err(VerifyError::RecordEdited { seq: 12, .. })));
    std::mem::forget(log); // keep the tampered file as is (closing would seal it into a digest)
}

mod any_byte {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// In a fully digested trail, changing any one byte of any log or digest file is detected.
        #[test]
        fn any_changed_byte_is_detected(file_pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
            thread_local!(static TRAIL: (Env, Vec<std::path::PathBuf>) = {
                let (env, files, digests) = sealed_env();
                let mut paths: Vec<_> = files.iter().map(|f| env.log_path(f)).collect();
                paths.extend(digests.iter().map(|d| env.digest_path(d)));
                (env, paths)
            });
            TRAIL.with(|(env, paths)| {
                let path = file_pick.get(paths);
                let original = fs::read(path).unwrap();
                let mut changed = original.clone();
                let i = at.index(changed.len());
                changed[i] ^= xor;
                fs::write(path, &changed).unwrap();
                let result = env.verify();
                fs::write(path, &original).unwrap();
                prop_assert!(result.is_err(), "byte {} of {:?} changed undetected: {:?}", i, path, result);
                Ok(())
            })?;
        }
    }
}

/// The forger of issue 12: someone who can write the data directory (but has not the sealed
/// signing key) rewrites the chain without the records they want gone, re-signs every digest with
/// a key of their own and replaces the data directory's public key copy. Checked against that
/// copy, the forgery verifies (which is why the CLI says so loudly); checked against the key or
/// fingerprint the verifier kept, it fails.
#[test]
fn a_trail_re_signed_with_a_new_key_fails_against_the_verifiers_key() {
    let env = Env::new();
    two_digests(&env).close().unwrap();
    let real = env.public_key();
    install_public_key(&env.data(), &real).unwrap();
    let anchored = resolve_anchor(&env.data(), &TrustAnchor::Fingerprint(real.fingerprint())).unwrap();
    verify(&env.data(), &anchored.key).unwrap();

    // The forgery: a fresh chain holding only records 1-3 of the original, digests signed by a
    // new key, and the new key's PEM in place of the real one.
    let kept: Vec<String> = lines(&env.log_path(&env.log_files()[0]))[..3].to_vec();
    fs::remove_dir_all(env.audit()).unwrap();
    let forger = AuditSigner::generate().unwrap();
    let forged_key = forger.public_key();
    let log = AuditLog::open(env.config(), forger).unwrap();
    for line in &kept {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let record: AuditRecord = serde_json::from_value(v["record"].clone()).unwrap();
        log.append(record, Durability::Durable).unwrap();
    }
    log.close().unwrap();
    fs::write(public_key_path(&env.data()), forged_key.to_pem()).unwrap();

    let copy = resolve_anchor(&env.data(), &TrustAnchor::DataDirCopy).unwrap();
    assert!(!copy.anchored);
    assert_eq!(verify(&env.data(), &copy.key).unwrap().records, 3, "the data dir's own copy proves nothing");
    match verify(&env.data(), &real) {
        Err(VerifyError::DigestWrongKey { fingerprint, .. }) => assert_eq!(fingerprint, forged_key.fingerprint()),
        other => panic!("verify with the real key must fail: {other:?}"),
    }
    match resolve_anchor(&env.data(), &TrustAnchor::Fingerprint(real.fingerprint())) {
        Err(AnchorError::FingerprintMismatch { expected, found, .. }) => {
            assert_eq!((expected, found), (real.fingerprint(), forged_key.fingerprint()))
        }
        other => panic!("the replaced key file must not match the real fingerprint: {other:?}"),
    }
    // And the server's start-up check refuses the replaced copy instead of rewriting it.
    assert!(matches!(install_public_key(&env.data(), &real), Err(AnchorError::PublicKeyReplaced { .. })));
}
