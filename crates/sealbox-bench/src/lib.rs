//! sealbox-bench: `sealbox bench`. Starts a server on a temp data dir (or uses a running one),
//! measures the raw disk under it, then PUT/GET throughput and requests per second for 4 KiB,
//! 1 MiB and 64 MiB objects at concurrency 1 and 16 in each encryption mode, KMS calls per
//! second (over HTTP, and in-process on one core for scale), and the server's peak memory while
//! one big object streams in and out.
//!
//! Owns: the bench client (hyper + sealbox-auth signing, streaming bodies both ways) and the
//! report. Must never: hold an object body in memory, touch data it did not create, or turn a
//! mode the server refuses into a failed run (it shows "n/a").
//! Start at [`run`]; the numbers are explained in docs/benchmarks.md.

mod body;
mod client;
mod disk;
mod measure;
mod opts;
mod report;
mod server;
mod xks;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use opts::{parse_size, BenchOpts, SseMode};
pub use report::Report;

use crate::measure::{measure_big_object, measure_kms, measure_kms_in_process, measure_mode, workloads};
use crate::opts::format_size;
use crate::server::{read_memory, ServerUnderTest};

/// Runs the whole bench and prints the table to stdout (progress goes to stderr).
pub async fn run(opts: BenchOpts) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut server = ServerUnderTest::start_or_attach(&opts).await?;
    let result = run_against(&opts, &server, started).await;
    server.stop().await;
    let report = result?;
    println!("{}", report.to_markdown());
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}

async fn run_against(opts: &BenchOpts, server: &ServerUnderTest, started: Instant) -> anyhow::Result<Report> {
    let client = Arc::new(server.client.clone());
    let memory_at_start = server.pid.and_then(read_memory);
    let disk_bytes = opts.disk_size.unwrap_or(if opts.quick { 256 << 20 } else { 1 << 30 });
    let fsync_for = Duration::from_millis(if opts.quick { 500 } else { 2000 });
    eprintln!("raw disk: writing {} under {}", format_size(disk_bytes), server.data_dir.display());
    let dir = server.data_dir.clone();
    let raw_disk = tokio::task::spawn_blocking(move || disk::measure(&dir, disk_bytes, fsync_for)).await??;

    let bucket = format!("sealbox-bench-{}", unique_suffix());
    client.create_bucket(&bucket).await.map_err(|e| e.context(format!("creating bucket {bucket}")))?;
    let needs_kms = opts.sse.iter().any(|m| m.uses_kms()) || opts.big_sse.uses_kms() || !opts.quick;
    let (kms_key, kms_key_note) = if needs_kms { create_kms_key(&client).await } else { (None, None) };

    let work = workloads(opts.quick);
    let mut modes = Vec::new();
    for &mode in &opts.sse {
        eprintln!("mode {mode}");
        modes.push(measure_mode(&client, &bucket, mode, kms_key.as_deref(), &work).await);
    }

    let (kms, kms_note) = match &kms_key {
        Some(arn) => match measure_kms(&client, arn, if opts.quick { 200 } else { 2000 }).await {
            Ok(rates) => (rates, None),
            Err(e) => (Vec::new(), Some(format!("not measured: {e:#}"))),
        },
        None => (Vec::new(), kms_key_note),
    };

    let calls = if opts.quick { 2000 } else { 20000 };
    let kms_in_process = match tempfile::tempdir() {
        Ok(dir) => tokio::task::spawn_blocking(move || measure_kms_in_process(dir.path(), calls)).await?,
        Err(e) => Err(e.into()),
    }
    .unwrap_or_else(|e| {
        eprintln!("KMS in-process not measured: {e:#}");
        Vec::new()
    });

    let xks_calls = opts.xks_calls.unwrap_or(if opts.quick { 400 } else { 2000 });
    let (xks_latency, xks_note, xks_key) = measure_xks(opts, server, xks_calls).await;

    let big_size = if opts.quick { opts.big_size.min(256 << 20) } else { opts.big_size };
    let (big_object, big_object_note) = if big_size == 0 {
        (None, Some("skipped (--big-size 0)".to_owned()))
    } else {
        eprintln!("big object: {} in {}", format_size(big_size), opts.big_sse);
        let key = if opts.big_sse.uses_kms() { kms_key.as_deref() } else { None };
        match measure_big_object(&client, &bucket, opts.big_sse, key, big_size, server.pid).await {
            Ok(b) => {
                let note = server.pid.is_none().then(|| "server memory not read: pass --server-pid".to_owned());
                (Some(b), note)
            }
            Err(e) => (None, Some(format!("n/a: {e:#}"))),
        }
    };

    if let Err(e) = client.delete_bucket(&bucket).await {
        eprintln!("could not delete bucket {bucket}: {e:#}");
    }
    if !server.spawned {
        // A running server keeps its keys: schedule ours for deletion (7 days is the minimum).
        for arn in [&kms_key, &xks_key].into_iter().flatten() {
            let request = serde_json::json!({ "KeyId": arn, "PendingWindowInDays": 7 });
            let _ = client.kms("ScheduleKeyDeletion", &request).await;
        }
    }
    Ok(Report {
        quick: opts.quick,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        endpoint: client.endpoint().to_owned(),
        server_started_by_bench: server.spawned,
        raw_disk,
        server_memory_at_start: memory_at_start,
        modes,
        kms,
        kms_in_process,
        kms_note,
        xks: xks_latency,
        xks_note,
        big_object,
        big_object_note,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// A customer key for the SSE-KMS columns; without one the server's default aws/s3 key is used.
async fn create_kms_key(client: &client::S3Client) -> (Option<String>, Option<String>) {
    let request = serde_json::json!({ "Description": "sealbox bench (safe to delete)" });
    match client.kms("CreateKey", &request).await {
        Ok(answer) => match answer["KeyMetadata"]["Arn"].as_str() {
            Some(arn) => (Some(arn.to_owned()), None),
            None => (None, Some("CreateKey answered without KeyMetadata.Arn".into())),
        },
        Err(e) => (None, Some(format!("CreateKey failed ({e:#}); SSE-KMS modes use the default key"))),
    }
}

/// The XKS section: a tagged key, then Encrypt latency at 16 clients with the XKS credentials.
/// Returns the numbers, or why there are none, and the key made (to clean up).
async fn measure_xks(
    opts: &BenchOpts,
    server: &ServerUnderTest,
    calls: usize,
) -> (Option<xks::XksLatency>, Option<String>, Option<String>) {
    if calls == 0 {
        return (None, Some("skipped (--xks-calls 0)".into()), None);
    }
    let Some((id, secret, uri_path)) = &server.xks else {
        return (None, Some("n/a: pass --xks-access-key and --xks-secret-key for an --endpoint server".into()), None);
    };
    let endpoint = server.client.endpoint().to_owned();
    let client = match client::S3Client::new(&endpoint, id, secret.expose(), &opts.region) {
        Ok(c) => c,
        Err(e) => return (None, Some(format!("n/a: {e:#}")), None),
    };
    let (key_id, arn) = match xks::create_xks_key(&server.client).await {
        Ok(k) => k,
        Err(e) => return (None, Some(format!("n/a: could not make a key for XKS: {e:#}")), None),
    };
    eprintln!("XKS Encrypt latency: {calls} calls, {} clients", xks::CLIENTS);
    let target = Arc::new(xks::XksTarget { client, uri_path: uri_path.clone() });
    match xks::measure_encrypt(&target, &key_id, calls).await {
        Ok(l) => (Some(l), None, Some(arn)),
        Err(e) => (None, Some(format!("n/a: {e:#}")), Some(arn)),
    }
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{}", nanos & 0xffff_ffff, std::process::id())
}
