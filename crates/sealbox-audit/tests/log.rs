//! The writer: chain and digest round trip, restart, crash repair, group commit, flushing,
//! rotation, redaction on disk, disk failure, lookup.

mod common;

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sealbox_audit::*;
use serde_json::json;

#[test]
fn chain_and_digests_round_trip() {
    let env = Env::new();
    let log = two_digests(&env);
    assert_eq!(log.stats().records, 13);
    log.close().unwrap();
    let report = env.verify().unwrap();
    assert_eq!(report.records, 13);
    assert_eq!(report.files, 3);
    assert_eq!(report.digests, 3);
    assert_eq!((report.covered_records, report.uncovered_records), (13, 0));
    assert_eq!(report.key_fingerprint, env.signer().fingerprint());

    // The lines are what the format doc says.
    let first = lines(&env.log_path(&env.log_files()[0]));
    let line: serde_json::Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(line["seq"], 1);
    assert_eq!(line["prev"], GENESIS_PREV);
    assert_eq!(line["record"]["eventTime"], "2026-11-24T06:00:01Z");
    let second: serde_json::Value = serde_json::from_str(&first[1]).unwrap();
    assert_eq!(second["prev"], line["hash"]);

    // Digests link up and carry the CloudTrail fields.
    let d: Vec<DigestDocument> = env
        .digest_files()
        .iter()
        .map(|n| serde_json::from_slice(&fs::read(env.digest_path(n)).unwrap()).unwrap())
        .collect();
    assert_eq!(d[0].previous_digest_file, None);
    assert_eq!(d[1].previous_digest_file.as_deref(), Some(env.digest_files()[0].as_str()));
    assert_eq!(d[0].digest_signature_algorithm, "Ed25519");
    assert_eq!(d[0].digest_end_time, "2026-11-24T06:01:00Z");
    assert_eq!(d[1].digest_start_time, d[0].digest_end_time);
    assert_eq!(d[0].log_files.len(), 1);
    assert_eq!((d[0].log_files[0].first_seq, d[0].log_files[0].last_seq), (1, 5));
    assert_eq!(d[0].oldest_event_time.as_deref(), Some("2026-11-24T06:00:01Z"));
    assert_eq!(d[0].newest_event_time.as_deref(), Some("2026-11-24T06:00:05Z"));
    assert_eq!(d[1].previous_digest_signature.as_deref().map(str::len), Some(128));
}

#[test]
fn empty_digests_are_written_and_chained() {
    let env = Env::new();
    let log = env.open();
    log.write_digest_now().unwrap();
    env.clock.advance(3600);
    log.write_digest_now().unwrap();
    log.close().unwrap();
    let report = env.verify().unwrap();
    assert_eq!((report.records, report.files, report.digests), (0, 0, 3));
}

#[test]
fn restart_continues_the_chain_and_the_digest_chain() {
    let env = Env::new();
    let log = env.open();
    for i in 1..=3 {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    log.close().unwrap();
    env.clock.advance(10);
    let log = env.open();
    for i in 4..=6 {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    log.close().unwrap();

    let files = env.log_files();
    assert_eq!(files.len(), 2);
    let last_of_first: serde_json::Value =
        serde_json::from_str(lines(&env.log_path(&files[0])).last().unwrap()).unwrap();
    let first_of_second: serde_json::Value = serde_json::from_str(&lines(&env.log_path(&files[1]))[0]).unwrap();
    assert_eq!(first_of_second["seq"], 4);
    assert_eq!(first_of_second["prev"], last_of_first["hash"]);
    let report = env.verify().unwrap();
    assert_eq!((report.records, report.files, report.digests, report.uncovered_records), (6, 2, 2, 0));
}

#[test]
fn restart_after_a_crash_covers_the_unsealed_file_and_repairs_a_torn_line() {
    let env = Env::new();
    let log = env.open();
    for i in 1..=4 {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    // A crash: no closing digest, and half a line at the end of the file. The writer of a
    // crashed process is gone; here it lives on (forgotten), so continue on a copy of the disk.
    std::mem::forget(log);
    let crashed = env;
    let env = Env::new();
    fs::create_dir_all(env.audit()).unwrap();
    fs::create_dir_all(env.tmp.path().join("keys")).unwrap();
    fs::copy(crashed.tmp.path().join("keys/audit-signing.pk8"), env.tmp.path().join("keys/audit-signing.pk8")).unwrap();
    for name in crashed.log_files() {
        fs::copy(crashed.log_path(&name), env.log_path(&name)).unwrap();
    }
    let file = env.log_path(&env.log_files()[0]);
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend_from_slice(br#"{"seq":5,"prev":"ab"#);
    fs::write(&file, &bytes).unwrap();
    let report = env.verify().unwrap();
    assert_eq!(report.records, 4);
    assert_eq!(report.torn_tail.map(|t| t.line), Some(5));

    let log = env.open();
    log.append(sample(6), Durability::Durable).unwrap();
    log.close().unwrap();
    let report = env.verify().unwrap();
    // 4 records, the repair notice, and one more.
    assert_eq!((report.records, report.uncovered_records), (6, 0));
    let repaired =
        lookup(&env.data(), &LookupFilter { event_name: Some("AuditLogRepaired".into()), ..Default::default() })
            .unwrap();
    assert_eq!(repaired.len(), 1);
    let details = repaired[0].service_event_details.clone().unwrap();
    assert_eq!(details["discardedBytes"], 19);
    assert_eq!(repaired[0].event_source, "sealbox.local");
    assert_eq!(repaired[0].event_type, EventType::AwsServiceEvent);
}

#[test]
fn a_second_writer_is_refused() {
    let env = Env::new();
    let log = env.open();
    assert!(matches!(AuditLog::open(env.config(), env.signer()), Err(AuditError::Locked { .. })));
    log.close().unwrap();
    env.open().close().unwrap();
}

#[test]
fn log_shorter_than_its_digest_is_refused_at_open() {
    let env = Env::new();
    two_digests(&env).close().unwrap();
    let last = env.log_path(env.log_files().last().unwrap());
    fs::remove_file(last).unwrap();
    match AuditLog::open(env.config(), env.signer()) {
        Err(AuditError::ChainBehindDigest { digest_seq: 13, log_seq: 10 }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn concurrent_durable_appends_group_commit_and_keep_one_chain() {
    const THREADS: u64 = 8;
    const EACH: u64 = 250;
    let env = Env::new();
    let log = Arc::new(env.open());
    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    log.append(sample(t * 1000 + i), Durability::Durable).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    let stats = log.stats();
    let total = THREADS * EACH;
    assert_eq!(stats.records, total);
    assert!(stats.fsyncs < total / 2, "expected group commit: {} fsyncs for {total} records", stats.fsyncs);
    eprintln!(
        "{total} durable appends from {THREADS} threads in {elapsed:?} ({:.0}/s) with {} fsyncs ({:.1} records per fsync)",
        total as f64 / elapsed.as_secs_f64(),
        stats.fsyncs,
        total as f64 / stats.fsyncs as f64
    );
    Arc::try_unwrap(log).unwrap().close().unwrap();
    let report = env.verify().unwrap();
    assert_eq!(report.records, total);
}

#[test]
fn buffered_records_are_synced_by_the_flusher() {
    let env = Env::new();
    let mut config = env.config();
    config.flush_interval = Duration::from_millis(50);
    let log = AuditLog::open(config, env.signer()).unwrap();
    for i in 1..=20 {
        log.append(sample(i).as_data_event(), Durability::Buffered).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.stats().fsyncs == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(log.stats().fsyncs >= 1);
    // Readable (handed to the OS) already.
    assert_eq!(lines(&env.log_path(&env.log_files()[0])).len(), 20);
    log.close().unwrap();
    assert_eq!(env.verify().unwrap().records, 20);
}

#[test]
fn periodic_digests_are_written_by_the_writer() {
    let env = Env::new();
    let mut config = env.config();
    config.digest_interval = Duration::from_millis(50);
    let log = AuditLog::open(config, env.signer()).unwrap();
    log.append(sample(1), Durability::Durable).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.stats().digests < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(log.stats().digests >= 2);
    let report = env.verify().unwrap();
    assert_eq!(report.uncovered_records, 0);
    log.close().unwrap();
}

#[test]
fn files_rotate_by_size_and_verify_across_boundaries() {
    let env = Env::new();
    let mut config = env.config();
    config.max_file_bytes = 4_000;
    let log = AuditLog::open(config, env.signer()).unwrap();
    for i in 1..=40 {
        log.append(sample(i), Durability::Buffered).unwrap();
    }
    log.close().unwrap();
    let files = env.log_files();
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        assert!(fs::metadata(env.log_path(f)).unwrap().len() <= 4_000);
    }
    let report = env.verify().unwrap();
    assert_eq!((report.records, report.files, report.digests), (40, files.len(), 1));
}

#[test]
fn secrets_never_reach_the_disk() {
    let env = Env::new();
    let log = env.open();
    let record = sample(1)
        .with_request_parameters(json!({
            "keyId": "k1",
            "Plaintext": "UExBSU5URVhUU0VDUkVU",
            "CiphertextBlob": "QkxPQkJMT0I=",
            "SSECustomerKey": "c3NlLWMta2V5LXNlY3JldA==",
            "credentials": {"SecretAccessKey": "wJalrXUtnFEMIK7MDENG", "password": "hunter2hunter2"}
        }))
        .with_response_elements(json!({"plaintext": "UExBSU5URVhUU0VDUkVU"}));
    log.append(record, Durability::Durable).unwrap();
    log.close().unwrap();
    let mut all = String::new();
    for f in env.log_files() {
        all.push_str(&fs::read_to_string(env.log_path(&f)).unwrap());
    }
    for secret in
        ["UExBSU5URVhUU0VDUkVU", "QkxPQkJMT0I=", "c3NlLWMta2V5LXNlY3JldA==", "wJalrXUtnFEMIK7MDENG", "hunter2hunter2"]
    {
        assert!(!all.contains(secret), "{secret} was written");
    }
    assert!(all.contains(HIDDEN));
    assert_eq!(env.verify().unwrap().records, 1);
}

#[test]
fn disk_failure_fails_appends_without_hanging() {
    let env = Env::new();
    let log = env.open();
    // The writer will create this name for record 1 (fake clock): make it unusable.
    let name = log_file_name(time::OffsetDateTime::from_unix_timestamp(T0).unwrap(), 1);
    std::os::unix::fs::symlink("/dev/full", env.log_path(&name)).unwrap();
    let err = log.append(sample(1), Durability::Durable).unwrap_err();
    assert!(matches!(err, AuditError::Io { .. }), "{err:?}");
    assert!(log.has_failed());
    assert!(log.append(sample(2), Durability::Buffered).is_err());
    assert!(log.append(sample(3), Durability::Durable).is_err());
    assert!(log.close().is_err());
}

#[test]
fn append_async_resolves_after_the_sync() {
    let env = Env::new();
    let log = env.open();
    let fut = log.append_async(sample(1), Durability::Durable);
    block_on(fut).unwrap();
    assert_eq!(log.stats().fsyncs, 1);
    log.close().unwrap();
    assert_eq!(env.verify().unwrap().records, 1);
}

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn lookup_filters_newest_first() {
    let env = Env::new();
    let log = env.open();
    let bob = principal("bob");
    let records = vec![
        sample(1),
        AuditRecord::api_call(&bob, &ctx(T0 + 2, "r2"), EventSource::S3, "PutObject")
            .with_request_parameters(json!({"bucketName": "photos", "key": "a.jpg"})),
        AuditRecord::kms_call_via_s3(&bob, &ctx(T0 + 3, "r3"), "GenerateDataKey", &key_arn("k2")),
        AuditRecord::automatic_rotation("000000000000", "us-east-1", ctx(T0 + 4, "").time, &key_arn("k2"), "k2"),
        AuditRecord::denied(&bob, &ctx(T0 + 5, "r5"), EventSource::S3, "GetObject", "Access Denied")
            .with_request_parameters(json!({"bucketName": "secret", "key": "x"})),
        sample(6),
    ];
    for (i, r) in records.into_iter().enumerate() {
        log.append(r, Durability::Durable).unwrap();
        if i == 2 {
            log.write_digest_now().unwrap(); // spread over two files
        }
    }
    let find = |f: LookupFilter| -> Vec<String> {
        lookup(&env.data(), &f)
            .unwrap()
            .into_iter()
            .map(|r| format!("{}@{}", r.event_name, r.event_time.unix_timestamp() - T0))
            .collect()
    };
    assert_eq!(
        find(LookupFilter::default()),
        ["Decrypt@6", "GetObject@5", "RotateKey@4", "GenerateDataKey@3", "PutObject@2", "Decrypt@1"]
    );
    assert_eq!(find(LookupFilter { max_results: Some(2), ..Default::default() }), ["Decrypt@6", "GetObject@5"]);
    assert_eq!(
        find(LookupFilter { username: Some("bob".into()), ..Default::default() }),
        ["GetObject@5", "GenerateDataKey@3", "PutObject@2"]
    );
    assert_eq!(
        find(LookupFilter { access_key_id: Some("AKIAALICE".into()), ..Default::default() }),
        ["Decrypt@6", "Decrypt@1"]
    );
    assert_eq!(find(LookupFilter { event_name: Some("RotateKey".into()), ..Default::default() }), ["RotateKey@4"]);
    assert_eq!(
        find(LookupFilter { resource: Some("k2".into()), ..Default::default() }),
        ["RotateKey@4", "GenerateDataKey@3"]
    );
    assert_eq!(find(LookupFilter { resource: Some(key_arn("k1")), ..Default::default() }), ["Decrypt@6", "Decrypt@1"]);
    assert_eq!(find(LookupFilter { bucket: Some("photos".into()), ..Default::default() }), ["PutObject@2"]);
    assert_eq!(
        find(LookupFilter { event_source: Some("s3.amazonaws.com".into()), ..Default::default() }),
        ["GetObject@5", "PutObject@2"]
    );
    let t = |s: i64| Some(time::OffsetDateTime::from_unix_timestamp(T0 + s).unwrap());
    assert_eq!(
        find(LookupFilter { start_time: t(2), end_time: t(4), ..Default::default() }),
        ["RotateKey@4", "GenerateDataKey@3", "PutObject@2"]
    );
    let denied = lookup(&env.data(), &LookupFilter { bucket: Some("secret".into()), ..Default::default() }).unwrap();
    assert_eq!(denied[0].error_code.as_deref(), Some("AccessDenied"));
    log.close().unwrap();
}

/// `SEALBOX_AUDIT_SAMPLE_DIR=/tmp/x cargo test -p sealbox-audit --test log -- --ignored`: leaves
/// a small audit trail and its key there, for trying `openssl` verification from the docs by hand.
#[test]
#[ignore]
fn write_sample_audit_dir() {
    let Ok(dir) = std::env::var("SEALBOX_AUDIT_SAMPLE_DIR") else { return };
    let dir = std::path::PathBuf::from(dir);
    let signer = AuditSigner::load_or_generate(&dir.join("audit-signing.pk8")).unwrap();
    fs::write(dir.join("audit-public.pem"), signer.public_key_pem()).unwrap();
    let log = AuditLog::open(AuditConfig::new(dir.join("data")), signer).unwrap();
    for i in 1..=3 {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    log.write_digest_now().unwrap();
    log.append(sample(4), Durability::Durable).unwrap();
    log.close().unwrap();
}

/// Numbers for docs/audit-format.md: `cargo test -p sealbox-audit --test log throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let env = Env::new();
    let log = Arc::new(env.open());
    let n = 2_000u64;
    let t = Instant::now();
    for i in 0..n {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    let single = t.elapsed();
    let before = log.stats().fsyncs;
    let records: Vec<AuditRecord> = (0..50 * n).map(|i| sample(i).as_data_event()).collect();
    let t = Instant::now();
    for r in records {
        log.append(r, Durability::Buffered).unwrap();
    }
    log.flush().unwrap();
    let buffered = t.elapsed();
    let fsyncs = log.stats().fsyncs - before;
    for threads in [16u64, 64] {
        let before = log.stats().fsyncs;
        let t = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|k| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..n / 4 {
                        log.append(sample(k * 100_000 + i), Durability::Durable).unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let e = t.elapsed();
        let total = threads * (n / 4);
        let f = log.stats().fsyncs - before;
        eprintln!(
            "durable, {threads} threads: {:.0}/s, {:.1} records per fsync",
            total as f64 / e.as_secs_f64(),
            total as f64 / f as f64
        );
    }
    eprintln!("durable, 1 thread: {:.0}/s", n as f64 / single.as_secs_f64());
    eprintln!("buffered, 1 thread: {:.0}/s ({fsyncs} fsyncs)", (50 * n) as f64 / buffered.as_secs_f64());
    let t = Instant::now();
    Arc::try_unwrap(log).unwrap().close().unwrap();
    let report = env.verify().unwrap();
    eprintln!("close + verify of {} records: {:?}", report.records, t.elapsed());
    let t = Instant::now();
    let found = lookup(&env.data(), &LookupFilter { username: Some("nobody".into()), ..Default::default() }).unwrap();
    eprintln!("lookup scanning all {} records: {:?} ({})", report.records, t.elapsed(), found.len());
}

/// Polls `cond` (the writer's retry timer runs on its own thread) with a generous deadline; the
/// assertion is on the outcome, never on how long it took.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn recovered_records(env: &Env) -> Vec<AuditRecord> {
    lookup(&env.data(), &LookupFilter { event_name: Some(RECOVERED_EVENT.into()), ..Default::default() }).unwrap()
}

#[test]
fn a_failed_writer_refuses_until_the_disk_recovers_then_continues_one_chain() {
    let env = Env::new();
    let mut config = env.config();
    config.retry_interval = Duration::from_millis(10);
    let log = AuditLog::open(config, env.signer()).unwrap();
    log.append(sample(1), Durability::Durable).unwrap();
    log.write_digest_now().unwrap();
    // The next file the writer creates (fake clock: a known name) cannot be created.
    let blocked = env.log_path(&log_file_name(time::OffsetDateTime::from_unix_timestamp(T0).unwrap(), 2));
    fs::create_dir(&blocked).unwrap();
    assert!(log.append(sample(2), Durability::Durable).is_err(), "no durable record, no success");
    assert!(log.has_failed());
    let reason = log.failure().expect("the reason is kept for readiness checks").to_string();
    assert!(reason.contains(&blocked.display().to_string()), "{reason}");
    // While failed nothing is accepted, and retries do not recover by themselves.
    assert!(log.append(sample(3), Durability::Buffered).is_err());
    std::thread::sleep(Duration::from_millis(50));
    assert!(log.has_failed(), "the disk is still broken");
    // The disk recovers: so does the writer, without a restart.
    fs::remove_dir(&blocked).unwrap();
    eventually("writer recovery", || !log.has_failed());
    assert!(log.failure().is_none());
    log.append(sample(4), Durability::Durable).unwrap();
    log.close().unwrap();
    let report = env.verify().unwrap();
    assert_eq!((report.records, report.uncovered_records), (3, 0), "1, the recovery record, 4: one chain, all signed");
    let rec = recovered_records(&env);
    assert_eq!(rec.len(), 1);
    let details = rec[0].service_event_details.as_ref().unwrap();
    assert_eq!(details["discardedRecords"], 0);
    assert!(details["error"].as_str().unwrap().contains("audit I/O failed"));
}

/// A real full disk (tmpfs): a write fails half way through a file; recovery cuts the file back
/// to the last fsync, the chain continues from there, and the trail verifies. Needs root for the
/// mount; skipped (with a message) without it.
#[test]
fn a_full_disk_mid_file_is_cut_back_to_the_last_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("vol");
    fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("SKIPPED a_full_disk_mid_file_is_cut_back_to_the_last_fsync: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).output();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let data = mnt.join("data");
    let mut config = AuditConfig::new(&data);
    config.retry_interval = Duration::from_millis(10);
    let signer = AuditSigner::generate().unwrap();
    let key = signer.public_key();
    let log = AuditLog::open(config, signer).unwrap();
    log.append(sample(1), Durability::Durable).unwrap();
    // Fill the volume to the last byte.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // A buffered record is accepted (queued), then its write fails: the writer fails.
    let big = sample(2).with_request_parameters(json!({"padding": "x".repeat(64 << 10)}));
    log.append(big, Durability::Buffered).unwrap();
    eventually("the write failure", || log.has_failed());
    assert!(log.append(sample(3), Durability::Durable).is_err());
    fs::remove_file(&filler).unwrap();
    eventually("writer recovery", || !log.has_failed());
    log.append(sample(4), Durability::Durable).unwrap();
    log.close().unwrap();
    let report = verify(&data, &key).unwrap();
    assert_eq!(report.records, 3, "record 1, the recovery record, record 4");
    let rec = lookup(&data, &LookupFilter { event_name: Some(RECOVERED_EVENT.into()), ..Default::default() }).unwrap();
    let details = rec[0].service_event_details.as_ref().unwrap();
    assert_eq!(details["discardedRecords"], 1, "the buffered record that never reached the disk");
    assert_eq!(details["firstDiscardedSeq"], 2);
    assert!(details["truncatedAtByte"].as_u64().unwrap() > 0);
}

#[test]
fn floods_are_coalesced_by_the_writer_and_every_request_is_counted() {
    let env = Env::new();
    let log = env.open();
    let key = FloodKey {
        source_ip: "192.0.2.7".into(),
        error_code: "SignatureDoesNotMatch".into(),
        access_key_id: "AKIAALICE".into(),
    };
    let mut recorded = 0u64;
    for i in 0..2000 {
        if log.admit(&key) == Admission::Record {
            let rec = AuditRecord::unauthenticated(
                "000000000000",
                &ctx(T0, &format!("bad-{i}")),
                EventSource::S3,
                "GetObject",
                Some("AKIAALICE"),
                "SignatureDoesNotMatch",
                "bad signature",
            );
            log.append(rec, Durability::Buffered).unwrap();
            recorded += 1;
        }
    }
    assert_eq!(recorded, FloodLimits::default().per_key as u64);
    // Shutdown writes every pending count.
    log.close().unwrap();
    let all = lookup(&env.data(), &LookupFilter { max_results: Some(10_000), ..Default::default() }).unwrap();
    let summaries: Vec<&AuditRecord> = all.iter().filter(|r| r.event_name == SUPPRESSED_EVENT).collect();
    assert_eq!(summaries.len(), 1);
    let s = summaries[0];
    assert_eq!(s.source_ip_address, "192.0.2.7");
    assert_eq!(s.error_code.as_deref(), Some("SignatureDoesNotMatch"));
    assert_eq!(s.user_identity.access_key_id.as_deref(), Some("AKIAALICE"));
    let counted = s.service_event_details.as_ref().unwrap()["suppressedCount"].as_u64().unwrap();
    assert_eq!(recorded + counted, 2000);
    let individual = all.iter().filter(|r| r.event_name == "GetObject").count() as u64;
    assert_eq!(individual, recorded);
    env.verify().unwrap();
}
