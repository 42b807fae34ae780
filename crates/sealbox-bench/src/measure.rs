//! The measurements: the size × concurrency matrix per encryption mode, KMS calls, the big object.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{S3Client, SseHeaders};
use crate::opts::{format_size, SseMode};
use crate::server::{read_memory, reset_peak_memory, Memory};

/// Objects per run: (size, count at concurrency 1, count at concurrency 16). Sized so a full
/// run of six modes takes a few minutes on two cores and every cell lasts long enough to mean
/// something.
pub fn workloads(quick: bool) -> Vec<Workload> {
    let table: [(u64, usize, usize); 3] = if quick {
        [(4 << 10, 100, 400), (1 << 20, 16, 64), (64 << 20, 1, 4)]
    } else {
        [(4 << 10, 500, 2000), (1 << 20, 64, 256), (64 << 20, 4, 16)]
    };
    table.iter().map(|&(size, c1, c16)| Workload { size, runs: vec![(1, c1), (16, c16)] }).collect()
}

pub struct Workload {
    pub size: u64,
    /// (concurrency, object count)
    pub runs: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub mib_s: f64,
    pub ops_s: f64,
    pub secs: f64,
}

impl Rate {
    fn of(bytes_each: u64, count: usize, secs: f64) -> Self {
        let secs = secs.max(1e-9);
        Rate { mib_s: (bytes_each as f64 * count as f64) / (1 << 20) as f64 / secs, ops_s: count as f64 / secs, secs }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub size: u64,
    pub concurrency: usize,
    pub count: usize,
    pub put: Option<Rate>,
    pub get: Option<Rate>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    pub mode: SseMode,
    /// Why the mode was not measured (the server refused it), shown as "n/a".
    pub unavailable: Option<String>,
    /// Something to know about the numbers (e.g. the server did not echo the mode).
    pub note: Option<String>,
    pub cells: Vec<Cell>,
}

/// Unique object ids across the run, so a GET can tell one object from another.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_ids(n: usize) -> u64 {
    NEXT_ID.fetch_add(n as u64, Ordering::Relaxed)
}

/// Runs `f(0..count)` on `concurrency` tasks; returns the wall time. The first error stops it.
pub(crate) async fn in_parallel<F, Fut>(count: usize, concurrency: usize, f: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let (f, next) = (f.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                f(i).await?;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// A small PUT/GET/DELETE in `mode`: refused → the mode is n/a; accepted but not confirmed by
/// the response headers → a note.
pub async fn probe_mode(
    client: &S3Client,
    bucket: &str,
    mode: SseMode,
    sse: &SseHeaders,
) -> Result<Option<String>, String> {
    let key = format!("probe-{}", mode.label().replace([':', '+'], "-"));
    let id = next_ids(1);
    let headers = client.put_object(bucket, &key, id, 4096, sse).await.map_err(|e| format!("PUT refused: {e:#}"))?;
    client.get_object(bucket, &key, id, 4096, sse).await.map_err(|e| format!("GET refused: {e:#}"))?;
    let _ = client.delete_object(bucket, &key).await;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut notes = Vec::new();
    if let Some(want) = mode.echoed_algorithm() {
        let got = header("x-amz-server-side-encryption");
        if got != want {
            notes.push(format!("PUT answered x-amz-server-side-encryption '{got}', not '{want}'"));
        }
    }
    if mode == SseMode::AwsKmsBucketKey && header("x-amz-server-side-encryption-bucket-key-enabled") != "true" {
        notes.push("PUT did not confirm the bucket key".to_owned());
    }
    if mode == SseMode::SseC && header("x-amz-server-side-encryption-customer-algorithm") != "AES256" {
        notes.push("PUT did not echo the SSE-C algorithm".to_owned());
    }
    Ok((!notes.is_empty()).then(|| notes.join("; ")))
}

/// PUT `count` objects of `size` at `concurrency`, GET them all back (checked), delete them
/// (not timed).
pub async fn measure_cell(
    client: &Arc<S3Client>,
    bucket: &str,
    mode: SseMode,
    sse: &Arc<SseHeaders>,
    size: u64,
    concurrency: usize,
    count: usize,
) -> Cell {
    let first_id = next_ids(count);
    let prefix = format!("{}/{size}/{concurrency}", mode.label().replace([':', '+'], "-"));
    let key = move |i: usize| format!("{prefix}/{i}");
    let op = |is_put: bool| {
        let (client, sse, bucket, key) = (client.clone(), sse.clone(), bucket.to_owned(), key.clone());
        in_parallel(count, concurrency, move |i| {
            let (client, sse, bucket, key) = (client.clone(), sse.clone(), bucket.clone(), key(i));
            async move {
                let id = first_id + i as u64;
                if is_put {
                    client.put_object(&bucket, &key, id, size, &sse).await.map(|_| ())
                } else {
                    client.get_object(&bucket, &key, id, size, &sse).await.map(|_| ())
                }
            }
        })
    };
    let mut cell = Cell { size, concurrency, count, put: None, get: None, error: None };
    match op(true).await {
        Ok(secs) => cell.put = Some(Rate::of(size, count, secs)),
        Err(e) => cell.error = Some(format!("PUT: {e:#}")),
    }
    if cell.error.is_none() {
        match op(false).await {
            Ok(secs) => cell.get = Some(Rate::of(size, count, secs)),
            Err(e) => cell.error = Some(format!("GET: {e:#}")),
        }
    }
    let (c, b) = (client.clone(), bucket.to_owned());
    let _ = in_parallel(count, 16, move |i| {
        let (c, b, k) = (c.clone(), b.clone(), key(i));
        async move {
            let _ = c.delete_object(&b, &k).await;
            Ok(())
        }
    })
    .await;
    cell
}

pub async fn measure_mode(
    client: &Arc<S3Client>,
    bucket: &str,
    mode: SseMode,
    kms_key: Option<&str>,
    workloads: &[Workload],
) -> ModeResult {
    let sse = Arc::new(SseHeaders::for_mode(mode, kms_key));
    let note = match probe_mode(client, bucket, mode, &sse).await {
        Ok(note) => note,
        Err(reason) => {
            eprintln!("  {mode}: n/a ({reason})");
            return ModeResult { mode, unavailable: Some(reason), note: None, cells: Vec::new() };
        }
    };
    let mut cells = Vec::new();
    for w in workloads {
        for &(concurrency, count) in &w.runs {
            let cell = measure_cell(client, bucket, mode, &sse, w.size, concurrency, count).await;
            match (&cell.put, &cell.get, &cell.error) {
                (Some(p), Some(g), _) => eprintln!(
                    "  {mode} {} x{count} conc {concurrency}: PUT {:.1} MiB/s {:.0} op/s, GET {:.1} MiB/s {:.0} op/s",
                    format_size(w.size),
                    p.mib_s,
                    p.ops_s,
                    g.mib_s,
                    g.ops_s
                ),
                (_, _, Some(e)) => eprintln!("  {mode} {} conc {concurrency}: failed: {e}", format_size(w.size)),
                _ => {}
            }
            cells.push(cell);
        }
    }
    ModeResult { mode, unavailable: None, note, cells }
}

#[derive(Debug, Clone, Serialize)]
pub struct KmsRate {
    pub operation: &'static str,
    pub concurrency: usize,
    pub ops_s: f64,
}

/// GenerateDataKey and Decrypt over HTTP, at concurrency 1 and 16.
pub async fn measure_kms(client: &Arc<S3Client>, key_arn: &str, calls: usize) -> anyhow::Result<Vec<KmsRate>> {
    let generate = Arc::new(serde_json::json!({ "KeyId": key_arn, "KeySpec": "AES_256" }));
    let blob = client.kms("GenerateDataKey", &generate).await?["CiphertextBlob"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("GenerateDataKey answered without CiphertextBlob"))?;
    let decrypt = Arc::new(serde_json::json!({ "CiphertextBlob": blob }));
    let mut rates = Vec::new();
    for (operation, request) in [("GenerateDataKey", generate), ("Decrypt", decrypt)] {
        for concurrency in [1usize, 16] {
            let (c, r) = (client.clone(), request.clone());
            let secs = in_parallel(calls, concurrency, move |_| {
                let (c, r) = (c.clone(), r.clone());
                async move { c.kms(operation, &r).await.map(|_| ()) }
            })
            .await?;
            let ops_s = calls as f64 / secs;
            eprintln!("  KMS {operation} conc {concurrency}: {ops_s:.0} op/s");
            rates.push(KmsRate { operation, concurrency, ops_s });
        }
    }
    Ok(rates)
}

/// GenerateDataKey and Decrypt called straight on the key service library, one core, no HTTP
/// or SigV4: the ceiling the KMS over HTTP numbers compare with. Uses a throwaway key store in
/// `dir`.
pub fn measure_kms_in_process(dir: &std::path::Path, calls: usize) -> anyhow::Result<Vec<KmsRate>> {
    let root = sealbox_kms::RootKey::load_or_create_file(&dir.join("root.key"))?;
    let kms = sealbox_kms::Kms::open(
        &dir.join("kms.db"),
        root,
        Arc::new(sealbox_kms::SystemClock),
        sealbox_kms::KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
    )?;
    let key = kms.create_key("sealbox bench", None, &[])?;
    let context = std::collections::BTreeMap::from([("aws:s3:arn".to_owned(), "arn:aws:s3:::bench/k".to_owned())]);
    let start = Instant::now();
    let mut blob = Vec::new();
    for _ in 0..calls {
        blob = kms.generate_data_key_with(&key, 32, &context)?.ciphertext_blob;
    }
    let generate = calls as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let start = Instant::now();
    for _ in 0..calls {
        kms.decrypt_data_key(&blob, &context)?;
    }
    let decrypt = calls as f64 / start.elapsed().as_secs_f64().max(1e-9);
    eprintln!("  KMS in-process, one core: GenerateDataKey {generate:.0} op/s, Decrypt {decrypt:.0} op/s");
    Ok(vec![
        KmsRate { operation: "GenerateDataKey", concurrency: 1, ops_s: generate },
        KmsRate { operation: "Decrypt", concurrency: 1, ops_s: decrypt },
    ])
}

#[derive(Debug, Clone, Serialize)]
pub struct BigObject {
    pub size: u64,
    pub mode: SseMode,
    pub put: Rate,
    pub get: Rate,
    /// Server memory just before the PUT.
    pub before: Option<Memory>,
    /// Peak resident memory during the PUT and GET (VmHWM after a reset; else the highest
    /// VmRSS sampled every 50 ms).
    pub peak_rss: Option<u64>,
    /// Whether VmHWM could be reset first (otherwise the peak is sampled).
    pub peak_from_hwm: bool,
}

/// Streams one big object in and out while watching the server's memory.
pub async fn measure_big_object(
    client: &S3Client,
    bucket: &str,
    mode: SseMode,
    kms_key: Option<&str>,
    size: u64,
    pid: Option<u32>,
) -> anyhow::Result<BigObject> {
    let sse = SseHeaders::for_mode(mode, kms_key);
    let id = next_ids(1);
    let key = "big-object";
    let reset = pid.is_some_and(reset_peak_memory);
    let before = pid.and_then(read_memory);
    let sampled_peak = Arc::new(AtomicU64::new(before.map_or(0, |m| m.rss)));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|pid| {
        let (peak, done) = (sampled_peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(m) = read_memory(pid) {
                    peak.fetch_max(m.rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    });
    let start = Instant::now();
    let put = client.put_object(bucket, key, id, size, &sse).await;
    let put_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let get = match &put {
        Ok(_) => client.get_object(bucket, key, id, size, &sse).await.map(|_| ()),
        Err(_) => Ok(()),
    };
    let get_secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let after = pid.and_then(read_memory);
    let _ = client.delete_object(bucket, key).await;
    put?;
    get?;
    let peak_rss = match (pid, reset, after) {
        (None, _, _) => None,
        (Some(_), true, Some(m)) => Some(m.hwm.max(sampled_peak.load(Ordering::Relaxed))),
        _ => Some(sampled_peak.load(Ordering::Relaxed)),
    };
    Ok(BigObject {
        size,
        mode,
        put: Rate::of(size, 1, put_secs),
        get: Rate::of(size, 1, get_secs),
        before,
        peak_rss,
        peak_from_hwm: reset,
    })
}
