//! `sealbox serve`: open the stores, sweep orphans, listen, shut down gracefully.

use std::os::unix::fs::DirBuilderExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::S3ServiceBuilder;
use sealbox_s3::{S3Config, SealboxS3};
use sealbox_store::{BlobStore, MetaStore};
use tokio::net::TcpListener;

use crate::config::{ServerConfig, TlsSource};
use crate::credentials;
use crate::identity::{KeyRing, KeyRingAuth, Principal};
use crate::router::{Peer, Router, RouterState};
use crate::tls;

pub fn init_tracing(cfg: &ServerConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALBOX_LOG").unwrap_or_else(|_| "info,s3s=off".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.json_logs {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Seals IAM access-key secrets with the root key (via the KMS, which holds it).
struct RootSecrets(Arc<sealbox_kms::Kms>);

impl crate::iam::SecretBox for RootSecrets {
    fn seal(&self, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.0.seal_secret(plaintext, "iam access key")?)
    }
}

/// Puts every active IAM access key in the key ring (secrets unwrapped in memory only).
fn load_user_keys(meta: &MetaStore, kms: &sealbox_kms::Kms, keyring: &KeyRing) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    for k in meta.list_access_keys(None)? {
        if k.status != "Active" {
            continue;
        }
        let user = match meta.user(&k.user_name) {
            Ok(Some(u)) => u,
            Ok(None) => continue,
            // The store reported the user row; its keys stay unusable until it is fixed.
            Err(sealbox_store::StoreError::Tampered(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let secret = kms.open_secret(&k.secret_wrapped, "iam access key")?;
        let secret = String::from_utf8(secret.to_vec()).context("stored access key secret is not text")?;
        entries.push((secret, Principal::user(&k.access_key_id, &user.name, &user.user_id, &user.path)));
    }
    keyring.replace_users(entries);
    Ok(())
}

/// The root key (file by default, or Argon2id from `SEALBOX_ROOT_PASSPHRASE`) and the KMS store.
fn open_kms(cfg: &ServerConfig) -> anyhow::Result<sealbox_kms::Kms> {
    let db = cfg.data.join("kms.db");
    let root = root_key(&cfg.data, cfg.root_key_file.as_deref(), true)?;
    let clock: Arc<dyn sealbox_kms::Clock> = if cfg.test_clock_offset_secs != 0 {
        tracing::warn!(offset_secs = cfg.test_clock_offset_secs, "TEST ONLY: the key service clock is shifted");
        Arc::new(sealbox_kms::OffsetClock(cfg.test_clock_offset_secs))
    } else {
        Arc::new(sealbox_kms::SystemClock)
    };
    let config = sealbox_kms::KmsConfig { account_id: crate::iam::ACCOUNT_ID.into(), region: cfg.region.clone() };
    sealbox_kms::Kms::open(&db, root, clock, config)
        .with_context(|| format!("while opening the key store {} (is this the right root key?)", db.display()))
}

/// The root key of the data directory `data`: inside a PKCS#11 token (`SEALBOX_PKCS11_*`),
/// derived from `SEALBOX_ROOT_PASSPHRASE`, or read from a file (`root_key_file`, else
/// `DATA/root.key`), which is generated when missing only if `create_file`.
pub fn root_key(
    data: &std::path::Path,
    root_key_file: Option<&std::path::Path>,
    create_file: bool,
) -> anyhow::Result<sealbox_kms::RootKey> {
    let db = data.join("kms.db");
    Ok(match (std::env::var("SEALBOX_PKCS11_MODULE"), std::env::var("SEALBOX_ROOT_PASSPHRASE")) {
        (Ok(module), _) if !module.is_empty() => {
            let token = std::env::var("SEALBOX_PKCS11_TOKEN")
                .context("SEALBOX_PKCS11_TOKEN (the token label) is required with SEALBOX_PKCS11_MODULE")?;
            let pin = std::env::var("SEALBOX_PKCS11_PIN")
                .context("SEALBOX_PKCS11_PIN is required with SEALBOX_PKCS11_MODULE")?;
            let label = std::env::var("SEALBOX_PKCS11_KEY_LABEL").unwrap_or_else(|_| "sealbox-root".into());
            sealbox_kms::RootKey::from_pkcs11(std::path::Path::new(&module), &token, &pin, &label)
                .with_context(|| format!("while opening the root key in the PKCS#11 token {token:?}"))?
        }
        (_, Ok(pass)) if !pass.is_empty() => {
            let salt = sealbox_kms::Kms::passphrase_salt(&db).context("while reading the passphrase salt")?;
            sealbox_kms::RootKey::from_passphrase(pass.as_bytes(), &salt)?
        }
        _ => {
            let path = root_key_file.map(std::path::Path::to_path_buf).unwrap_or_else(|| data.join("root.key"));
            if !create_file && !path.exists() {
                anyhow::bail!(
                    "no root key: {} does not exist (give --root-key-file, SEALBOX_ROOT_PASSPHRASE or the SEALBOX_PKCS11_* settings)",
                    path.display()
                );
            }
            sealbox_kms::RootKey::load_or_create_file(&path)
                .with_context(|| format!("while loading the root key {}", path.display()))?
        }
    })
}

/// Automatic rotations since start (for /metrics).
static KEY_ROTATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Rotates keys that are due, destroys keys past their deletion date and imported material past
/// its ValidTo: now and every minute.
fn spawn_key_maintenance(kms: Arc<sealbox_kms::Kms>, audit: Arc<sealbox_audit::AuditLog>, region: String) {
    tokio::spawn(async move {
        loop {
            if let Some(e) = audit.failure() {
                // Rotations and destructions are recorded after they happen: wait for a trail
                // that can record them (fail closed; the due work is done once it recovers).
                tracing::warn!(error = %e, "key maintenance postponed: the audit trail cannot be written");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            let k = kms.clone();
            let result = tokio::task::spawn_blocking(move || -> Result<_, sealbox_kms::KmsError> {
                Ok((k.rotate_due_keys()?, k.purge_deleted_keys()?, k.expire_imported_material()?))
            })
            .await;
            match result {
                Ok(Ok((rotated, purged, expired))) => {
                    let now = time::OffsetDateTime::now_utc();
                    for r in rotated {
                        tracing::info!(key = %r.key_arn, version = r.version, "key rotated (automatic)");
                        KEY_ROTATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let rec = sealbox_audit::AuditRecord::automatic_rotation(
                            crate::iam::ACCOUNT_ID,
                            &region,
                            now,
                            &r.key_arn,
                            &r.key_id,
                        );
                        crate::audit_glue::write(&audit, rec, true).await;
                    }
                    // A key destroyed after its deletion window, imported material past its
                    // ValidTo: CloudTrail's DeleteKey and DeleteExpiredKeyMaterial service events.
                    let events = purged
                        .into_iter()
                        .map(|id| ("DeleteKey", id))
                        .chain(expired.into_iter().map(|id| ("DeleteExpiredKeyMaterial", id)));
                    for (name, id) in events {
                        tracing::info!(key = %id, event = name, "key material destroyed");
                        let rec = sealbox_audit::AuditRecord::service_event(
                            crate::iam::ACCOUNT_ID,
                            &region,
                            now,
                            sealbox_audit::EventSource::Kms,
                            name,
                        )
                        .with_resource("AWS::KMS::Key", &kms.key_arn(&id))
                        .with_service_event_details(serde_json::json!({"keyId": id}));
                        crate::audit_glue::write(&audit, rec, true).await;
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "key maintenance failed"),
                Err(e) => tracing::error!(error = %e, "key maintenance task failed"),
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
}

/// Blobs the collector removed and orphans it found since start (for /metrics).
#[derive(Default)]
struct BlobGcStats {
    removed: std::sync::atomic::AtomicU64,
    orphans: std::sync::atomic::AtomicU64,
}

/// Removes replaced and deleted blobs once their grace period is over, and queues blobs no record
/// took within the orphan age: every `grace / 2` (between 0.25 and 10 s).
fn spawn_blob_collector(blobs: BlobStore, policy: sealbox_store::BlobLifecycle) -> Arc<BlobGcStats> {
    let stats = Arc::new(BlobGcStats::default());
    let every = (policy.grace / 2).clamp(Duration::from_millis(250), Duration::from_secs(10));
    let task_stats = stats.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let b = blobs.clone();
            let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
            match tokio::task::spawn_blocking(move || b.collect_garbage(now_ms, &policy)).await {
                Ok(Ok(report)) => {
                    task_stats.removed.fetch_add(report.removed as u64, Ordering::Relaxed);
                    task_stats.orphans.fetch_add(report.orphans as u64, Ordering::Relaxed);
                    if report.orphans > 0 {
                        tracing::info!(orphans = report.orphans, "blobs of interrupted writes queued for removal");
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "blob collection failed; retrying"),
                Err(e) => tracing::error!(error = %e, "blob collection task failed; retrying"),
            }
        }
    });
    stats
}

/// The secret that keys SSE-C recognition HMACs: random, made once, kept sealed by the root key.
pub fn ssec_secret(data: &std::path::Path, kms: &sealbox_kms::Kms) -> anyhow::Result<[u8; 32]> {
    let path = data.join("sse-c-secret.sealed");
    if !path.exists() {
        let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut fresh[..]).map_err(|_| anyhow::anyhow!("no system randomness"))?;
        let sealed = kms.seal_secret(&fresh[..], "sse-c hmac")?;
        crate::private_files::write_atomic(&path, &sealed, 0o600)?;
    }
    let sealed = std::fs::read(&path).with_context(|| format!("while reading {}", path.display()))?;
    let secret = kms.open_secret(&sealed, "sse-c hmac")?;
    let mut out = [0u8; 32];
    if secret.len() != 32 {
        anyhow::bail!("{} is damaged", path.display());
    }
    out.copy_from_slice(&secret);
    Ok(out)
}

fn create_data_dir(cfg: &ServerConfig) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cfg.data)
        .with_context(|| format!("while creating the data directory {}", cfg.data.display()))
}

pub async fn run(cfg: ServerConfig) -> anyhow::Result<()> {
    crate::private_files::restrict_umask();
    create_data_dir(&cfg)?;
    crate::private_files::tighten(&cfg.data)?;
    let meta = Arc::new(
        MetaStore::open(&cfg.data.join("meta.db"))
            .with_context(|| format!("while opening the meta store in {}", cfg.data.display()))?,
    );
    let blobs = BlobStore::open(&cfg.data, meta.clone()).context("while opening the blob store")?;
    let (temps, orphans) = blobs.sweep_at_start().context("while sweeping orphan blobs")?;
    if temps + orphans > 0 {
        tracing::info!(temps, orphans, "start-up sweep removed unfinished writes and replaced blobs");
    }
    let gc_stats = spawn_blob_collector(blobs.clone(), cfg.blob_lifecycle);

    let (creds, origin) = credentials::load_or_create(&cfg.data)?;
    let keyring = Arc::new(KeyRing::default());
    keyring.insert(&creds.secret_access_key, Principal::root(&creds.access_key_id));

    let kms = Arc::new(open_kms(&cfg)?);
    let (audit, audit_key) = open_audit(&cfg, &kms)?;
    let audit = Arc::new(audit);
    let metadata_failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let metadata = open_metadata_integrity(&cfg, &meta, &kms, &audit, &metadata_failures)?;
    let iam = Arc::new(crate::iam::Iam {
        meta: meta.clone(),
        secrets: Arc::new(RootSecrets(kms.clone())),
        validate_policy: Box::new(|doc| {
            sealbox_policy::PolicyDocument::parse_for(doc, sealbox_policy::PolicyKind::Identity)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        on_keys_changed: {
            let (meta, kms, keyring) = (meta.clone(), kms.clone(), keyring.clone());
            Box::new(move || {
                if let Err(e) = load_user_keys(&meta, &kms, &keyring) {
                    tracing::error!(error = %format!("{e:#}"), "could not reload IAM access keys");
                }
            })
        },
    });
    load_user_keys(&meta, &kms, &keyring)?;
    spawn_key_maintenance(kms.clone(), audit.clone(), cfg.region.clone());

    let calls = Arc::new(crate::keyservice::S3KmsCalls::default());
    let keys = crate::keyservice::KmsKeys {
        kms: kms.clone(),
        meta: meta.clone(),
        calls: calls.clone(),
        audit: {
            let (audit, keyring, region) = (audit.clone(), keyring.clone(), cfg.region.clone());
            Arc::new(move |call: crate::keyservice::AuditedKmsCall| {
                // The key may have been removed since the request was authenticated: the call is
                // still recorded, under the identity the request was authenticated as.
                let p = keyring.principal(&call.caller.access_key_id).unwrap_or_else(|| Principal {
                    access_key_id: call.caller.access_key_id.clone(),
                    user_name: crate::keyservice::user_name_of(&call.caller.user_arn).map(str::to_owned),
                    user_id: String::new(),
                    arn: call.caller.user_arn.clone(),
                });
                let ctx = crate::audit_glue::context(
                    &region,
                    call.caller.source_ip.clone(),
                    None,
                    &uuid::Uuid::new_v4().to_string(),
                );
                let mut rec = sealbox_audit::AuditRecord::kms_call_via_s3(
                    &crate::audit_glue::principal(&p),
                    &ctx,
                    call.operation,
                    call.key_arn.as_deref().unwrap_or(""),
                )
                .with_request_parameters(serde_json::json!({"encryptionContext": call.context, "keySpec": "AES_256"}));
                if let Some((code, message)) = &call.error {
                    rec = rec.with_error(code, message);
                }
                crate::audit_glue::write_blocking(&audit, rec)
            })
        },
    };
    let ssec_secret = ssec_secret(&cfg.data, &kms)?;
    let enc = Arc::new(
        sealbox_s3::Encryption::new(Arc::new(keys), ssec_secret, &metadata, Duration::from_secs(600))
            .map_err(|e| anyhow::anyhow!("while setting up encryption: {e}"))?,
    );
    let integrity_failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let on_integrity_failure: sealbox_s3::IntegrityReporter = {
        let (audit, region, counter) = (audit.clone(), cfg.region.clone(), integrity_failures.clone());
        Arc::new(move |object: &str, error: &str| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (bucket, key) = object.split_once('/').unwrap_or((object, ""));
            let rec = sealbox_audit::AuditRecord::service_event(
                crate::iam::ACCOUNT_ID,
                &region,
                time::OffsetDateTime::now_utc(),
                sealbox_audit::EventSource::Sealbox,
                "ObjectIntegrityFailure",
            )
            .with_resource("AWS::S3::Object", &format!("arn:aws:s3:::{object}"))
            .with_service_event_details(serde_json::json!({"bucketName": bucket, "key": key, "error": error}));
            // Called from inside a response stream: never block it on an fsync.
            if let Err(e) = audit.append(rec, sealbox_audit::Durability::Buffered) {
                tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN");
            }
        })
    };
    let s3_config = S3Config {
        region: cfg.region.clone(),
        max_put_size: cfg.max_put_size,
        body_idle_timeout: cfg.body_idle_timeout,
        allow_sse_c_over_http: cfg.insecure_allow_sse_c_over_http,
        on_integrity_failure: Some(on_integrity_failure),
        restore_delay: cfg.restore_delay,
        clock_offset_ms: cfg.test_clock_offset_secs.saturating_mul(1000),
    };
    if cfg.insecure_allow_sse_c_over_http {
        tracing::warn!("--insecure-allow-sse-c-over-http is set: SSE-C keys may travel in the clear. Never use this outside tests.");
    }
    let s3 = SealboxS3::new(meta.clone(), blobs, s3_config, enc.clone());
    let s3_impl = s3.clone();
    let mut builder = S3ServiceBuilder::new(s3);
    builder.set_auth(KeyRingAuth(keyring.clone()));
    builder.set_access(crate::access::SealboxAccess {
        keyring: keyring.clone(),
        meta: meta.clone(),
        audit: audit.clone(),
        region: cfg.region.clone(),
        audit_data_events: cfg.audit_data_events,
    });
    if !cfg.domains.is_empty() {
        builder.set_host(s3s::host::MultiDomain::new(&cfg.domains).context("invalid --domain")?);
    }
    let xks = match &cfg.xks {
        Some(c) => Some(Arc::new(crate::xks_glue::XksState::new(c).context("while loading the XKS credentials")?)),
        None => None,
    };
    let state = Arc::new(RouterState {
        ready: AtomicBool::new(false),
        metrics: Default::default(),
        kms: kms.clone(),
        meta: meta.clone(),
        keyring: keyring.clone(),
        iam,
        audit: audit.clone(),
        region: cfg.region.clone(),
        s3_impl,
        audit_data_events: cfg.audit_data_events,
        unknown_length_budget: crate::router::UnknownLengthBudget::new(cfg.body_idle_timeout),
        domains: cfg.domains.clone(),
        xks: xks.clone(),
        console: std::sync::OnceLock::new(),
    });
    if let Some(xks) = &xks {
        let collector = xks.clone();
        state.metrics.add_collector(Box::new(move |out: &mut String| collector.render_metrics(out)));
        tokio::spawn(crate::xks_glue::reload_on_sighup(xks.clone()));
    }
    {
        let (enc, audit, integrity_failures, metadata_failures) =
            (enc.clone(), audit.clone(), integrity_failures.clone(), metadata_failures.clone());
        state.metrics.add_collector(Box::new(move |out: &mut String| {
            use std::fmt::Write;
            use std::sync::atomic::Ordering::Relaxed;
            let (hits, misses) = enc.bucket_key_stats();
            let _ = writeln!(out, "# HELP sealbox_bucket_key_cache_total Bucket-key uses served from cache (hit) or fetched from KMS (miss).\n# TYPE sealbox_bucket_key_cache_total counter");
            let _ = writeln!(out, "sealbox_bucket_key_cache_total{{result=\"hit\"}} {hits}\nsealbox_bucket_key_cache_total{{result=\"miss\"}} {misses}");
            let a = audit.stats();
            let _ = writeln!(out, "# HELP sealbox_audit_records_total Audit records written.\n# TYPE sealbox_audit_records_total counter\nsealbox_audit_records_total {}", a.records);
            let _ = writeln!(out, "# HELP sealbox_audit_digests_total Signed audit digests written.\n# TYPE sealbox_audit_digests_total counter\nsealbox_audit_digests_total {}", a.digests);
            let _ = writeln!(out, "# HELP sealbox_audit_failed 1 when the audit writer has failed (requests needing a record are refused).\n# TYPE sealbox_audit_failed gauge\nsealbox_audit_failed {}", u8::from(audit.has_failed()));
            let _ = writeln!(out, "# HELP sealbox_key_rotations_total Automatic key rotations since start.\n# TYPE sealbox_key_rotations_total counter\nsealbox_key_rotations_total {}", KEY_ROTATIONS.load(Relaxed));
            let _ = writeln!(out, "# HELP sealbox_object_integrity_failures_total Stored objects (bytes or records) that failed authentication on read.\n# TYPE sealbox_object_integrity_failures_total counter\nsealbox_object_integrity_failures_total {}", integrity_failures.load(Relaxed));
            let _ = writeln!(out, "# HELP sealbox_metadata_integrity_failures_total Policy, IAM and bucket-setting rows of meta.db that failed their MAC (refused).\n# TYPE sealbox_metadata_integrity_failures_total counter\nsealbox_metadata_integrity_failures_total {}", metadata_failures.load(Relaxed));
        }));
    }
    {
        let meta = meta.clone();
        state.metrics.add_collector(Box::new(move |out: &mut String| {
            use std::fmt::Write;
            let (pending, intents) = meta.blob_lifecycle_counts().unwrap_or_default();
            let _ = writeln!(out, "# HELP sealbox_blobs_removed_total Replaced, deleted and orphan blobs the collector removed since start.\n# TYPE sealbox_blobs_removed_total counter\nsealbox_blobs_removed_total {}", gc_stats.removed.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP sealbox_blob_orphans_total Blobs of interrupted writes found by the periodic sweep since start.\n# TYPE sealbox_blob_orphans_total counter\nsealbox_blob_orphans_total {}", gc_stats.orphans.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP sealbox_blobs_pending_deletion Blobs waiting out their grace period.\n# TYPE sealbox_blobs_pending_deletion gauge\nsealbox_blobs_pending_deletion {pending}");
            let _ = writeln!(out, "# HELP sealbox_blobs_unclaimed Blobs written whose record is not committed yet.\n# TYPE sealbox_blobs_unclaimed gauge\nsealbox_blobs_unclaimed {intents}");
        }));
    }
    {
        let calls = calls.clone();
        state.metrics.add_collector(Box::new(move |out: &mut String| {
            use std::fmt::Write;
            use std::sync::atomic::Ordering::Relaxed;
            out.push_str("# HELP sealbox_kms_s3_calls_total KMS calls S3 made for users (bucket keys make fewer).\n# TYPE sealbox_kms_s3_calls_total counter\n");
            let _ = writeln!(out, "sealbox_kms_s3_calls_total{{operation=\"GenerateDataKey\"}} {}", calls.generate_data_key.load(Relaxed));
            let _ = writeln!(out, "sealbox_kms_s3_calls_total{{operation=\"Decrypt\"}} {}", calls.decrypt.load(Relaxed));
        }));
    }
    let router = Router { s3: builder.build(), state: state.clone(), peer: None };

    let http = match cfg.http_enabled {
        true => Some(TcpListener::bind(cfg.listen).await.with_context(|| format!("while binding {}", cfg.listen))?),
        false => None,
    };
    let tls = match &cfg.tls {
        Some(source) => {
            let files = match source {
                TlsSource::Auto => tls::auto_files(&cfg.data, &cfg.domains)?,
                TlsSource::Files { cert, key } => tls::TlsFiles { cert: cert.clone(), key: key.clone(), ca: None },
            };
            let resolver = Arc::new(tls::ReloadingResolver::new(files.clone())?);
            let client_auth = match cfg.xks.as_ref().and_then(|x| x.client_ca.as_ref().map(|ca| (ca, x))) {
                Some((ca, x)) => Some(crate::xks_tls::client_verifier(ca, x.client_cn.as_deref())?),
                None => None,
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(resolver.clone(), client_auth)?);
            let listener =
                TcpListener::bind(cfg.listen_tls).await.with_context(|| format!("while binding {}", cfg.listen_tls))?;
            tokio::spawn(reload_on_sighup(resolver));
            Some((listener, acceptor, files))
        }
        None => None,
    };
    let http_addr = http.as_ref().map(|l| l.local_addr()).transpose()?;
    let tls_addr = tls.as_ref().map(|(l, _, f)| l.local_addr().map(|a| (a, f.clone()))).transpose()?;
    if let Some(settings) = cfg.console {
        let backend = console_backend(&cfg, &router, &state, http_addr, tls_addr.as_ref(), &audit_key);
        let config = sealbox_console::ConsoleConfig {
            limits: sealbox_console::SessionLimits {
                idle: settings.idle_timeout,
                absolute: settings.session_max,
                max_sessions: 10_000,
            },
            region: cfg.region.clone(),
            // A base domain makes S3 read the console's requests path-style; without one, any
            // name does.
            api_host: cfg.domains.first().cloned().unwrap_or_else(|| "localhost".into()),
            domains: cfg.domains.clone(),
        };
        let _ = state.console.set(Arc::new(sealbox_console::Console::new(Arc::new(backend), config)));
    }
    print_banner(&cfg, http_addr, tls_addr.as_ref(), &creds, origin);
    if let (Some(x), Some(xks)) = (&cfg.xks, &xks) {
        let endpoint = match (tls_addr.as_ref(), http_addr) {
            (Some((a, _)), _) => format!("https://{a}"),
            (None, Some(a)) => format!("http://{a}"),
            (None, None) => String::new(),
        };
        println!("XKS proxy API: endpoint {endpoint}, XksProxyUriPath {}", xks.api_root());
        println!(
            "  credentials from {}{}",
            x.credentials.display(),
            if x.client_ca.is_some() { ", client certificates required (mTLS)" } else { "" }
        );
    }
    print_audit_key(&cfg, &audit_key);
    state.ready.store(true, Ordering::Release);

    let limits = Limits {
        connections: Arc::new(tokio::sync::Semaphore::new(cfg.max_connections)),
        header_timeout: cfg.header_timeout,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal_stop.cancel();
    });
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let mut tasks = Vec::new();
    if let Some(listener) = http {
        tasks.push(tokio::spawn(accept_loop(
            listener,
            None,
            router.clone(),
            graceful.clone(),
            stop.clone(),
            limits.clone(),
        )));
    }
    if let Some((listener, acceptor, _)) = tls {
        tasks.push(tokio::spawn(accept_loop(
            listener,
            Some(acceptor),
            router.clone(),
            graceful.clone(),
            stop.clone(),
            limits.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("shutting down: waiting for in-flight requests");
    let graceful =
        Arc::try_unwrap(graceful).map_err(|_| anyhow::anyhow!("listener tasks still hold the shutdown handle"))?;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("in-flight requests did not finish in 30 s"),
    }
    // Seal the trail: everything written so far is covered by a signed digest.
    let a = audit.clone();
    match tokio::task::spawn_blocking(move || a.flush().and_then(|_| a.write_digest_now())).await {
        Ok(Ok(path)) => tracing::info!(digest = %path.display(), "audit trail sealed"),
        Ok(Err(e)) => tracing::error!(error = %e, "could not write the final audit digest"),
        Err(e) => tracing::error!(error = %e, "audit shutdown task failed"),
    }
    tracing::info!("sealbox stopped");
    Ok(())
}

/// The console's view of this server: its router (to send the console's API requests through),
/// listeners, TLS mode and the audit trail's trust anchor.
fn console_backend(
    cfg: &ServerConfig,
    router: &Router,
    state: &Arc<RouterState>,
    http_addr: Option<std::net::SocketAddr>,
    tls_addr: Option<&(std::net::SocketAddr, tls::TlsFiles)>,
    audit_key: &AuditKeyInfo,
) -> crate::console_glue::ConsoleBackend {
    use crate::console_glue::ListenerInfo;
    let mut listeners = Vec::new();
    if let Some(a) = http_addr {
        listeners.push(ListenerInfo { url: format!("http://{a}"), tls: false });
    }
    if let Some((a, _)) = tls_addr {
        listeners.push(ListenerInfo { url: format!("https://{a}"), tls: true });
    }
    crate::console_glue::ConsoleBackend {
        s3: router.s3.clone(),
        state: Arc::downgrade(state),
        started: std::time::Instant::now(),
        started_at: time::OffsetDateTime::now_utc(),
        listeners,
        tls_mode: match &cfg.tls {
            Some(TlsSource::Auto) => "auto",
            Some(TlsSource::Files { .. }) => "files",
            None => "off",
        },
        audit_public_key: audit_key.public_key,
        data_dir: cfg.data.clone(),
    }
}

/// The metadata key (`meta_integrity.rs`): rows of meta.db that fail their MAC are counted and
/// audited as `MetadataIntegrityFailure`; the one-time authentication of an older store is
/// audited as `MetadataAuthenticated`, so an unexpected one (a store rolled back to look old)
/// shows on the trail.
fn open_metadata_integrity(
    cfg: &ServerConfig,
    meta: &MetaStore,
    kms: &sealbox_kms::Kms,
    audit: &Arc<sealbox_audit::AuditLog>,
    failures: &Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<sealbox_s3::MetadataKeys> {
    let event = |name: &str, details: serde_json::Value| {
        sealbox_audit::AuditRecord::service_event(
            crate::iam::ACCOUNT_ID,
            &cfg.region,
            time::OffsetDateTime::now_utc(),
            sealbox_audit::EventSource::Sealbox,
            name,
        )
        .with_service_event_details(details)
    };
    let on_failure: Arc<dyn Fn(&str) + Send + Sync> = {
        let (audit, failures, region) = (audit.clone(), failures.clone(), cfg.region.clone());
        Arc::new(move |row: &str| {
            failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let rec = sealbox_audit::AuditRecord::service_event(
                crate::iam::ACCOUNT_ID,
                &region,
                time::OffsetDateTime::now_utc(),
                sealbox_audit::EventSource::Sealbox,
                "MetadataIntegrityFailure",
            )
            .with_service_event_details(serde_json::json!({"row": row}));
            // Called on request paths, possibly inside async code: never wait for an fsync here.
            if let Err(e) = audit.append(rec, sealbox_audit::Durability::Buffered) {
                tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN");
            }
        })
    };
    let opened = crate::meta_integrity::open(meta, kms, on_failure)?;
    if let Some(c) = &opened.migrated {
        tracing::warn!(
            config_rows = c.config_rows,
            objects = c.objects,
            uploads = c.uploads,
            "meta.db had no authenticated records: authenticated every existing row (expected once, on the first start of this version)"
        );
        let rec = event(
            "MetadataAuthenticated",
            serde_json::json!({"configRows": c.config_rows, "objects": c.objects, "uploads": c.uploads}),
        );
        audit.append(rec, sealbox_audit::Durability::Durable).context("while auditing the metadata migration")?;
    }
    Ok(opened.keys)
}

/// The audit signing key's fingerprint, and whether this start created the key.
struct AuditKeyInfo {
    fingerprint: String,
    created: bool,
    public_key: sealbox_audit::AuditPublicKey,
}

/// The audit log, signed with a key kept outside the audit directory, sealed by the root key.
/// The data directory's copy of the public key is written when missing and must otherwise be
/// the sealed key's: a replaced copy stops the start (see `sealbox_audit::install_public_key`).
fn open_audit(cfg: &ServerConfig, kms: &sealbox_kms::Kms) -> anyhow::Result<(sealbox_audit::AuditLog, AuditKeyInfo)> {
    let sealed_path = cfg.data.join("audit-signing.key.sealed");
    let (signer, created) = if sealed_path.exists() {
        let sealed = std::fs::read(&sealed_path).with_context(|| format!("while reading {}", sealed_path.display()))?;
        let der = kms.open_secret(&sealed, "audit signing key")?;
        (sealbox_audit::AuditSigner::from_pkcs8(&der)?, false)
    } else {
        let signer = sealbox_audit::AuditSigner::generate()?;
        let sealed = kms.seal_secret(signer.pkcs8_der(), "audit signing key")?;
        crate::private_files::write_atomic(&sealed_path, &sealed, 0o600)?;
        (signer, true)
    };
    sealbox_audit::install_public_key(&cfg.data, &signer.public_key())
        .context("refusing to start: the audit public key in the data directory is not the audit signing key's")?;
    let info = AuditKeyInfo { fingerprint: signer.fingerprint(), created, public_key: signer.public_key() };
    let mut config = sealbox_audit::AuditConfig::new(&cfg.data);
    config.region = cfg.region.clone();
    config.digest_interval = cfg.audit_digest_interval;
    Ok((sealbox_audit::AuditLog::open(config, signer)?, info))
}

/// At first start, the fingerprint a verifier should keep (it is the only thing that makes
/// `sealbox audit verify` prove anything against someone who can write the data directory).
fn print_audit_key(cfg: &ServerConfig, key: &AuditKeyInfo) {
    if key.created {
        println!("Audit signing key created. Keep its fingerprint somewhere other than this machine:");
        println!("  audit key fingerprint: {}", key.fingerprint);
        println!(
            "  check the trail with: sealbox audit verify --data {} --fingerprint {}",
            cfg.data.display(),
            key.fingerprint
        );
    }
    tracing::info!(fingerprint = %key.fingerprint, "audit signing key");
}

async fn reload_on_sighup(resolver: Arc<tls::ReloadingResolver>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match resolver.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "TLS reload failed; keeping the old certificate")
            }
        }
    }
}

fn print_banner(
    cfg: &ServerConfig,
    http: Option<std::net::SocketAddr>,
    tls: Option<&(std::net::SocketAddr, tls::TlsFiles)>,
    creds: &credentials::RootCredentials,
    origin: credentials::Origin,
) {
    if let Some(addr) = http {
        println!("sealbox listening on http://{addr} (region {}, data {})", cfg.region, cfg.data.display());
    }
    if let Some((addr, files)) = tls {
        println!("sealbox listening on https://{addr} (certificate {})", files.cert.display());
        if let Some(ca) = &files.ca {
            println!(
                "  trust it with: aws --ca-bundle {0} ... | boto3 verify=\"{0}\" | curl --cacert {0}",
                ca.display()
            );
        }
    }
    let endpoint = match (http, tls) {
        (Some(a), _) => format!("http://{a}"),
        (None, Some((a, _))) => format!("https://{a}"),
        (None, None) => String::new(),
    };
    let file = cfg.data.join(credentials::FILE);
    let secret_line = zeroize::Zeroizing::new(if origin == credentials::Origin::Generated {
        println!(
            "Generated root credentials (stored in {}, mode 0600; the secret is shown this once):",
            file.display()
        );
        creds.secret_access_key.clone()
    } else {
        // Logs outlive the terminal (journald, container logs): say where the secret is instead.
        println!("Root credentials (the secret is in {}, mode 0600):", file.display());
        format!("$(jq -r .secret_access_key {})", file.display())
    });
    println!("  export AWS_ACCESS_KEY_ID={}", creds.access_key_id);
    println!("  export AWS_SECRET_ACCESS_KEY={}", secret_line.as_str());
    println!("  export AWS_DEFAULT_REGION={}", cfg.region);
    println!("  export AWS_ENDPOINT_URL={endpoint}");
    println!("Try: aws s3 mb s3://my-bucket && aws s3 cp README.md s3://my-bucket/");
    if cfg.console.is_some() && !endpoint.is_empty() {
        println!("Web console: {endpoint}/console/ (sign in with an access key id and its secret)");
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Connection limits shared by the listeners.
#[derive(Clone)]
struct Limits {
    connections: Arc<tokio::sync::Semaphore>,
    header_timeout: Duration,
}

/// Accepts connections until `stop`; TLS handshakes run in the connection's own task.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
    stop: tokio_util::sync::CancellationToken,
    limits: Limits,
) {
    let mut http = ConnBuilder::new(TokioExecutor::new());
    http.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout);
    loop {
        // Past the connection limit, stop accepting: clients queue in the kernel's backlog.
        let permit = tokio::select! {
            p = limits.connections.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.cancelled() => break,
        };
        let (socket, addr) = tokio::select! {
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = socket.set_nodelay(true);
        match &tls {
            None => {
                let svc = router.for_connection(Peer { addr, is_tls: false, client_cert: false });
                let conn = graceful.watch(http.serve_connection(TokioIo::new(socket), svc).into_owned());
                tokio::spawn(async move {
                    // The permit lives as long as the connection: that is the connection limit.
                    let _permit = permit;
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let http = http.clone();
                let limits_header_timeout = limits.header_timeout;
                let graceful = graceful.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let stream = match tokio::time::timeout(limits_header_timeout, acceptor.accept(socket)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(err)) => return tracing::debug!(%err, %addr, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%addr, "TLS handshake timed out"),
                    };
                    // Certificates are only ever accepted by the XKS client verifier (mTLS).
                    let client_cert = stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                    let svc = router.for_connection(Peer { addr, is_tls: true, client_cert });
                    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc).into_owned());
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "connection ended with an error");
                    }
                });
            }
        }
    }
}
