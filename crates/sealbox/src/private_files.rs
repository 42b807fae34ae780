//! Files only the server's user may read: every file that holds a secret (sealed or not) and
//! the databases are 0600, like `root.key`. New files are private from birth (the server runs
//! with umask 077, so SQLite's `-wal`/`-shm`, blobs and audit files are too); files an older
//! version or an operator left wider are tightened at start, each one logged.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Files in the data dir that hold a secret: the root credentials, secrets sealed by the root
/// key (SSE-C recognition key, audit signing key), the TLS private key of `--tls auto`.
/// (`root.key` itself is checked by the key service, which refuses to start when it is wider.)
pub const SECRET_FILES: &[&str] =
    &[crate::credentials::FILE, "sse-c-secret.sealed", "audit-signing.key.sealed", "tls/key.pem"];

/// The SQLite databases (wrapped key material, wrapped access-key secrets, object records).
pub const DATABASES: &[&str] = &["meta.db", "kms.db"];

/// SQLite's companions of a database file, which hold the same data.
const SQLITE_SUFFIXES: &[&str] = &["", "-wal", "-shm", "-journal"];

/// Every file created by this process from now on is private: files 0600, directories 0700.
pub fn restrict_umask() {
    // SAFETY: umask(2) only swaps the process's file-creation mask; it cannot fail and touches
    // no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// The secret files and databases under `data` (those that exist).
pub fn private_paths(data: &Path) -> Vec<PathBuf> {
    let databases = DATABASES.iter().flat_map(|db| SQLITE_SUFFIXES.iter().map(move |s| data.join(format!("{db}{s}"))));
    SECRET_FILES.iter().map(|f| data.join(f)).chain(databases).filter(|p| p.is_file()).collect()
}

/// Sets every secret file and database under `data` that is readable or writable by group or
/// others to 0600; returns the files changed.
pub fn tighten(data: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir_mode =
        std::fs::metadata(data).with_context(|| format!("while checking {}", data.display()))?.permissions().mode();
    if dir_mode & 0o077 != 0 {
        // Not changed: an operator may share the directory on purpose; its secrets are private.
        tracing::warn!(dir = %data.display(), mode = format!("{:o}", dir_mode & 0o777), "the data directory is open to group or others; 700 is recommended");
    }
    let mut changed = Vec::new();
    for path in private_paths(data) {
        let mode = std::fs::metadata(&path)
            .with_context(|| format!("while checking {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("while making {} private (chmod 600)", path.display()))?;
            tracing::warn!(file = %path.display(), was = format!("{:o}", mode & 0o777), "made private (mode 600)");
            changed.push(path);
        }
    }
    Ok(changed)
}

/// Writes `bytes` to `path` with exactly `mode` (whatever the umask), all or nothing: a temp
/// file, fsynced, renamed over `path`, the directory fsynced. A crash leaves the old file or the
/// new one, never half a sealed secret.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("while writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn tighten_fixes_wide_secret_files_and_databases_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("tls")).unwrap();
        let wide =
            ["sse-c-secret.sealed", "audit-signing.key.sealed", "meta.db", "meta.db-wal", "kms.db-shm", "tls/key.pem"];
        for f in wide.iter().chain(["tls/ca.pem", "audit-public-key.pem"].iter()) {
            std::fs::write(d.join(f), b"x").unwrap();
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        write_atomic(&d.join(crate::credentials::FILE), b"{}", 0o600).unwrap();
        let changed = tighten(d).unwrap();
        assert_eq!(changed.len(), wide.len(), "{changed:?}");
        for f in wide.iter().chain([crate::credentials::FILE].iter()) {
            assert_eq!(mode(&d.join(f)), 0o600, "{f}");
        }
        // Public files are not ours to change.
        assert_eq!(mode(&d.join("tls/ca.pem")), 0o644);
        assert_eq!(mode(&d.join("audit-public-key.pem")), 0o644);
        assert!(tighten(d).unwrap().is_empty(), "nothing left to fix");
    }

    #[test]
    fn write_atomic_sets_the_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sealed");
        write_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!((std::fs::read(&p).unwrap(), mode(&p)), (b"one".to_vec(), 0o600));
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!((std::fs::read(&p).unwrap(), mode(&p)), (b"two".to_vec(), 0o644));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }
}
