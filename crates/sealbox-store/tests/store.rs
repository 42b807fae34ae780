//! Meta store and blob store behaviour that the S3 layer relies on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sealbox_store::*;

fn record(bucket: &str, key: &str, blob: &str, etag: &str) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        size: 1,
        etag: etag.into(),
        last_modified_ms: 1,
        generation: 0,
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
        storage_class: None,
        restore: None,
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
        meta.record_blob_written(k).unwrap();
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
    for blob in ["blob1", "blob2", "x"] {
        meta.record_blob_written(blob).unwrap();
    }
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
    // If-Match against an object that was deleted since the request saw it: 409, not 412.
    meta.record_blob_written("blob3").unwrap();
    meta.delete_object("b", "k").unwrap();
    assert!(matches!(
        meta.put_object(&record("b", "k", "blob3", "e3"), &WriteCondition::IfEtag("e2".into())),
        Err(StoreError::ConditionalConflict)
    ));
    meta.put_object(&record("b", "k", "blob3", "e3"), &WriteCondition::None).unwrap();
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
        meta.record_blob_written(&part.blob).unwrap();
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
    let meta = Arc::new(MetaStore::open(&dir.path().join("m.db")).unwrap());
    let blobs = BlobStore::open(dir.path(), meta).unwrap();
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

// ---- blob life cycle: generations, deferred deletion, orphan sweep (issue 12 §4) ----

/// Every blob queued for deletion, whatever its age.
fn queued(meta: &MetaStore) -> HashSet<String> {
    meta.due_blob_deletions(i64::MAX, usize::MAX >> 1).unwrap().into_iter().collect()
}

fn written(meta: &MetaStore, blob: &str) {
    meta.record_blob_written(blob).unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn a_stale_metadata_update_never_writes_back_replaced_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    written(&meta, "old");
    meta.put_object(&record("b", "k", "old", "same-etag"), &WriteCondition::None).unwrap();
    // A rewrap (or any read-modify-write) reads the record...
    let mut stale = meta.object("b", "k").unwrap().unwrap();
    // ...an identical re-PUT replaces it: same ETag, new blob...
    written(&meta, "new");
    meta.put_object(&record("b", "k", "new", "same-etag"), &WriteCondition::None).unwrap();
    // ...and the stale write-back is refused (the old code compared ETags and wrote it).
    stale.sse = Some("rewrapped".into());
    assert!(!meta.update_object_doc(&stale).unwrap());
    let now = meta.object("b", "k").unwrap().unwrap();
    assert_eq!(now.parts[0].blob, "new");
    assert_eq!(queued(&meta), HashSet::from(["old".to_owned()]));
    // Re-read, it applies; the generation moves on.
    let mut fresh = now.clone();
    fresh.sse = Some("rewrapped".into());
    assert!(meta.update_object_doc(&fresh).unwrap());
    let after = meta.object("b", "k").unwrap().unwrap();
    assert_eq!(after.sse.as_deref(), Some("rewrapped"));
    assert!(after.generation > now.generation);
    // Deleted and re-created: generations are never reused, so the old read stays stale.
    meta.delete_object("b", "k").unwrap();
    written(&meta, "again");
    meta.put_object(&record("b", "k", "again", "same-etag"), &WriteCondition::None).unwrap();
    assert!(!meta.update_object_doc(&fresh).unwrap());
    assert!(!meta.update_object_doc(&after).unwrap());
}

#[test]
fn tags_apply_to_the_current_object_and_stale_updates_do_not_undo_them() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    assert!(!meta.set_object_tags("b", "k", &Default::default(), |_, _| Ok(())).unwrap());
    written(&meta, "a");
    meta.put_object(&record("b", "k", "a", "e"), &WriteCondition::None).unwrap();
    let before_tags = meta.object("b", "k").unwrap().unwrap();
    let tags = std::collections::BTreeMap::from([("t".to_owned(), "1".to_owned())]);
    assert!(meta.set_object_tags("b", "k", &tags, |_, _| Ok(())).unwrap());
    // A rewrap that read the record before the tags were set may not erase them.
    let mut stale = before_tags;
    stale.sse = Some("rewrapped".into());
    assert!(!meta.update_object_doc(&stale).unwrap());
    let cur = meta.object("b", "k").unwrap().unwrap();
    assert_eq!(cur.tags, tags);
    assert_eq!(cur.parts[0].blob, "a");
    assert!(queued(&meta).is_empty());
}

#[test]
fn a_metadata_update_cannot_change_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    written(&meta, "a");
    meta.put_object(&record("b", "k", "a", "e"), &WriteCondition::None).unwrap();
    let mut rec = meta.object("b", "k").unwrap().unwrap();
    rec.parts[0].blob = "elsewhere".into();
    assert!(matches!(meta.update_object_doc(&rec), Err(StoreError::Corrupt(_))));
    assert_eq!(meta.object("b", "k").unwrap().unwrap().parts[0].blob, "a");
}

#[test]
fn concurrent_overwrites_and_metadata_updates_never_leave_a_record_on_queued_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(MetaStore::open(&dir.path().join("m.db")).unwrap());
    meta.create_bucket("b", 0).unwrap();
    written(&meta, "v0");
    meta.put_object(&record("b", "k", "v0", "same"), &WriteCondition::None).unwrap();
    let writer = {
        let meta = meta.clone();
        std::thread::spawn(move || {
            for i in 1..=300 {
                let blob = format!("v{i}");
                written(&meta, &blob);
                meta.put_object(&record("b", "k", &blob, "same"), &WriteCondition::None).unwrap();
            }
        })
    };
    let updaters: Vec<_> = (0..2)
        .map(|n| {
            let meta = meta.clone();
            std::thread::spawn(move || {
                let mut applied = 0;
                for i in 0..300 {
                    let mut rec = meta.object("b", "k").unwrap().unwrap();
                    if n == 0 {
                        rec.sse = Some(format!("rewrap {i}"));
                        applied += usize::from(meta.update_object_doc(&rec).unwrap());
                    } else {
                        let tags = std::collections::BTreeMap::from([("i".to_owned(), i.to_string())]);
                        applied += usize::from(meta.set_object_tags("b", "k", &tags, |_, _| Ok(())).unwrap());
                    }
                }
                applied
            })
        })
        .collect();
    writer.join().unwrap();
    let applied: usize = updaters.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(applied > 0);
    let cur = meta.object("b", "k").unwrap().unwrap();
    assert_eq!(cur.parts[0].blob, "v300");
    let q = queued(&meta);
    assert_eq!(q.len(), 300, "every replaced blob is queued exactly once");
    assert!(!q.contains("v300"));
}

#[test]
fn every_record_change_queues_the_blobs_it_stops_naming_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    let part = |upload: &str, n: u32, blob: &str| {
        meta.record_blob_written(blob).unwrap();
        let part = StoredPart {
            blob: blob.into(),
            size: 5,
            etag: blob.into(),
            part_number: Some(n),
            checksums: Default::default(),
            binding: None,
        };
        meta.put_part(&PartRecord { upload_id: upload.into(), part_number: n, last_modified_ms: 1, part }).unwrap();
    };
    let upload = |id: &str, key: &str| {
        meta.create_upload(&UploadRecord {
            upload_id: id.into(),
            bucket: "b".into(),
            key: key.into(),
            initiated_ms: 1,
            template: record("b", key, "", ""),
        })
        .unwrap();
    };
    // DeleteObject.
    written(&meta, "deleted");
    meta.put_object(&record("b", "d", "deleted", "e"), &WriteCondition::None).unwrap();
    meta.delete_object("b", "d").unwrap();
    assert_eq!(queued(&meta), HashSet::from(["deleted".to_owned()]));
    // A part uploaded again, a part left out at Complete, and the object Complete replaces.
    written(&meta, "single");
    meta.put_object(&record("b", "m", "single", "e"), &WriteCondition::None).unwrap();
    upload("u1", "m");
    part("u1", 1, "p1");
    part("u1", 1, "p1-again");
    part("u1", 2, "p2-unused");
    let (_, unused) = meta.complete_upload("u1", &record("b", "m", "p1-again", "x-1"), &WriteCondition::None).unwrap();
    assert_eq!(unused.len(), 1);
    // AbortMultipartUpload, and DeleteBucket with an upload still open.
    upload("u2", "a");
    part("u2", 1, "aborted");
    meta.abort_upload("u2").unwrap();
    meta.delete_object("b", "m").unwrap();
    upload("u3", "z");
    part("u3", 1, "with-bucket");
    meta.delete_bucket("b").unwrap();
    let expected = ["deleted", "single", "p1", "p2-unused", "aborted", "p1-again", "with-bucket"];
    assert_eq!(queued(&meta), expected.iter().map(|s| s.to_string()).collect());
    assert_eq!(meta.blob_lifecycle_counts().unwrap(), (expected.len() as u64, 0));
}

#[test]
fn a_record_can_only_name_blobs_written_through_the_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    assert!(matches!(
        meta.put_object(&record("b", "k", "never-written", "e"), &WriteCondition::None),
        Err(StoreError::BlobNotWritten(_))
    ));
    assert!(meta.object("b", "k").unwrap().is_none());
}

#[tokio::test]
async fn replaced_blobs_stay_for_the_grace_period_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(MetaStore::open(&dir.path().join("m.db")).unwrap());
    meta.create_bucket("b", 0).unwrap();
    let blobs = BlobStore::open(dir.path(), meta.clone()).unwrap();
    let policy = BlobLifecycle::default();
    let mut ids = Vec::new();
    for body in [b"first", b"secnd"] {
        let mut w = blobs.create().await.unwrap();
        w.write(body).await.unwrap();
        let id = w.commit().await.unwrap();
        meta.put_object(&record("b", "k", &id, "e"), &WriteCondition::None).unwrap();
        ids.push(id);
    }
    // A reader that loaded the first record just before the overwrite can still open its blob.
    let t0 = now_ms();
    assert_eq!(blobs.collect_garbage(t0, &policy).unwrap(), GcReport::default());
    assert!(blobs.blob_path(&ids[0]).exists());
    let half = t0 + policy.grace.as_millis() as i64 / 2;
    assert_eq!(blobs.collect_garbage(half, &policy).unwrap().removed, 0);
    assert!(blobs.blob_path(&ids[0]).exists());
    // Past the grace period it goes; the live blob stays; the queue is empty.
    let later = t0 + policy.grace.as_millis() as i64 + 1000;
    assert_eq!(blobs.collect_garbage(later, &policy).unwrap(), GcReport { orphans: 0, removed: 1 });
    assert!(!blobs.blob_path(&ids[0]).exists());
    assert!(blobs.blob_path(&ids[1]).exists());
    assert!(queued(&meta).is_empty());
    // A blob already gone (removed before a crash, say) still leaves the queue.
    meta.delete_object("b", "k").unwrap();
    std::fs::remove_file(blobs.blob_path(&ids[1])).unwrap();
    assert_eq!(blobs.collect_garbage(later + 120_000, &policy).unwrap().removed, 1);
    assert!(queued(&meta).is_empty());
}

#[tokio::test]
async fn unclaimed_blobs_are_swept_by_age_without_a_scan_and_never_claimed_after() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(MetaStore::open(&dir.path().join("m.db")).unwrap());
    meta.create_bucket("b", 0).unwrap();
    let blobs = BlobStore::open(dir.path(), meta.clone()).unwrap();
    let policy = BlobLifecycle { grace: Duration::from_secs(60), orphan_age: Duration::from_secs(900) };
    // A committed object, and a blob whose request died before its record was committed.
    let mut w = blobs.create().await.unwrap();
    w.write(b"kept").await.unwrap();
    let kept = w.commit().await.unwrap();
    meta.put_object(&record("b", "k", &kept, "e"), &WriteCondition::None).unwrap();
    let mut w = blobs.create().await.unwrap();
    w.write(b"orphan").await.unwrap();
    let orphan = w.commit().await.unwrap();
    assert_eq!(meta.blob_lifecycle_counts().unwrap(), (0, 1));
    // A file nobody recorded (only a crash makes these): the periodic sweep does not look for
    // it, the start-up sweep does.
    let stray = blobs.blob_path("ffffffffffffffffffffffffffffffff");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"stray").unwrap();
    let t0 = now_ms();
    // Younger than the orphan age: it may still be committed.
    assert_eq!(blobs.collect_garbage(t0, &policy).unwrap(), GcReport::default());
    assert!(blobs.blob_path(&orphan).exists());
    // Older: queued (counted as an orphan), and removed once its grace period is over too.
    let old = t0 + policy.orphan_age.as_millis() as i64 + 1000;
    assert_eq!(blobs.collect_garbage(old, &policy).unwrap(), GcReport { orphans: 1, removed: 1 });
    assert!(!blobs.blob_path(&orphan).exists());
    assert!(blobs.blob_path(&kept).exists());
    assert!(stray.exists());
    // The late request's commit now fails instead of naming a removed blob.
    assert!(matches!(
        meta.put_object(&record("b", "late", &orphan, "e"), &WriteCondition::None),
        Err(StoreError::BlobNotWritten(_))
    ));
    // The start-up sweep removes the stray file and empties the queues.
    written(&meta, "intent-without-file");
    assert_eq!(blobs.sweep_at_start().unwrap(), (0, 1));
    assert!(!stray.exists());
    assert!(blobs.blob_path(&kept).exists());
    assert_eq!(meta.blob_lifecycle_counts().unwrap(), (0, 0));
}

#[test]
fn a_meta_db_from_before_generations_is_migrated_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    {
        // The objects table as it was before this change, with one object in it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE buckets (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, encryption TEXT,
                 policy TEXT, versioning TEXT);
             CREATE TABLE objects (bucket TEXT NOT NULL, key BLOB NOT NULL, size INTEGER NOT NULL,
                 etag TEXT NOT NULL, last_modified_ms INTEGER NOT NULL, doc TEXT NOT NULL,
                 PRIMARY KEY (bucket, key));
             INSERT INTO buckets (name, created_ms) VALUES ('b', 0);",
        )
        .unwrap();
        let doc = r#"{"parts":[{"blob":"legacy","size":1,"etag":"e"}],"sse":null,"tags":{}}"#;
        conn.execute(
            "INSERT INTO objects (bucket, key, size, etag, last_modified_ms, doc) VALUES ('b', ?1, 1, 'e', 5, ?2)",
            rusqlite::params![b"k".to_vec(), doc],
        )
        .unwrap();
    }
    let meta = MetaStore::open(&path).unwrap();
    let legacy = meta.object("b", "k").unwrap().unwrap();
    assert_eq!((legacy.generation, legacy.parts[0].blob.as_str()), (0, "legacy"));
    // Opening twice is a no-op; the row then behaves like any other.
    drop(meta);
    let meta = MetaStore::open(&path).unwrap();
    written(&meta, "new");
    meta.put_object(&record("b", "k", "new", "e"), &WriteCondition::None).unwrap();
    assert!(!meta.update_object_doc(&legacy).unwrap());
    assert!(meta.object("b", "k").unwrap().unwrap().generation > 0);
    assert_eq!(queued(&meta), HashSet::from(["legacy".to_owned()]));
}

#[test]
fn metadata_updates_keep_blobs_and_take_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    meta.create_bucket("b", 0).unwrap();
    meta.record_blob_written("blob1").unwrap();
    meta.put_object(&record("b", "k", "blob1", "e1"), &WriteCondition::None).unwrap();
    let before = meta.object("b", "k").unwrap().unwrap();
    let restore = RestoreState { completes_ms: 10, expires_ms: 20 };
    let (after, said) = meta
        .update_object_meta("b", "k", |_, next| {
            next.restore = Some(restore);
            Ok("done")
        })
        .unwrap()
        .unwrap();
    assert_eq!(said, "done");
    assert!(after.generation > before.generation);
    assert_eq!(meta.object("b", "k").unwrap().unwrap().restore, Some(restore));
    // A change that would swap the object's blobs is refused and changes nothing.
    let swapped = meta.update_object_meta("b", "k", |_, next| {
        next.parts[0].blob = "other".into();
        next.restore = None;
        Ok(())
    });
    assert!(matches!(swapped, Err(StoreError::Corrupt(_))));
    assert_eq!(meta.object("b", "k").unwrap().unwrap().restore, Some(restore));
    // The closure's error aborts the update.
    let refused = meta.update_object_meta("b", "k", |_, _| -> Result<()> { Err(StoreError::PreconditionFailed) });
    assert!(matches!(refused, Err(StoreError::PreconditionFailed)));
    assert!(meta.update_object_meta("b", "missing", |_, _| Ok(())).unwrap().is_none());
}
