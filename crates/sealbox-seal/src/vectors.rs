//! Known-answer vectors from `tests/reference_impl.py`, an independent implementation of
//! docs/object-format.md. If these fail, the on-disk format changed: bump `FORMAT_VERSION` and
//! keep reading version 1 instead of editing the vectors.

use aws_lc_rs::digest::{digest, SHA256};

use crate::header::ObjectHeader;
use crate::{DataKey, ObjectSealer, SEGMENT_SIZE};

const SALT1: [u8; 32] = [0xa1; 32];
const SALT2: [u8; 32] = [0xb2; 32];

fn key(first: u8) -> DataKey {
    DataKey::from_bytes(&(first..first + 32).collect::<Vec<u8>>()).unwrap()
}

fn seal(keys: &[DataKey], salts: &[[u8; 32]], plaintext: &[u8]) -> Vec<u8> {
    let mut sealer = ObjectSealer::with_header(keys, ObjectHeader::with_salts(salts)).unwrap();
    let mut out = Vec::new();
    sealer.push(plaintext, &mut out).unwrap();
    sealer.finish(&mut out).unwrap();
    out.concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const HEADER_1: &str =
    "5345414c424f58000101000000010000a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

#[test]
fn empty_object_one_layer() {
    let sealed = seal(&[key(0)], &[SALT1], b"");
    assert_eq!(hex(&sealed), format!("{HEADER_1}e33c3b7e55291f24484ce5d60b6924f3"));
}

#[test]
fn short_object_one_layer() {
    let sealed = seal(&[key(0)], &[SALT1], b"hello");
    assert_eq!(hex(&sealed), format!("{HEADER_1}ddbeb7c29917e47302918d792849a0bca5fb1abbef"));
}

#[test]
fn two_segments_two_layers() {
    let plaintext: Vec<u8> = (0..SEGMENT_SIZE + 3).map(|i| (i % 251) as u8).collect();
    let sealed = seal(&[key(0), key(32)], &[SALT1, SALT2], &plaintext);
    let want = "1b906f9d7064a25a577d94cb6f1f35bf5767f53af3f784fa2d140ef7edb6b2aa";
    assert_eq!(hex(digest(&SHA256, &sealed).as_ref()), want);
}

#[test]
fn bound_key() {
    let bound = key(0).bound_to(b"part 7").unwrap();
    assert_eq!(hex(bound.expose_secret()), "a941ec29a9b418c93a8bed813959913cf28e181edce0ed0fdb2d6c81f20f74f7");
}
