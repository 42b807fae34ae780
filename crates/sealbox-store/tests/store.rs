//! Meta store and blob store behaviour that the S3 layer relies on.

use std::collections::HashSet;

use sealbox_store::*;

fn record(bucket: &str, key: &str, blob: &str, etag: &str) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        size: 1,
        etag: etag.into(),
        last_modified_ms: 1,
        content_type: None,
        content_encoding: None,
        content_disposition: None,
        content_language: None,
        cache_control: None,
        expires: None,
        website_redirect_location: None,
        user_metadata: Default::default(),
        checksums: Default::default(),
        checksum_type: None,
        parts: vec![StoredPart {
            blob: blob.into(),
            size: 1,
            etag: etag.into(),
            part_number: None,
            checksums: Default::default(),
            binding: None,
        }],
        sse: None,
        tags: Default::default(),
        row_mac: None,
    }
}

#[test]
fn keys_list_in_utf8_byte_order_with_prefix_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    // 'Z' < 'a' < 'é' (0xC3) < '中' (0xE4) in UTF-8 bytes; "a/" sorts after "a+" and before "a0".
    for k in ["中", "a", "é", "Z", "a/1", "a+", "a0"] {
        meta.put_object(&record("b", k, k, "e"), &WriteCondition::None).unwrap();
    }
    let keys: Vec<String> = meta.list_objects("b", b"", None, 100).unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, ["Z", "a", "a+", "a/1", "a0", "é", "中"]);
    let keys: Vec<String> =
        meta.list_objects("b", b"a", Some((b"a+", false)), 100).unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, ["a/1", "a0"]);
    let upper = prefix_upper_bound(b"a/").unwrap();
    let keys: Vec<String> =
        meta.list_objects("b", b"", Some((&upper, true)), 100).unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, ["a0", "é", "中"]);
}

#[test]
fn conditional_writes_and_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    assert!(meta.put_object(&record("b", "k", "blob1", "e1"), &WriteCondition::IfAbsent).unwrap().is_none());
    assert!(matches!(
        meta.put_object(&record("b", "k", "blob2", "e2"), &WriteCondition::IfAbsent),
        Err(StoreError::PreconditionFailed)
    ));
    assert!(matches!(
        meta.put_object(&record("b", "k", "blob2", "e2"), &WriteCondition::IfEtag("nope".into())),
        Err(StoreError::PreconditionFailed)
    ));
    let replaced =
        meta.put_object(&record("b", "k", "blob2", "e2"), &WriteCondition::IfEtag("e1".into())).unwrap().unwrap();
    assert_eq!(replaced.parts[0].blob, "blob1");
    assert!(matches!(
        meta.put_object(&record("nob", "k", "x", "e"), &WriteCondition::None),
        Err(StoreError::NoSuchBucket(_))
    ));
    assert!(matches!(meta.delete_bucket("b"), Err(StoreError::BucketNotEmpty(_))));
    meta.delete_object("b", "k").unwrap();
    meta.delete_bucket("b").unwrap();
    assert!(matches!(meta.create_bucket("b", 0), Ok(())));
    assert!(matches!(meta.create_bucket("b", 0), Err(StoreError::BucketExists(_))));
}

#[test]
fn completing_an_upload_is_atomic_and_returns_unused_parts() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    let up = UploadRecord {
        upload_id: "u1".into(),
        bucket: "b".into(),
        key: "k".into(),
        initiated_ms: 1,
        template: record("b", "k", "", ""),
    };
    meta.create_upload(&up).unwrap();
    for n in 1..=3u32 {
        let part = StoredPart {
            blob: format!("p{n}"),
            size: 5,
            etag: format!("e{n}"),
            part_number: Some(n),
            checksums: Default::default(),
            binding: None,
        };
        meta.put_part(&PartRecord { upload_id: "u1".into(), part_number: n, last_modified_ms: 1, part }).unwrap();
    }
    let mut obj = record("b", "k", "p1", "x-2");
    obj.parts.push(StoredPart {
        blob: "p3".into(),
        size: 5,
        etag: "e3".into(),
        part_number: Some(3),
        checksums: Default::default(),
        binding: None,
    });
    let (prev, unused) = meta.complete_upload("u1", &obj, &WriteCondition::None).unwrap();
    assert!(prev.is_none());
    assert_eq!(unused.iter().map(|p| p.part.blob.as_str()).collect::<Vec<_>>(), ["p2"]);
    assert!(meta.upload("u1").unwrap().is_none());
    assert!(matches!(meta.complete_upload("u1", &obj, &WriteCondition::None), Err(StoreError::NoSuchUpload(_))));
    let refs = meta.referenced_blobs().unwrap();
    assert_eq!(refs, HashSet::from(["p1".to_owned(), "p3".to_owned()]));
}

#[tokio::test]
async fn blobs_are_invisible_until_committed_and_orphans_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(dir.path()).unwrap();
    let mut w = blobs.create().await.unwrap();
    w.write(b"hello").await.unwrap();
    let kept = w.commit().await.unwrap();
    let mut w = blobs.create().await.unwrap();
    w.write(b"orphan").await.unwrap();
    let orphan = w.commit().await.unwrap();
    // An interrupted write: a temp file left behind (simulates a crash before commit).
    let mut w = blobs.create().await.unwrap();
    w.write(b"partial").await.unwrap();
    std::mem::forget(w);
    let (temps, orphans) = blobs.remove_orphans(&HashSet::from([kept.clone()])).unwrap();
    assert_eq!((temps, orphans), (1, 1));
    assert!(blobs.blob_path(&kept).exists());
    assert!(!blobs.blob_path(&orphan).exists());
    // A dropped, uncommitted writer removes its temp file itself.
    let mut w = blobs.create().await.unwrap();
    w.write(b"dropped").await.unwrap();
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}
