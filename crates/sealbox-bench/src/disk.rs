//! The raw disk under the data dir, measured in the same run: the scale every other number is
//! read against.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RawDisk {
    /// Sequential write of `bytes` in 1 MiB writes, one fsync at the end (MiB/s).
    pub write_mib_s: f64,
    /// Reading it back (MiB/s); from the device when the page cache could be dropped.
    pub read_mib_s: f64,
    /// Whether the read bypassed the page cache (posix_fadvise DONTNEED honoured).
    pub read_from_device: bool,
    /// 4 KiB appends each followed by fdatasync, per second: the ceiling for durable small PUTs.
    pub fsync_4k_per_s: f64,
    pub bytes: u64,
}

const CHUNK: usize = 1 << 20;

pub fn measure(dir: &Path, bytes: u64, fsync_for: Duration) -> anyhow::Result<RawDisk> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("sealbox-bench-raw-disk.tmp");
    let result = measure_at(&path, bytes.max(CHUNK as u64), fsync_for);
    let _ = std::fs::remove_file(&path);
    result
}

fn measure_at(path: &Path, bytes: u64, fsync_for: Duration) -> anyhow::Result<RawDisk> {
    // Not zeros: some filesystems and devices compress or skip them.
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let chunks = bytes.div_ceil(CHUNK as u64);
    let start = Instant::now();
    let file = {
        let mut f = std::fs::File::create(path)?;
        for _ in 0..chunks {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
        f
    };
    let write_secs = start.elapsed().as_secs_f64();
    // SAFETY: advisory call on a file descriptor we own; failure only means the read is cached.
    let dropped = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) } == 0;
    drop(file);
    let start = Instant::now();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut read = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
    }
    let read_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(read == chunks * CHUNK as u64, "raw disk probe read {read} bytes back");
    let mib = (chunks * CHUNK as u64) as f64 / CHUNK as f64;
    Ok(RawDisk {
        write_mib_s: mib / write_secs,
        read_mib_s: mib / read_secs,
        read_from_device: dropped,
        fsync_4k_per_s: fsynced_small_writes(path, fsync_for)?,
        bytes: chunks * CHUNK as u64,
    })
}

fn fsynced_small_writes(path: &Path, run_for: Duration) -> anyhow::Result<f64> {
    let mut f = std::fs::File::create(path)?;
    let block = [0xa5u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for || n == 0 {
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let d = measure(dir.path(), 4 << 20, Duration::from_millis(50)).unwrap();
        assert!(d.write_mib_s > 0.0 && d.read_mib_s > 0.0 && d.fsync_4k_per_s > 0.0);
        assert_eq!(d.bytes, 4 << 20);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
