//! Object bodies made on the fly and checked on the way back, never held whole in memory.
//!
//! Object `id` of `size` bytes = a 16-byte tag naming the object, then a fixed 1 MiB
//! pseudo-random pattern repeated. A GET checks the tag (so one object is not served for another)
//! and a CRC32C of the rest against the CRC of the pattern run of that length, computed once per
//! size: cheap enough that the client stays far from being the bottleneck.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

const PATTERN_LEN: usize = 1 << 20;
const TAG_LEN: usize = 16;
const CRC: crc_fast::CrcAlgorithm = crc_fast::CrcAlgorithm::Crc32Iscsi;

/// Made once; every body is slices of it (no per-request copy for big bodies).
fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        // xorshift64*: incompressible enough, and the same on every run.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::with_capacity(PATTERN_LEN);
        while out.len() < PATTERN_LEN {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        Bytes::from(out)
    })
}

fn tag(id: u64) -> [u8; TAG_LEN] {
    let mut t = [0u8; TAG_LEN];
    t[..8].copy_from_slice(&id.to_le_bytes());
    t[8..].copy_from_slice(&(!id).to_le_bytes());
    t
}

/// The body of object `id`, `size` bytes long.
pub fn object_body(id: u64, size: u64) -> BoxBody {
    let tag = tag(id);
    let head_len = (size as usize).min(TAG_LEN);
    let rest = size - head_len as u64;
    if rest <= PATTERN_LEN as u64 {
        // Small bodies go out in one piece with the request head.
        let mut all = Vec::with_capacity(size as usize);
        all.extend_from_slice(&tag[..head_len]);
        all.extend_from_slice(&pattern()[..rest as usize]);
        return Full::new(Bytes::from(all)).map_err(|never| match never {}).boxed();
    }
    let head = Bytes::copy_from_slice(&tag[..head_len]);
    let frames = futures::stream::unfold((Some(head), rest), |(head, left)| async move {
        if let Some(head) = head {
            return Some((Ok(hyper::body::Frame::data(head)), (None, left)));
        }
        if left == 0 {
            return None;
        }
        let n = left.min(PATTERN_LEN as u64) as usize;
        Some((Ok::<_, std::io::Error>(hyper::body::Frame::data(pattern().slice(..n))), (None, left - n as u64)))
    });
    StreamBody::new(frames).boxed()
}

pub fn empty_body() -> BoxBody {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
}

pub fn bytes_body(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// CRC32C of `len` bytes of the repeated pattern, remembered per length.
fn expected_rest_crc(len: u64) -> u64 {
    static CACHE: OnceLock<Mutex<HashMap<u64, u64>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(crc) = cache.lock().ok().and_then(|c| c.get(&len).copied()) {
        return crc;
    }
    let mut digest = crc_fast::Digest::new(CRC);
    let mut left = len;
    while left > 0 {
        let n = left.min(PATTERN_LEN as u64) as usize;
        digest.update(&pattern()[..n]);
        left -= n as u64;
    }
    let crc = digest.finalize();
    if let Ok(mut c) = cache.lock() {
        c.insert(len, crc);
    }
    crc
}

/// Checks a GET body as it streams past.
pub struct BodyCheck {
    id: u64,
    expected_len: u64,
    seen: u64,
    head: Vec<u8>,
    digest: crc_fast::Digest,
}

impl BodyCheck {
    pub fn new(id: u64, expected_len: u64) -> Self {
        Self { id, expected_len, seen: 0, head: Vec::with_capacity(TAG_LEN), digest: crc_fast::Digest::new(CRC) }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.seen += data.len() as u64;
        if self.head.len() < TAG_LEN {
            let take = data.len().min(TAG_LEN - self.head.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        self.digest.update(data);
    }

    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// Ok when the body was exactly object `id`'s.
    pub fn finish(self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.seen == self.expected_len,
            "object {} came back with {} bytes, not {}",
            self.id,
            self.seen,
            self.expected_len
        );
        let head_len = (self.expected_len as usize).min(TAG_LEN);
        anyhow::ensure!(
            self.head[..] == tag(self.id)[..head_len],
            "object {} came back with another object's tag",
            self.id
        );
        let rest = self.expected_len - head_len as u64;
        anyhow::ensure!(
            self.digest.finalize() == expected_rest_crc(rest),
            "object {} came back corrupted (CRC32C)",
            self.id
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: BoxBody) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn bodies_have_their_size_and_pass_their_check() {
        for size in [0u64, 5, 16, 17, 4096, 1 << 20, (1 << 20) + 16, (1 << 20) + 17, 3 << 20] {
            let bytes = collect(object_body(7, size)).await;
            assert_eq!(bytes.len() as u64, size);
            let mut check = BodyCheck::new(7, size);
            // Odd-sized pieces, as a network would deliver them.
            for piece in bytes.chunks(1000) {
                check.update(piece);
            }
            check.finish().unwrap();
        }
    }

    #[tokio::test]
    async fn the_check_catches_wrong_object_short_body_and_flipped_byte() {
        let size = (2 << 20) + 5;
        let bytes = collect(object_body(1, size)).await;
        let mut other = BodyCheck::new(2, size);
        other.update(&bytes);
        assert!(other.finish().is_err());
        let mut short = BodyCheck::new(1, size);
        short.update(&bytes[..bytes.len() - 1]);
        assert!(short.finish().is_err());
        let mut flipped = bytes.clone();
        flipped[1 << 20] ^= 1;
        let mut check = BodyCheck::new(1, size);
        check.update(&flipped);
        assert!(check.finish().is_err());
    }
}
