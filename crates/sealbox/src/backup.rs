//! `sealbox backup --data DIR DEST`: a consistent copy of a data directory while its server runs.
//!
//! What "consistent" means here: the metadata is one SQLite snapshot (online backup API, taken in
//! one step, so concurrent commits neither block it nor tear it), and every blob that snapshot
//! names is in the backup. Blobs are copied; `--link` hard-links them instead (same filesystem
//! only): instant and free, and sealbox never changes a blob in place, but the backup then shares
//! its bytes with the live data, so it guards against deletions and mistakes, not against the
//! loss of the disk or anyone writing into either copy.
//!
//! The order closes the blob life cycle's window (ARCHITECTURE.md, "Life of a blob"): a blob the
//! snapshot names may be replaced right after it and deleted once the grace period is over. So
//! 1. every blob on disk is linked (or copied) first, however long that takes;
//! 2. `meta.db` is snapshotted, then `kms.db` (after it: keys and material versions only grow
//!    until a deletion destroys them, so every key the objects need is in the later snapshot);
//! 3. the blobs the snapshot names that were written during step 1 are linked now (few, and their
//!    grace period has not even begun); one already gone means the snapshot aged past the grace
//!    period: steps 2-3 are taken again;
//! 4. blobs the snapshot does not name are dropped from the backup;
//! 5. the audit trail is copied digests first, then logs (each cut at its last complete line),
//!    and every other file of the data directory (sealed secrets, credentials, TLS files) except
//!    the root key, unless `--with-root-key`.
//!
//! A manifest (`sealbox-backup.json`) lists the files with their SHA-256; `sealbox restore` checks
//! them, every blob's tags and the audit chain.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

pub const MANIFEST: &str = "sealbox-backup.json";
const FORMAT: u32 = 1;
/// Snapshot attempts before giving up (each fails only if the server deleted a blob the snapshot
/// named before the backup could link it: a snapshot older than the grace period).
const ATTEMPTS: usize = 5;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Data directory of the (running or stopped) server.
    #[arg(long, env = "SEALBOX_DATA")]
    pub data: PathBuf,
    /// Where to write the backup: a new (or empty) directory.
    pub dest: PathBuf,
    /// Also copy the root key file (without it the backup is unreadable, by design).
    #[arg(long)]
    pub with_root_key: bool,
    /// The server's root key file, if it is not DATA/root.key (never copied unless --with-root-key).
    #[arg(long, env = "SEALBOX_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// Hard-link blobs instead of copying them (same filesystem; shares bytes with the live data).
    #[arg(long)]
    pub link: bool,
}

/// `sealbox-backup.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub sealbox_version: String,
    pub source: String,
    pub buckets: usize,
    pub objects: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    pub blobs_linked: bool,
    pub with_root_key: bool,
    /// SHA-256 of every file other than blobs, by path relative to the backup.
    pub files: BTreeMap<String, String>,
}

/// Top-level names of a data directory that are not copied as plain files.
fn handled_elsewhere(name: &str) -> bool {
    matches!(name, "blobs" | "tmp" | "audit" | "root.key")
        || name.starts_with("meta.db")
        || name.starts_with("kms.db")
        || name.ends_with(".tmp")
}

pub fn run(args: BackupArgs) -> anyhow::Result<i32> {
    let src = args.data.canonicalize().with_context(|| format!("no data directory at {}", args.data.display()))?;
    if !src.join("meta.db").exists() || !src.join("kms.db").exists() {
        bail!("{} is not a sealbox data directory (no meta.db / kms.db)", src.display());
    }
    prepare_empty_dir(&args.dest)?;
    let dest = args.dest.canonicalize()?;
    if dest.starts_with(&src) {
        bail!("the backup cannot go inside the data directory");
    }
    let mut linked = args.link;
    // 1. Every blob there is now.
    let mut in_backup = HashSet::new();
    for (id, path) in list_blobs(&src.join("blobs"))? {
        // A blob can go between the listing and the copy (its grace period ended): then no
        // snapshot taken from now on names it.
        if place_blob(&path, &dest, &id, &mut linked)? {
            in_backup.insert(id);
        }
    }
    // 2-3. Snapshot, then the blobs it names that step 1 did not see.
    let mut attempt = 0;
    let referenced = loop {
        attempt += 1;
        snapshot_sqlite(&src.join("meta.db"), &dest.join("meta.db"))?;
        snapshot_sqlite(&src.join("kms.db"), &dest.join("kms.db"))?;
        let referenced = referenced_blobs(&dest.join("meta.db"))?;
        match link_missing(&src, &dest, &referenced, &mut in_backup, &mut linked)? {
            None => break referenced,
            Some(gone) if attempt < ATTEMPTS => {
                eprintln!("blob {gone} was removed before it could be copied; taking a fresh snapshot");
            }
            Some(gone) => bail!("blob {gone} kept disappearing before it could be copied: is the disk this slow?"),
        }
    };
    // 4. Only what the snapshot names.
    let mut blob_bytes = 0;
    for id in in_backup.difference(&referenced) {
        fs::remove_file(blob_path(&dest, id))?;
    }
    for id in &referenced {
        blob_bytes += fs::metadata(blob_path(&dest, id))?.len();
    }
    // 5. The audit trail and the other files.
    copy_audit(&src.join("audit"), &dest.join("audit"))?;
    copy_other_files(&src, &dest, &args)?;
    let mut files = BTreeMap::new();
    hash_files(&dest, &dest, &mut files)?;
    let (buckets, objects) = count_objects(&dest.join("meta.db"))?;
    let manifest = Manifest {
        format: FORMAT,
        created_at: time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?,
        sealbox_version: env!("CARGO_PKG_VERSION").to_owned(),
        source: src.display().to_string(),
        buckets,
        objects,
        blobs: referenced.len(),
        blob_bytes,
        blobs_linked: linked,
        with_root_key: args.with_root_key,
        files,
    };
    sync_tree(&dest)?;
    write_durably(&dest.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?, 0o600)?;
    println!(
        "backup written to {}: {} buckets, {} objects, {} blobs ({} bytes, {}), audit trail, {} other files{}",
        dest.display(),
        buckets,
        objects,
        referenced.len(),
        blob_bytes,
        if linked { "hard-linked" } else { "copied" },
        manifest.files.len(),
        if args.with_root_key { ", root key" } else { "; no root key: it cannot be read without yours" }
    );
    Ok(0)
}

/// Creates `dir` (mode 0700) or accepts it if it exists and is empty.
pub fn prepare_empty_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if fs::read_dir(dir)?.next().is_some() {
            bail!("{} exists and is not empty", dir.display());
        }
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("while creating {}", dir.display()))
}

pub fn blob_path(root: &Path, id: &str) -> PathBuf {
    root.join("blobs").join(id.get(..2).unwrap_or("00")).join(id)
}

/// Every committed blob under `blobs/` (id, path).
pub fn list_blobs(blobs: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(fans) = fs::read_dir(blobs) else { return Ok(out) };
    for fan in fans {
        let fan = fan?;
        if !fan.file_type()?.is_dir() {
            continue;
        }
        for entry in fs::read_dir(fan.path())? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                out.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
            }
        }
    }
    Ok(out)
}

/// Hard-links `from` to `to` when `linked` (falling back to a copy, for good, across filesystems).
pub fn link_or_copy(from: &Path, to: &Path, linked: &mut bool) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
    }
    if *linked {
        match fs::hard_link(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices || e.raw_os_error() == Some(18) => {
                *linked = false;
            }
            Err(e) => return Err(e),
        }
    }
    fs::copy(from, to)?;
    fs::File::open(to)?.sync_all()
}

/// Links or copies one blob into the backup; `false` if the source is gone (deleted meanwhile).
fn place_blob(from: &Path, dest: &Path, id: &str, linked: &mut bool) -> anyhow::Result<bool> {
    let to = blob_path(dest, id);
    match link_or_copy(from, &to, linked) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !from.exists() => {
            let _ = fs::remove_file(&to);
            Ok(false)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("while copying blob {id}"))),
    }
}

/// Links the referenced blobs the backup lacks; `Some(id)` if one is gone from the source.
fn link_missing(
    src: &Path,
    dest: &Path,
    referenced: &HashSet<String>,
    in_backup: &mut HashSet<String>,
    linked: &mut bool,
) -> anyhow::Result<Option<String>> {
    for id in referenced {
        if in_backup.contains(id) {
            continue;
        }
        if !place_blob(&blob_path(src, id), dest, id, linked)? {
            return Ok(Some(id.clone()));
        }
        in_backup.insert(id.clone());
    }
    Ok(None)
}

/// One consistent copy of a live SQLite database, in a single backup step (a step-wise backup
/// would restart whenever the server commits, and could never finish under steady writes).
fn snapshot_sqlite(from: &Path, to: &Path) -> anyhow::Result<()> {
    let _ = fs::remove_file(to);
    let src = rusqlite::Connection::open(from).with_context(|| format!("while opening {}", from.display()))?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    let mut dst = rusqlite::Connection::open(to)?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => continue,
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    // One file, no WAL beside it: the backup is self-contained.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    drop(dst);
    fs::set_permissions(to, fs::Permissions::from_mode(0o600))?;
    fs::File::open(to)?.sync_all()?;
    Ok(())
}

fn referenced_blobs(meta: &Path) -> anyhow::Result<HashSet<String>> {
    let store = sealbox_store::MetaStore::open(meta)?;
    let set = store.referenced_blobs()?;
    drop(store);
    // MetaStore::open switched the snapshot to WAL: back to one self-contained file.
    let conn = rusqlite::Connection::open(meta)?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(set)
}

fn count_objects(meta: &Path) -> anyhow::Result<(usize, usize)> {
    let conn = rusqlite::Connection::open_with_flags(meta, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let buckets: i64 = conn.query_row("SELECT count(*) FROM buckets", [], |r| r.get(0))?;
    let objects: i64 = conn.query_row("SELECT count(*) FROM objects", [], |r| r.get(0))?;
    Ok((buckets as usize, objects as usize))
}

/// Digests first, then the logs: every digest copied names only log files that are already
/// complete, so the copy verifies. Each log is cut at its last complete line (the newest one may
/// be mid-append).
fn copy_audit(src: &Path, dest: &Path) -> anyhow::Result<()> {
    if !src.exists() {
        return Ok(());
    }
    let digests = src.join("digests");
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dest.join("digests"))?;
    if digests.exists() {
        for entry in fs::read_dir(&digests)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && !name.ends_with(".tmp") {
                copy_file(&entry.path(), &dest.join("digests").join(&name))?;
            }
        }
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && name.ends_with(".jsonl") {
            let mut bytes = Vec::new();
            fs::File::open(entry.path())?.read_to_end(&mut bytes)?;
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            write_durably(&dest.join(&name), &bytes[..complete], 0o600)?;
        }
    }
    Ok(())
}

fn copy_other_files(src: &Path, dest: &Path, args: &BackupArgs) -> anyhow::Result<()> {
    let root_key = args.root_key_file.clone().unwrap_or_else(|| src.join("root.key"));
    let root_key = root_key.canonicalize().ok();
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if handled_elsewhere(&name) || root_key.as_deref() == Some(entry.path().as_path()) {
            continue;
        }
        copy_tree(&entry.path(), &dest.join(&name))?;
    }
    if args.with_root_key {
        let Some(key) = root_key.filter(|p| p.is_file()) else {
            bail!("--with-root-key: there is no root key file (a passphrase or an HSM holds it: nothing to copy)");
        };
        copy_file(&key, &dest.join("root.key"))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.is_dir() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if meta.is_file() {
        copy_file(from, to)?;
    }
    Ok(())
}

/// Copies a file with its permission bits (secrets stay 0600), durably.
pub fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(from)?.permissions().mode() & 0o777;
    let bytes = fs::read(from).with_context(|| format!("while reading {}", from.display()))?;
    write_durably(to, &bytes, mode)
}

pub fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("while writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// SHA-256 of every file below `dir` except blobs and the manifest.
pub fn hash_files(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
        if rel == "blobs" || rel == MANIFEST {
            continue;
        }
        if entry.file_type()?.is_dir() {
            hash_files(root, &path, out)?;
        } else if entry.file_type()?.is_file() {
            let bytes = fs::read(&path)?;
            out.insert(rel, hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)));
        }
    }
    Ok(())
}

/// fsyncs every directory below `dir` (the files were synced as they were written).
pub fn sync_tree(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        }
    }
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_logs_are_cut_at_their_last_complete_line() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dest) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir_all(src.join("digests")).unwrap();
        fs::write(src.join("digests/d1.json"), b"{}").unwrap();
        fs::write(src.join("digests/d2.json.tmp"), b"half").unwrap();
        fs::write(src.join("audit-1.jsonl"), b"{\"seq\":1}\n{\"seq\":2}\n{\"se").unwrap();
        fs::write(src.join("writer.lock"), b"").unwrap();
        copy_audit(&src, &dest).unwrap();
        assert_eq!(fs::read(dest.join("audit-1.jsonl")).unwrap(), b"{\"seq\":1}\n{\"seq\":2}\n");
        assert!(dest.join("digests/d1.json").exists());
        assert!(!dest.join("digests/d2.json.tmp").exists());
        assert!(!dest.join("writer.lock").exists(), "the writer's lock is not part of the trail");
    }

    #[test]
    fn the_root_key_and_live_database_files_are_never_plain_copies() {
        for name in ["root.key", "meta.db", "meta.db-wal", "kms.db-shm", "blobs", "tmp", "audit", "x.tmp"] {
            assert!(handled_elsewhere(name), "{name}");
        }
        for name in ["root-credentials.json", "sse-c-secret.sealed", "audit-signing.key.sealed", "tls"] {
            assert!(!handled_elsewhere(name), "{name}");
        }
    }
}
