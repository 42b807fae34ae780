//! Flexible checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) and MD5, computed over plaintext as
//! it streams by. Values are base64 of the big-endian digest, as on the wire.

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use md5::{Digest as _, Md5};
use s3s::{s3_error, S3Result};

/// The algorithms the wire knows, by their S3 names.
pub(crate) const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/// What S3 computes for an upload that names no checksum (AWS does so for every new object since
/// 2024): a CRC64NVME of the whole object, also for multipart objects (combined from the parts).
pub(crate) const DEFAULT_ALGORITHM: &str = "CRC64NVME";

pub(crate) fn header_name(alg: &str) -> String {
    format!("x-amz-checksum-{}", alg.to_ascii_lowercase())
}

/// An algorithm name from the wire (`x-amz-checksum-algorithm`, `x-amz-sdk-checksum-algorithm`),
/// any case; the ones S3 has added since (SHA512, MD5, XXHASH*) are refused, never ignored.
pub(crate) fn parse_algorithm(name: &str) -> S3Result<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    ALGORITHMS
        .iter()
        .copied()
        .find(|a| *a == upper)
        .ok_or_else(|| s3_error!(InvalidRequest, "Checksum algorithm {name} is not supported"))
}

/// The algorithm an upload names: `x-amz-sdk-checksum-algorithm` (what SDKs send; s3s 0.14 does
/// not read it), else what s3s parsed (`x-amz-checksum-algorithm`, or the trailer's name).
pub(crate) fn named_algorithm(
    headers: &http::HeaderMap,
    parsed: Option<&s3s::dto::ChecksumAlgorithm>,
) -> Option<String> {
    headers
        .get("x-amz-sdk-checksum-algorithm")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| parsed.map(|a| a.as_str().to_owned()))
}

/// `x-amz-checksum-*` headers s3s does not model (checksums of algorithms we do not compute):
/// refused, so a checksum the client relies on is never silently left unchecked.
pub(crate) fn reject_unknown_checksum_headers(headers: &http::HeaderMap) -> S3Result<()> {
    const KNOWN: [&str; 8] = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256", "mode", "algorithm", "type"];
    for name in headers.keys() {
        if let Some(rest) = name.as_str().strip_prefix("x-amz-checksum-") {
            if !KNOWN.contains(&rest) {
                return Err(s3_error!(
                    InvalidRequest,
                    "The {} checksum is not supported; use CRC32, CRC32C, CRC64NVME, SHA1 or SHA256.",
                    rest.to_ascii_uppercase()
                ));
            }
        }
    }
    Ok(())
}

/// The base64 value of a composite checksum without its `-N` part count (GetObjectAttributes
/// shows it so).
pub(crate) fn without_part_count(value: &str) -> &str {
    match value.rsplit_once('-') {
        Some((v, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => v,
        _ => value,
    }
}

/// The five modelled checksum fields of an S3 shape, from a map by algorithm name.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChecksumFields {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

impl ChecksumFields {
    pub(crate) fn of(map: &BTreeMap<String, String>) -> Self {
        let get = |a: &str| map.get(a).filter(|v| !v.is_empty()).cloned();
        Self {
            crc32: get("CRC32"),
            crc32c: get("CRC32C"),
            crc64nvme: get("CRC64NVME"),
            sha1: get("SHA1"),
            sha256: get("SHA256"),
        }
    }

    /// The fields as (algorithm, value) pairs, for request shapes (`CompletedPart`, Complete).
    pub(crate) fn pairs<'a>(
        crc32: Option<&'a String>,
        crc32c: Option<&'a String>,
        crc64nvme: Option<&'a String>,
        sha1: Option<&'a String>,
        sha256: Option<&'a String>,
    ) -> [(&'static str, Option<&'a String>); 5] {
        [("CRC32", crc32), ("CRC32C", crc32c), ("CRC64NVME", crc64nvme), ("SHA1", sha1), ("SHA256", sha256)]
    }
}

enum Hasher {
    Crc(Box<CrcDigest>, usize),
    Sha(Box<digest::Context>),
}

impl Hasher {
    fn new(alg: &str) -> Option<Self> {
        Some(match alg {
            "CRC32" => Hasher::Crc(Box::new(CrcDigest::new(CrcAlgorithm::Crc32IsoHdlc)), 4),
            "CRC32C" => Hasher::Crc(Box::new(CrcDigest::new(CrcAlgorithm::Crc32Iscsi)), 4),
            "CRC64NVME" => Hasher::Crc(Box::new(CrcDigest::new(CrcAlgorithm::Crc64Nvme)), 8),
            "SHA1" => Hasher::Sha(Box::new(digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY))),
            "SHA256" => Hasher::Sha(Box::new(digest::Context::new(&digest::SHA256))),
            _ => return None,
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d, _) => d.update(data),
            Hasher::Sha(c) => c.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc(d, width) => {
                let v = d.finalize();
                v.to_be_bytes()[8 - width..].to_vec()
            }
            Hasher::Sha(c) => c.finish().as_ref().to_vec(),
        }
    }
}

/// Hashes a body once for everything the request needs: MD5 (ETag / Content-MD5) and any
/// flexible checksums.
pub(crate) struct BodyHasher {
    /// Only when something needs it (SSE-S3 ETags, Content-MD5): MD5 is the slowest hash here.
    md5: Option<Md5>,
    checksums: Vec<(&'static str, Hasher)>,
}

impl BodyHasher {
    pub(crate) fn new(algorithms: &[&'static str], with_md5: bool) -> Self {
        let checksums = algorithms.iter().filter_map(|a| Hasher::new(a).map(|h| (*a, h))).collect();
        Self { md5: with_md5.then(Md5::new), checksums }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        if let Some(m) = &mut self.md5 {
            m.update(data);
        }
        for (_, h) in &mut self.checksums {
            h.update(data);
        }
    }

    /// (MD5 digest, checksums by algorithm as base64).
    pub(crate) fn finish(self) -> (Option<[u8; 16]>, BTreeMap<String, String>) {
        let md5: Option<[u8; 16]> = self.md5.map(|m| m.finalize().into());
        let sums = self.checksums.into_iter().map(|(a, h)| (a.to_owned(), B64.encode(h.finish()))).collect();
        (md5, sums)
    }
}

/// What the client asked us to verify, gathered from headers (and later the trailer).
#[derive(Debug, Default, Clone)]
pub(crate) struct ChecksumRequest {
    /// Algorithm -> expected base64 value (None = value arrives in the trailer).
    pub expected: BTreeMap<&'static str, Option<String>>,
}

impl ChecksumRequest {
    /// The one algorithm the client sent a checksum of (header or trailer), if any.
    pub(crate) fn client_algorithm(&self) -> Option<&'static str> {
        self.expected.keys().next().copied()
    }

    /// Builds the request from the modelled header fields. `sdk_algorithm` is
    /// `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm`.
    pub(crate) fn from_headers(
        values: [(&'static str, Option<&String>); 5],
        sdk_algorithm: Option<&str>,
        trailer_names: Option<&str>,
    ) -> S3Result<Self> {
        let mut req = ChecksumRequest::default();
        for (alg, v) in values {
            if let Some(v) = v {
                req.expected.insert(alg, Some(v.clone()));
            }
        }
        if let Some(trailer) = trailer_names {
            for name in trailer.split(',').map(str::trim) {
                let alg = ALGORITHMS
                    .iter()
                    .find(|a| header_name(a) == name.to_ascii_lowercase())
                    .ok_or_else(|| s3_error!(InvalidRequest, "Unsupported trailer {name}"))?;
                req.expected.entry(alg).or_insert(None);
            }
        }
        if let Some(sdk) = sdk_algorithm {
            let alg = parse_algorithm(sdk)?;
            if !req.expected.contains_key(alg) {
                // The SDK names an algorithm but sent no value: AWS rejects this.
                if req.expected.is_empty() {
                    return Err(s3_error!(
                        InvalidRequest,
                        "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found."
                    ));
                }
                return Err(s3_error!(BadDigest, "The checksum algorithm does not match the checksum provided"));
            }
        }
        if req.expected.len() > 1 {
            return Err(s3_error!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            ));
        }
        Ok(req)
    }

    /// Fills values that arrived in the aws-chunked trailer.
    pub(crate) fn fill_from_trailer(&mut self, trailers: &http::HeaderMap) -> S3Result<()> {
        for (alg, value) in &mut self.expected {
            if value.is_none() {
                if let Some(v) = trailers.get(header_name(alg)) {
                    *value = Some(v.to_str().map_err(|_| s3_error!(InvalidRequest, "bad trailer value"))?.to_owned());
                }
            }
        }
        Ok(())
    }

    /// Compares what we computed with what the client claimed.
    pub(crate) fn verify(&self, computed: &BTreeMap<String, String>) -> S3Result<()> {
        for (alg, expected) in &self.expected {
            let Some(expected) = expected else {
                return Err(s3_error!(
                    BadDigest,
                    "The x-amz-checksum-{} trailer was announced but not sent",
                    alg.to_ascii_lowercase()
                ));
            };
            if computed.get(*alg) != Some(expected) {
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified did not match the calculated checksum.",
                    header_name(alg)
                ));
            }
        }
        Ok(())
    }
}

/// Checks `Content-MD5` against the computed MD5 (InvalidDigest when malformed, BadDigest when wrong).
pub(crate) fn verify_content_md5(content_md5: Option<&str>, md5: Option<&[u8; 16]>) -> S3Result<()> {
    let Some(v) = content_md5 else { return Ok(()) };
    let Some(md5) = md5 else { return Err(crate::error::internal("content-md5", "MD5 was not computed")) };
    let decoded =
        B64.decode(v.trim()).map_err(|_| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))?;
    if decoded.len() != 16 {
        return Err(s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."));
    }
    if decoded != md5 {
        return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."));
    }
    Ok(())
}

/// Multipart ETag: hex MD5 of the concatenated binary part MD5s, then `-N`.
pub(crate) fn multipart_etag(part_etags: &[String]) -> String {
    let mut md5 = Md5::new();
    for etag in part_etags {
        if let Ok(bin) = hex::decode(etag) {
            md5.update(&bin);
        }
    }
    format!("{}-{}", hex::encode(md5.finalize()), part_etags.len())
}

/// Composite multipart checksum: the checksum of the concatenated binary part checksums, `-N`.
pub(crate) fn composite_checksum(alg: &str, part_values: &[String]) -> Option<String> {
    let mut h = Hasher::new(alg)?;
    for v in part_values {
        h.update(&B64.decode(v).ok()?);
    }
    Some(format!("{}-{}", B64.encode(h.finish()), part_values.len()))
}

/// FULL_OBJECT multipart checksum for CRCs: combine the part CRCs into the CRC of the whole.
pub(crate) fn full_object_crc(alg: &str, parts: &[(String, u64)]) -> Option<String> {
    let (algo, width) = match alg {
        "CRC32" => (CrcAlgorithm::Crc32IsoHdlc, 4),
        "CRC32C" => (CrcAlgorithm::Crc32Iscsi, 4),
        "CRC64NVME" => (CrcAlgorithm::Crc64Nvme, 8),
        _ => return None,
    };
    let mut acc: Option<u64> = None;
    for (v, len) in parts {
        let bytes = B64.decode(v).ok()?;
        if bytes.len() != width {
            return None;
        }
        let mut buf = [0u8; 8];
        buf[8 - width..].copy_from_slice(&bytes);
        let crc = u64::from_be_bytes(buf);
        acc = Some(match acc {
            None => crc,
            Some(a) => crc_fast::checksum_combine(algo, a, crc, *len),
        });
    }
    let v = acc.unwrap_or(0);
    Some(B64.encode(&v.to_be_bytes()[8 - width..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_wire_example() {
        // From the captured botocore trailer: "hello world" -> DUoRhQ==
        let mut h = BodyHasher::new(&["CRC32"], true);
        h.update(b"hello ");
        h.update(b"world");
        let (md5, sums) = h.finish();
        assert_eq!(sums["CRC32"], "DUoRhQ==");
        assert_eq!(hex::encode(md5.unwrap()), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    }

    #[test]
    fn full_object_crc_combines_parts() {
        let whole = {
            let mut h = BodyHasher::new(&["CRC32C", "CRC64NVME"], false);
            h.update(b"hello world, this is sealbox");
            h.finish().1
        };
        for alg in ["CRC32C", "CRC64NVME"] {
            let parts: Vec<(String, u64)> = [&b"hello world"[..], b", this is sealbox"]
                .iter()
                .map(|p| {
                    let mut h = BodyHasher::new(&[if alg == "CRC32C" { "CRC32C" } else { "CRC64NVME" }], false);
                    h.update(p);
                    (h.finish().1[alg].clone(), p.len() as u64)
                })
                .collect();
            assert_eq!(full_object_crc(alg, &parts).as_deref(), Some(whole[alg].as_str()));
        }
    }

    #[test]
    fn multipart_etag_shape() {
        let e = multipart_etag(&["5eb63bbbe01eeed093cb22bb8f5acdc3".into(), "5eb63bbbe01eeed093cb22bb8f5acdc3".into()]);
        assert!(e.ends_with("-2"));
        assert_eq!(e.len(), 34);
    }
}
