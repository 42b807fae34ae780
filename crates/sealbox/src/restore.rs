//! `sealbox restore SRC --data NEWDIR`: lays a backup out as a data directory, and serves it to
//! nobody until it has checked it: the manifest's file hashes, the root key against the key
//! store, the audit trail (hash chain and every signed digest, against the signing key the root
//! key seals, which must match the public key copy), and every object (each segment of each blob
//! decrypted and its tag checked, through the same read path GET uses). The work happens in a
//! staging directory beside NEWDIR, renamed into place only when everything checked out.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::backup::{self, Manifest, MANIFEST};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A directory written by `sealbox backup`.
    pub src: PathBuf,
    /// The new data directory (must not exist, or be empty).
    #[arg(long)]
    pub data: PathBuf,
    /// The root key file the backed-up server used (not needed if the backup was made with
    /// --with-root-key, or with SEALBOX_ROOT_PASSPHRASE / SEALBOX_PKCS11_* set).
    #[arg(long, env = "SEALBOX_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// Hard-link blobs from the backup instead of copying them (same filesystem).
    #[arg(long)]
    pub link: bool,
}

pub fn run(args: RestoreArgs) -> anyhow::Result<i32> {
    let manifest_path = args.src.join(MANIFEST);
    let manifest: Manifest = serde_json::from_slice(
        &fs::read(&manifest_path)
            .with_context(|| format!("{} is not a sealbox backup (no {MANIFEST})", args.src.display()))?,
    )
    .with_context(|| format!("while reading {}", manifest_path.display()))?;
    if manifest.format != 1 {
        bail!("backup format {} is not known to this sealbox", manifest.format);
    }
    if args.data.exists() && fs::read_dir(&args.data)?.next().is_some() {
        bail!("{} exists and is not empty: restore into a new directory", args.data.display());
    }
    let name = args.data.file_name().context("--data needs a directory name")?.to_string_lossy().into_owned();
    let staging = args.data.with_file_name(format!(".{name}.restoring"));
    if staging.exists() {
        fs::remove_dir_all(&staging)?; // left by an interrupted restore: ours, by its name
    }
    backup::prepare_empty_dir(&staging)?;
    let checked = lay_out_and_check(&args, &manifest, &staging);
    match checked {
        Ok(report) => {
            backup::sync_tree(&staging)?;
            if args.data.exists() {
                fs::remove_dir(&args.data)?;
            }
            fs::rename(&staging, &args.data)?;
            if let Some(parent) = args.data.canonicalize()?.parent() {
                fs::File::open(parent)?.sync_all()?;
            }
            println!("{report}");
            println!("restored into {}: every check passed.", args.data.display());
            if args.root_key_file.is_some() && !manifest.with_root_key {
                println!(
                    "start it with the same root key: sealbox serve --data {} --root-key-file <the key>",
                    args.data.display()
                );
            }
            Ok(0)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            eprintln!("restore FAILED, nothing was written to {}: {e:#}", args.data.display());
            Ok(1)
        }
    }
}

fn lay_out_and_check(args: &RestoreArgs, manifest: &Manifest, dir: &Path) -> anyhow::Result<String> {
    // Files: copied and held to the manifest's hashes.
    let mut linked = args.link;
    copy_backup(&args.src, &args.src, dir, &mut linked)?;
    let mut hashes = BTreeMap::new();
    backup::hash_files(dir, dir, &mut hashes)?;
    if hashes != manifest.files {
        let changed: Vec<&String> =
            manifest.files.keys().chain(hashes.keys()).filter(|k| manifest.files.get(*k) != hashes.get(*k)).collect();
        bail!("the backup's files do not match its manifest: {changed:?}");
    }
    // The root key must open the key store.
    let root = crate::serve::root_key(dir, args.root_key_file.as_deref(), false)?;
    let kms = sealbox_kms::Kms::open(
        &dir.join("kms.db"),
        root,
        Arc::new(sealbox_kms::SystemClock),
        sealbox_kms::KmsConfig { account_id: crate::iam::ACCOUNT_ID.into(), region: "us-east-1".into() },
    )
    .context("the root key does not open this backup's key store (wrong root key?)")?;
    let kms = Arc::new(kms);
    let audit = check_audit(dir, &kms)?;
    let objects = check_objects(dir, kms)?;
    Ok(format!(
        "checked: {} buckets, {} objects ({} authenticated segment by segment, {} bytes; {} SSE-C objects length-checked), \
         audit trail of {} records ({} covered by {} signed digests) verified against key {}",
        objects.buckets,
        objects.objects,
        objects.authenticated,
        objects.bytes,
        objects.customer_key_length_checked,
        audit.records,
        audit.covered_records,
        audit.digests,
        audit.key_fingerprint
    ))
}

/// Copies the backup (blobs linked with `--link`), without its manifest.
fn copy_backup(root: &Path, from: &Path, to: &Path, linked: &mut bool) -> anyhow::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root)?;
        if rel == Path::new(MANIFEST) {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&target)?;
            copy_backup(root, &path, &target, linked)?;
        } else if rel.starts_with("blobs") {
            backup::link_or_copy(&path, &target, linked)?;
        } else if entry.file_type()?.is_file() {
            backup::copy_file(&path, &target)?;
        }
    }
    Ok(())
}

/// The audit trail verifies against the signing key sealed by the root key, and the data
/// directory's public key copy is that key's.
fn check_audit(dir: &Path, kms: &sealbox_kms::Kms) -> anyhow::Result<sealbox_audit::VerifyReport> {
    let sealed = fs::read(dir.join("audit-signing.key.sealed")).context("the backup has no audit signing key")?;
    let der = kms.open_secret(&sealed, "audit signing key")?;
    let key = sealbox_audit::AuditSigner::from_pkcs8(&der)?.public_key();
    let copy = sealbox_audit::read_public_key(&sealbox_audit::public_key_path(dir))
        .context("the backup's audit public key is unreadable")?;
    if copy != key {
        bail!("the backup's audit-public-key.pem is not the public half of its sealed audit signing key");
    }
    let report =
        sealbox_audit::verify(dir, &key).map_err(|e| anyhow::anyhow!("the audit trail does not verify: {e}"))?;
    if let Some(t) = &report.torn_tail {
        bail!("the audit log {} ends in a cut line ({})", t.file, t.line);
    }
    Ok(report)
}

/// Every object's every segment, through the S3 layer's own read path.
fn check_objects(dir: &Path, kms: Arc<sealbox_kms::Kms>) -> anyhow::Result<sealbox_s3::StoredDataReport> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let meta = Arc::new(sealbox_store::MetaStore::open(&dir.join("meta.db"))?);
        let blobs = sealbox_store::BlobStore::open(dir, meta.clone())?;
        let ssec = crate::serve::ssec_secret(dir, &kms)?;
        // The metadata key (sealed by the root key, kept in meta.db) checks every record's MAC.
        let row_failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let on_failure: Arc<dyn Fn(&str) + Send + Sync> = {
            let rows = row_failures.clone();
            Arc::new(move |row: &str| rows.lock().unwrap_or_else(|e| e.into_inner()).push(row.to_owned()))
        };
        let opened = crate::meta_integrity::open(&meta, &kms, on_failure)?;
        if opened.migrated.is_some() {
            bail!(
                "the backup's metadata carries no record MACs (written by an older sealbox, or rolled back to look \
                 so): start its server once with this version, then back it up again"
            );
        }
        let keys = crate::keyservice::KmsKeys {
            kms,
            meta: meta.clone(),
            calls: Default::default(),
            // An offline check with the root key in hand: its Decrypt calls are not API calls of
            // anyone's, and the restored trail must stay exactly the backed-up one.
            audit: Arc::new(|_| Ok(())),
        };
        let enc = Arc::new(
            sealbox_s3::Encryption::new(Arc::new(keys), ssec, &opened.keys, Duration::from_secs(600))
                .map_err(|e| anyhow::anyhow!("while setting up encryption: {e}"))?,
        );
        let s3 = sealbox_s3::SealboxS3::new(meta, blobs, sealbox_s3::S3Config::default(), enc);
        let root = sealbox_s3::Caller {
            access_key_id: "sealbox-restore".into(),
            user_arn: format!("arn:aws:iam::{}:root", crate::iam::ACCOUNT_ID),
            source_ip: None,
            is_tls: true,
        };
        let report = s3.verify_stored_data(&root).await.map_err(|e| anyhow::anyhow!(e))?;
        if report.failed > 0 {
            bail!("{} objects failed their check: {}", report.failed, report.failures.join("; "));
        }
        let rows = row_failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !rows.is_empty() {
            bail!("metadata rows fail their MAC: {}", rows.join(", "));
        }
        Ok(report)
    })
}
