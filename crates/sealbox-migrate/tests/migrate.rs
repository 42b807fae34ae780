//! `sealbox migrate` against real sealbox servers on 127.0.0.1.

mod common;

use std::path::Path;

use aws_sdk_s3::types::{ServerSideEncryption, Tag, Tagging};
use common::*;

/// A folder with nested small files and one file big enough to go multipart (8 MiB parts).
fn make_folder(root: &Path, small: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for i in 0..small {
        let rel = match i % 3 {
            0 => format!("a/{i}.json"),
            1 => format!("a/b/{i}.txt"),
            _ => format!("top-{i}.bin"),
        };
        files.push((rel, bytes(i as u64, 100 + i * 37)));
    }
    files.push(("big/blob.bin".into(), bytes(999, 17 * 1024 * 1024 + 123)));
    files.push(("empty.txt".into(), Vec::new()));
    for (rel, data) in &files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_to_sealbox_copies_verifies_and_skips_on_rerun() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let files = make_folder(&src, 12);
    let c = server.client();
    create_bucket(&c, "dest").await;
    let creds = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("report.json");
    let args = [
        "copy",
        src.to_str().unwrap(),
        "s3://dest/imported",
        "--dst-endpoint",
        &server.endpoint,
        "--dst-profile",
        "sb",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--multipart-threshold-mib",
        "8",
        "--part-size-mib",
        "8",
        "--parallel",
        "4",
    ];
    assert_eq!(migrate(&args).await.unwrap(), 0);
    let mut keys = list(&c, "dest").await;
    keys.sort();
    let mut want: Vec<String> = files.iter().map(|(r, _)| format!("imported/{r}")).collect();
    want.sort();
    assert_eq!(keys, want);
    for (rel, data) in &files {
        assert_eq!(&get(&c, "dest", &format!("imported/{rel}")).await, data, "{rel}");
    }
    let head = c.head_object().bucket("dest").key("imported/a/0.json").send().await.unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    let r = read_json(&report);
    assert_eq!(r["summary"]["copied"], files.len());
    assert_eq!(r["summary"]["failed"], 0);
    assert_eq!(r["all_verified"], true);

    // Idempotent re-run: everything is already verified at the destination.
    assert_eq!(migrate(&args).await.unwrap(), 0);
    let r = read_json(&report);
    assert_eq!(r["summary"]["copied"], 0);
    assert_eq!(r["summary"]["skipped"], files.len());

    // A changed source file is copied again; only that one.
    std::fs::write(src.join("a/0.json"), b"{\"changed\":true}").unwrap();
    assert_eq!(migrate(&args).await.unwrap(), 0);
    let r = read_json(&report);
    assert_eq!(r["summary"]["copied"], 1);
    assert_eq!(get(&c, "dest", "imported/a/0.json").await, b"{\"changed\":true}");

    // Full verification reads everything back.
    let mut full = args.to_vec();
    full.extend(["--verify", "full"]);
    std::fs::remove_file(&cp).unwrap();
    assert_eq!(migrate(&full).await.unwrap(), 0);
    assert_eq!(read_json(&report)["summary"]["copied"], files.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealbox_to_sealbox_keeps_headers_and_asks_for_sse() {
    let a = TestServer::start();
    let b = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let (ca, cb) = (a.client(), b.client());
    create_bucket(&ca, "old").await;
    create_bucket(&cb, "new").await;
    ca.put_object()
        .bucket("old")
        .key("cfg/app.yaml")
        .body(b"port: 1".to_vec().into())
        .content_type("application/yaml")
        .cache_control("max-age=60")
        .content_disposition("attachment")
        .metadata("owner", "team-a")
        .send()
        .await
        .unwrap();
    let tagged = ca
        .put_object_tagging()
        .bucket("old")
        .key("cfg/app.yaml")
        .tagging(
            Tagging::builder().tag_set(Tag::builder().key("class").value("secret").build().unwrap()).build().unwrap(),
        )
        .send()
        .await
        .is_ok();
    for i in 0..10 {
        put(&ca, "old", &format!("data/{i}"), bytes(i, 5000)).await;
    }
    let creds = credentials_file(work.path(), &[("a", &a), ("b", &b)]);
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("r.json");
    let code = migrate(&[
        "copy",
        "s3://old",
        "s3://new",
        "--src-endpoint",
        &a.endpoint,
        "--src-profile",
        "a",
        "--dst-endpoint",
        &b.endpoint,
        "--dst-profile",
        "b",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--sse",
        "AES256",
    ])
    .await
    .unwrap();
    assert_eq!(code, 0, "{}", std::fs::read_to_string(&report).unwrap_or_default());
    assert_eq!(list(&cb, "new").await.len(), 11);
    let h = cb.head_object().bucket("new").key("cfg/app.yaml").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/yaml"));
    assert_eq!(h.cache_control(), Some("max-age=60"));
    assert_eq!(h.content_disposition(), Some("attachment"));
    assert_eq!(h.metadata().and_then(|m| m.get("owner")).map(String::as_str), Some("team-a"));
    match h.server_side_encryption() {
        Some(sse) => assert_eq!(sse, &ServerSideEncryption::Aes256),
        None => eprintln!("note: this sealbox does not echo x-amz-server-side-encryption on HEAD yet"),
    }
    if tagged {
        let t = cb.get_object_tagging().bucket("new").key("cfg/app.yaml").send().await.unwrap();
        assert_eq!(t.tag_set().first().map(|t| t.value()), Some("secret"));
    }
    assert_eq!(get(&cb, "new", "data/3").await, bytes(3, 5000));

    // SSE-KMS with a bucket key, when this server stores SSE-KMS objects.
    match b.supports_sse_kms("new").await {
        Err(why) => eprintln!("SKIP SSE-KMS copy: {why}"),
        Ok(()) => {
            let kms_cp = work.path().join("kms.sqlite");
            let code = migrate(&[
                "copy",
                "s3://old/data",
                "s3://new/kms",
                "--src-endpoint",
                &a.endpoint,
                "--src-profile",
                "a",
                "--dst-endpoint",
                &b.endpoint,
                "--dst-profile",
                "b",
                "--credentials-file",
                creds.to_str().unwrap(),
                "--checkpoint",
                kms_cp.to_str().unwrap(),
                "--sse",
                "aws:kms",
                "--bucket-key",
            ])
            .await
            .unwrap();
            assert_eq!(code, 0);
            let h = cb.head_object().bucket("new").key("kms/4").send().await.unwrap();
            assert_eq!(h.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
            assert_eq!(h.bucket_key_enabled(), Some(true));
            assert_eq!(get(&cb, "new", "kms/4").await, bytes(4, 5000));
        }
    }

    // Decommission of the S3 source deletes the objects and the then-empty bucket.
    let dec = [
        "decommission",
        "s3://old",
        "--report",
        report.to_str().unwrap(),
        "--yes",
        "--src-endpoint",
        &a.endpoint,
        "--src-profile",
        "a",
        "--dst-endpoint",
        &b.endpoint,
        "--dst-profile",
        "b",
        "--credentials-file",
        creds.to_str().unwrap(),
    ];
    assert_eq!(migrate(&dec).await.unwrap(), 0);
    assert!(ca.head_bucket().bucket("old").send().await.is_err(), "source bucket should be gone");
    assert!(list(&cb, "new").await.len() >= 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_copy_resumes_without_duplicates() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    for i in 0..60 {
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join(format!("f{i:03}")), bytes(i, 2000)).unwrap();
    }
    let c = server.client();
    create_bucket(&c, "dest").await;
    let creds = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("r.json");
    let base = vec![
        "copy".to_owned(),
        src.to_str().unwrap().to_owned(),
        "s3://dest".into(),
        "--dst-endpoint".into(),
        server.endpoint.clone(),
        "--dst-profile".into(),
        "sb".into(),
        "--credentials-file".into(),
        creds.to_str().unwrap().into(),
        "--checkpoint".into(),
        cp.to_str().unwrap().into(),
        "--report".into(),
        report.to_str().unwrap().into(),
        "--parallel".into(),
        "2".into(),
    ];
    // First run: throttled to 20 objects/s and killed after ~1 s.
    let mut slow = base.clone();
    slow.extend(["--rate".into(), "20".into()]);
    let slow_cmd = parse(&slow.iter().map(String::as_str).collect::<Vec<_>>());
    let task = tokio::spawn(sealbox_migrate::run(slow_cmd));
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    task.abort();
    let _ = task.await;
    assert!(!report.exists(), "a killed run writes no report");
    let done_before: i64 =
        rusqlite::Connection::open(&cp).unwrap().query_row("SELECT count(*) FROM objects", [], |r| r.get(0)).unwrap();
    assert!(done_before > 5 && done_before < 60, "killed mid-way: {done_before} done");

    let mut resume = base.clone();
    resume.push("--resume".into());
    assert_eq!(migrate(&resume.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap(), 0);
    let r = read_json(&report);
    // Everything verified before the kill is skipped, everything else copied once.
    assert_eq!(r["summary"]["skipped"].as_i64().unwrap(), done_before);
    assert_eq!(r["summary"]["copied"].as_i64().unwrap(), 60 - done_before);
    assert_eq!(r["summary"]["failed"], 0);
    let keys = list(&c, "dest").await;
    assert_eq!(keys.len(), 60);
    for i in 0..60u64 {
        assert_eq!(get(&c, "dest", &format!("f{i:03}")).await, bytes(i, 2000));
    }
    let uploads = c.list_multipart_uploads().bucket("dest").send().await.unwrap();
    assert!(uploads.uploads().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decommission_refuses_unless_everything_still_verifies() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    for i in 0..8 {
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join(format!("d/{i}")), bytes(i, 300)).unwrap();
    }
    let c = server.client();
    create_bucket(&c, "dest").await;
    let creds = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("r.json");
    let src_s = src.to_str().unwrap();
    let copy = [
        "copy",
        src_s,
        "s3://dest",
        "--dst-endpoint",
        &server.endpoint,
        "--dst-profile",
        "sb",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    assert_eq!(migrate(&copy).await.unwrap(), 0);
    let dec = |report: &Path| {
        vec![
            "decommission".to_owned(),
            src_s.to_owned(),
            "--report".into(),
            report.to_str().unwrap().into(),
            "--yes".into(),
            "--dst-endpoint".into(),
            server.endpoint.clone(),
            "--dst-profile".into(),
            "sb".into(),
            "--credentials-file".into(),
            creds.to_str().unwrap().into(),
        ]
    };
    let run_dec =
        |args: Vec<String>| async move { migrate(&args.iter().map(String::as_str).collect::<Vec<_>>()).await };

    // A destination object deleted after the copy: refused, nothing deleted.
    c.delete_object().bucket("dest").key("d/3").send().await.unwrap();
    let err = run_dec(dec(&report)).await.unwrap_err().to_string();
    assert!(err.contains("refused") && err.contains("d/3"), "{err}");
    assert_eq!(std::fs::read_dir(src.join("d")).unwrap().count(), 8);

    // A corrupted report: refused.
    let bad = work.path().join("bad.json");
    std::fs::write(&bad, b"{\"format\":1,").unwrap();
    assert!(run_dec(dec(&bad)).await.unwrap_err().to_string().contains("refused"));

    // A report with a failed object: refused.
    let mut v = read_json(&report);
    v["objects"][0]["outcome"] = "failed".into();
    v["all_verified"] = false.into();
    let failed = work.path().join("failed.json");
    std::fs::write(&failed, serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(run_dec(dec(&failed)).await.unwrap_err().to_string().contains("not verified"));
    assert_eq!(std::fs::read_dir(src.join("d")).unwrap().count(), 8);

    // Re-run the copy (restores d/3), then decommission goes through.
    assert_eq!(migrate(&copy).await.unwrap(), 0);
    assert_eq!(read_json(&report)["summary"]["copied"], 1);
    assert_eq!(run_dec(dec(&report)).await.unwrap(), 0);
    assert!(!src.join("d").exists(), "source files and emptied folders are removed");
    assert_eq!(list(&c, "dest").await.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_unreachable_bad_credentials_and_missing_buckets() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("x"), b"x").unwrap();
    let good = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("cp.sqlite");
    create_bucket(&server.client(), "dest").await;
    let run = |endpoint: String, dst: &'static str, creds: std::path::PathBuf| {
        let cp = cp.clone();
        let src = src.clone();
        async move {
            migrate(&[
                "copy",
                src.to_str().unwrap(),
                dst,
                "--dst-endpoint",
                &endpoint,
                "--dst-profile",
                "sb",
                "--credentials-file",
                creds.to_str().unwrap(),
                "--checkpoint",
                cp.to_str().unwrap(),
            ])
            .await
        }
    };
    // Nothing listens on a port we just freed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = run(format!("http://127.0.0.1:{closed}"), "s3://dest", good.clone()).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach the destination endpoint"), "{err}");

    let bad_dir = work.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join("credentials");
    std::fs::write(&bad, "[sb]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = nope\n").unwrap();
    let err = run(server.endpoint.clone(), "s3://dest", bad).await.unwrap_err().to_string();
    assert!(err.contains("rejected the credentials (InvalidAccessKeyId)"), "{err}");

    let err = run(server.endpoint.clone(), "s3://no-such-bucket", good.clone()).await.unwrap_err().to_string();
    assert!(err.contains("no-such-bucket does not exist"), "{err}");

    let err = migrate(&["rewrap", "s3://dest"]).await.unwrap_err().to_string();
    assert!(err.contains("not available yet"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_vanishes_mid_copy_is_reported_not_done() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..15 {
        std::fs::write(src.join(format!("f{i:02}")), bytes(i, 500)).unwrap();
    }
    let c = server.client();
    create_bucket(&c, "dest").await;
    let creds = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("r.json");
    let cmd = parse(&[
        "copy",
        src.to_str().unwrap(),
        "s3://dest",
        "--dst-endpoint",
        &server.endpoint,
        "--dst-profile",
        "sb",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--parallel",
        "1",
        "--rate",
        "25",
    ]);
    let task = tokio::spawn(sealbox_migrate::run(cmd));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    std::fs::remove_file(src.join("f14")).unwrap();
    assert_eq!(task.await.unwrap().unwrap(), 1, "a vanished object fails the run");
    let r = read_json(&report);
    assert_eq!(r["summary"]["copied"], 14);
    assert_eq!(r["summary"]["failed"], 1);
    assert_eq!(r["all_verified"], false);
    let failed = r["objects"].as_array().unwrap().iter().find(|o| o["outcome"] == "failed").unwrap();
    assert_eq!(failed["src_key"], "f14");
    assert!(failed["error"].as_str().unwrap().contains("vanished"), "{failed}");
    let done: i64 = rusqlite::Connection::open(&cp)
        .unwrap()
        .query_row("SELECT count(*) FROM objects WHERE src_key = 'f14'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(done, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_multipart_upload_resumes_at_part_level() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = bytes(77, 64 * 1024 * 1024);
    std::fs::write(src.join("big.bin"), &data).unwrap();
    let c = server.client();
    create_bucket(&c, "dest").await;
    let creds = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("r.json");
    let args = vec![
        "copy".to_owned(),
        src.to_str().unwrap().to_owned(),
        "s3://dest".into(),
        "--dst-endpoint".into(),
        server.endpoint.clone(),
        "--dst-profile".into(),
        "sb".into(),
        "--credentials-file".into(),
        creds.to_str().unwrap().into(),
        "--checkpoint".into(),
        cp.to_str().unwrap().into(),
        "--report".into(),
        report.to_str().unwrap().into(),
        "--multipart-threshold-mib".into(),
        "8".into(),
        "--part-size-mib".into(),
        "8".into(),
    ];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let task = tokio::spawn(sealbox_migrate::run(parse(&argv)));
    // Kill the run once at least two of its eight parts are recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut parts = 0i64;
    while parts < 2 {
        assert!(std::time::Instant::now() < deadline, "no part recorded in time");
        assert!(!task.is_finished(), "the upload finished before it could be killed");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        if let Ok(db) = rusqlite::Connection::open(&cp) {
            parts = db.query_row("SELECT count(*) FROM parts", [], |r| r.get(0)).unwrap_or(0);
        }
    }
    task.abort();
    let _ = task.await;

    let mut resume = argv.clone();
    resume.push("--resume");
    assert_eq!(migrate(&resume).await.unwrap(), 0);
    let r = read_json(&report);
    assert_eq!(r["summary"]["copied"], 1);
    let resumed = r["objects"][0]["resumed_parts"].as_u64().unwrap_or(0);
    assert!(resumed >= 2, "parts taken over: {resumed}");
    assert!(get(&c, "dest", "big.bin").await == data, "resumed object differs");
    let uploads = c.list_multipart_uploads().bucket("dest").send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "no upload left open");
}
