#!/usr/bin/env python3
"""An independent implementation of the sealed object format, written from docs/object-format.md
with Python's `cryptography` package. It prints the known-answer vectors that
`src/vectors.rs` checks the Rust implementation against, so the document, this script and the
crate must all agree. Run: python3 crates/sealbox-seal/tests/reference_impl.py
"""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEGMENT_SIZE = 65536


def header(salts):
    return b"SEALBOX\0" + bytes([1, len(salts), 0, 0]) + struct.pack(">I", SEGMENT_SIZE) + b"".join(salts)


def segment_key(data_key, salt, layer, layers):
    info = b"sealbox-seal segment key" + bytes([1, layer, layers])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(data_key)


def seal(data_keys, salts, plaintext):
    hdr = header(salts)
    layers = len(data_keys)
    keys = [AESGCM(segment_key(k, s, i + 1, layers)) for i, (k, s) in enumerate(zip(data_keys, salts))]
    segments = [plaintext[i:i + SEGMENT_SIZE] for i in range(0, len(plaintext), SEGMENT_SIZE)] or [b""]
    out = hdr
    for index, segment in enumerate(segments):
        is_final = index == len(segments) - 1
        nonce = bytes(4) + struct.pack(">Q", index)
        for layer, key in enumerate(keys, start=1):
            aad = hdr + struct.pack(">Q", index) + bytes([is_final, layer])
            segment = key.encrypt(nonce, segment, aad)  # ciphertext || 16-byte tag
        out += segment
    return out


def bound_to(data_key, binding):
    info = b"sealbox-seal bound data key" + binding
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)


KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))
SALT1 = bytes([0xA1]) * 32
SALT2 = bytes([0xB2]) * 32
LONG = bytes(i % 251 for i in range(SEGMENT_SIZE + 3))

if __name__ == "__main__":
    print("empty, 1 layer:  ", seal([KEY1], [SALT1], b"").hex())
    print("hello, 1 layer:  ", seal([KEY1], [SALT1], b"hello").hex())
    print("long, 2 layers sha256:", hashlib.sha256(seal([KEY1, KEY2], [SALT1, SALT2], LONG)).hexdigest())
    print("bound_to(KEY1, b'part 7'):", bound_to(KEY1, b"part 7").hex())
