//! SSE-S3 data keys bound to an encryption context (S3 passes the object's identity): a blob
//! made for one object does not open for another.

use std::collections::BTreeMap;
use std::sync::Arc;

use sealbox_kms::{FakeClock, Kms, KmsConfig, KmsError, RootKey};

#[test]
fn sse_s3_blob_opens_only_under_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let kms = Kms::open(
        &dir.path().join("kms.db"),
        RootKey::from_bytes(&[7u8; 32]).unwrap(),
        Arc::new(FakeClock::at(1_800_000_000)),
        KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
    )
    .unwrap();
    let ctx = |arn: &str| BTreeMap::from([("aws:s3:arn".to_owned(), arn.to_owned())]);
    let a = kms.generate_sse_s3_key_for(&ctx("arn:aws:s3:::b/a")).unwrap();
    let opened = kms.decrypt_sse_s3_key_for(&a.ciphertext_blob, &ctx("arn:aws:s3:::b/a")).unwrap();
    assert_eq!(&opened.plaintext[..], &a.plaintext[..]);
    for wrong in [ctx("arn:aws:s3:::b/other"), BTreeMap::new()] {
        let result = kms.decrypt_sse_s3_key_for(&a.ciphertext_blob, &wrong);
        assert!(matches!(result, Err(KmsError::InvalidCiphertext(_))), "{:?}", result.err());
    }
    // Keys made before contexts were used keep opening with the empty context.
    let old = kms.generate_sse_s3_key().unwrap();
    assert_eq!(&kms.decrypt_sse_s3_key(&old.ciphertext_blob).unwrap().plaintext[..], &old.plaintext[..]);
}
