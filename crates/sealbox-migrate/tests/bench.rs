//! Benchmark (ignored by default): `cargo test -p sealbox-migrate --test bench -- --ignored --nocapture`.
//! 2,000 small objects and a few 64 MiB objects, folder -> sealbox, against `cp -r` of the same
//! folder in the same run.

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;

fn mib(n: u64) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

fn cp_r(from: &Path, to: &Path) -> f64 {
    let t = Instant::now();
    let ok = std::process::Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap().success();
    assert!(ok);
    // cp does not fsync; sync so its number includes getting the bytes to disk like the server does.
    let _ = std::process::Command::new("sync").status();
    t.elapsed().as_secs_f64()
}

async fn copy_folder(server: &TestServer, work: &Path, src: &Path, bucket: &str, extra: &[&str]) -> f64 {
    let creds = credentials_file(work, &[("sb", server)]);
    let cp = work.join(format!("{}.sqlite", bucket.replace('/', "_").replace(':', "")));
    let mut args = vec![
        "copy",
        src.to_str().unwrap(),
        bucket,
        "--dst-endpoint",
        &server.endpoint,
        "--dst-profile",
        "sb",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
    ];
    args.extend(extra);
    let t = Instant::now();
    assert_eq!(migrate(&args).await.unwrap(), 0);
    t.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_folder_to_sealbox_against_cp() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    let big = work.path().join("big");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::create_dir_all(&big).unwrap();
    let mut small_bytes = 0u64;
    for i in 0..2000u64 {
        let data = bytes(i, 1024 + (i as usize % 4) * 1024);
        small_bytes += data.len() as u64;
        std::fs::create_dir_all(small.join(format!("d{}", i % 20))).unwrap();
        std::fs::write(small.join(format!("d{}/obj-{i}", i % 20)), data).unwrap();
    }
    let big_count = 3u64;
    for i in 0..big_count {
        std::fs::write(big.join(format!("blob-{i}")), bytes(100 + i, 64 * 1024 * 1024)).unwrap();
    }
    let big_bytes = big_count * 64 * 1024 * 1024;
    let c = server.client();
    create_bucket(&c, "small").await;
    create_bucket(&c, "big").await;

    let cp_small = cp_r(&small, &work.path().join("small-cp"));
    let cp_big = cp_r(&big, &work.path().join("big-cp"));
    let m_small = copy_folder(&server, work.path(), &small, "s3://small", &["--parallel", "16"]).await;
    let m_big =
        copy_folder(&server, work.path(), &big, "s3://big", &["--parallel", "3", "--part-size-mib", "16"]).await;
    let m_big_full =
        copy_folder(&server, work.path(), &big, "s3://big/full", &["--parallel", "3", "--verify", "full"]).await;

    println!("\nBENCH 2000 small objects ({:.1} MiB):", mib(small_bytes));
    println!("  cp -r + sync      {cp_small:7.2}s  {:8.0} files/s", 2000.0 / cp_small);
    println!(
        "  migrate copy      {m_small:7.2}s  {:8.0} objects/s  {:6.1} MiB/s",
        2000.0 / m_small,
        mib(small_bytes) / m_small
    );
    println!("BENCH {big_count} x 64 MiB objects:");
    println!("  cp -r + sync      {cp_big:7.2}s  {:8.1} MiB/s", mib(big_bytes) / cp_big);
    println!("  migrate (checksum){m_big:7.2}s  {:8.1} MiB/s", mib(big_bytes) / m_big);
    println!("  migrate (full)    {m_big_full:7.2}s  {:8.1} MiB/s", mib(big_bytes) / m_big_full);
}
