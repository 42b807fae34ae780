//! The server under test: started by the bench on a temp data dir, or one already running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::client::S3Client;
use crate::BenchOpts;

/// How long a fresh server may take to answer /health/live (first start creates keys).
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ServerUnderTest {
    pub client: S3Client,
    /// For /proc readings; `None` for a remote server without --server-pid.
    pub pid: Option<u32>,
    /// Where the data lives (the raw disk probe runs there).
    pub data_dir: PathBuf,
    /// True when the bench started it.
    pub spawned: bool,
    /// XKS credentials (access key id, secret) and `XksProxyUriPath`, when known.
    pub xks: Option<(String, sealbox_auth::SecretAccessKey, String)>,
    child: Option<Child>,
    _temp: Option<tempfile::TempDir>,
}

impl ServerUnderTest {
    pub async fn start_or_attach(opts: &BenchOpts) -> anyhow::Result<Self> {
        let work_dir = match &opts.work_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()?,
        };
        if let Some(endpoint) = &opts.endpoint {
            let (Some(ak), Some(sk)) = (&opts.access_key, &opts.secret_key) else {
                anyhow::bail!("--endpoint needs --access-key and --secret-key");
            };
            let client = S3Client::new(endpoint, ak, sk.expose(), &opts.region)?;
            let uri_path = format!("/{}/kms/xks/v1", opts.xks_path_prefix.trim_matches('/')).replace("//", "/");
            let xks = match (&opts.xks_access_key, &opts.xks_secret_key) {
                (Some(id), Some(secret)) => Some((id.clone(), secret.clone(), uri_path)),
                _ => None,
            };
            return Ok(Self {
                client,
                pid: opts.server_pid,
                data_dir: work_dir,
                spawned: false,
                xks,
                child: None,
                _temp: None,
            });
        }
        let server_bin = match &opts.server_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe().context("finding this executable to start as the server")?,
        };
        Self::spawn(&server_bin, &work_dir, &opts.region).await
    }

    async fn spawn(server_bin: &Path, work_dir: &Path, region: &str) -> anyhow::Result<Self> {
        let temp = tempfile::Builder::new()
            .prefix("sealbox-bench-")
            .tempdir_in(work_dir)
            .with_context(|| format!("creating a temp dir in {}", work_dir.display()))?;
        let data_dir = temp.path().join("data");
        let log_path = temp.path().join("server.log");
        let port = free_port()?;
        let log = std::fs::File::create(&log_path)?;
        let (xks_id, xks_secret) = crate::xks::fresh_credentials()?;
        let xks_file = temp.path().join("xks-credentials.toml");
        write_private(
            &xks_file,
            &format!("[[credential]]\naccess_key_id = \"{xks_id}\"\nsecret_access_key = \"{xks_secret}\"\n"),
        )?;
        let child = Command::new(server_bin)
            .arg("serve")
            .arg("--data")
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--region", region])
            // SSE-C keys would otherwise be refused over plain HTTP; this is loopback only.
            .arg("--insecure-allow-sse-c-over-http")
            // The XKS proxy API, over the same loopback HTTP (so no TLS in its latency either).
            .arg("--xks-credentials")
            .arg(&xks_file)
            .arg("--insecure-allow-xks-over-http")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve", server_bin.display()))?;
        let pid = child.id();
        let mut server = Self {
            client: S3Client::new(&format!("http://127.0.0.1:{port}"), "pending", "pending", region)?,
            pid: Some(pid),
            data_dir: data_dir.clone(),
            spawned: true,
            xks: Some((xks_id, sealbox_auth::SecretAccessKey::new(xks_secret), "/kms/xks/v1".to_owned())),
            child: Some(child),
            _temp: None,
        };
        if let Err(e) = server.wait_until_live().await {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: String =
                log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            return Err(e.context(format!("server log ({}):\n{tail}", log_path.display())));
        }
        let (ak, sk) = read_root_credentials(&data_dir)?;
        server.client = S3Client::new(&format!("http://127.0.0.1:{port}"), &ak, &sk, region)?;
        server._temp = Some(temp);
        Ok(server)
    }

    async fn wait_until_live(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("the server exited during start ({status})");
                }
            }
            if matches!(self.client.get_unsigned("/health/live").await, Ok(200)) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not answer /health/live within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks a started server to shut down (SIGTERM), then kills it if it lingers.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: kill(2) on the pid of a child we started and have not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes a file only its owner can read (the server refuses XKS credentials others can).
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn read_root_credentials(data_dir: &Path) -> anyhow::Result<(String, String)> {
    let path = data_dir.join("root-credentials.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let field = |name: &str| -> anyhow::Result<String> {
        value[name].as_str().map(str::to_owned).with_context(|| format!("{} has no {name}", path.display()))
    };
    Ok((field("access_key_id")?, field("secret_access_key")?))
}

/// Memory of a process from /proc/<pid>/status, in bytes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    /// Resident now (VmRSS).
    pub rss: u64,
    /// Peak resident since start or the last reset (VmHWM).
    pub hwm: u64,
}

pub fn read_memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    };
    Some(Memory { rss: field("VmRSS:")?, hwm: field("VmHWM:")? })
}

/// Resets VmHWM to the current RSS (Linux: write 5 to clear_refs), so the next peak belongs to
/// the next transfer alone. False when not allowed (another user's process, old kernel).
pub fn reset_peak_memory(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_memory_and_resets_its_peak() {
        let me = std::process::id();
        let m = read_memory(me).unwrap();
        assert!(m.rss > 0 && m.hwm >= m.rss);
        if reset_peak_memory(me) {
            let after = read_memory(me).unwrap();
            assert!(after.hwm <= m.hwm);
        }
        assert!(read_memory(u32::MAX).is_none());
    }

    #[test]
    fn root_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root-credentials.json"), r#"{"access_key_id":"AK","secret_access_key":"SK"}"#)
            .unwrap();
        assert_eq!(read_root_credentials(dir.path()).unwrap(), ("AK".into(), "SK".into()));
        std::fs::write(dir.path().join("root-credentials.json"), "{}").unwrap();
        assert!(read_root_credentials(dir.path()).is_err());
    }
}
