"""Wire-level helpers for the S3 surface tests: requests signed by botocore but sent exactly as
written (chunked, aws-chunked with signed trailers, Expect: 100-continue over a raw socket), and
the checksums the standard library lacks (CRC32C, CRC64NVME), written out from their
definitions so the tests do not trust the server's own implementation."""

import base64
import hashlib
import hmac
import re
import socket
import zlib

from botocore.auth import HmacV1Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _reflected_table(poly, width):
    mask = (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc & mask)
    return table


_CRC32C = _reflected_table(0x82F63B78, 32)
_CRC64NVME = _reflected_table(0x9A6C9329AC4BC9B5, 64)


def _crc(table, width, data):
    mask = (1 << width) - 1
    crc = mask
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ mask


def crc32c(data):
    return _crc(_CRC32C, 32, data)


def crc64nvme(data):
    return _crc(_CRC64NVME, 64, data)


def checksum(algorithm, data):
    """The base64 wire value of `algorithm` over `data` (AWS contract A.3)."""
    if algorithm == "CRC32":
        raw = zlib.crc32(data).to_bytes(4, "big")
    elif algorithm == "CRC32C":
        raw = crc32c(data).to_bytes(4, "big")
    elif algorithm == "CRC64NVME":
        raw = crc64nvme(data).to_bytes(8, "big")
    elif algorithm == "SHA1":
        raw = hashlib.sha1(data).digest()
    elif algorithm == "SHA256":
        raw = hashlib.sha256(data).digest()
    else:
        raise ValueError(algorithm)
    return base64.b64encode(raw).decode()


def composite(algorithm, part_values):
    """COMPOSITE multipart checksum: the checksum of the concatenated binary part checksums, -N."""
    joined = b"".join(base64.b64decode(v) for v in part_values)
    return f"{checksum(algorithm, joined)}-{len(part_values)}"


def creds(server):
    return Credentials(server.access_key, server.secret_key)


def url(server, path, query="", tls=False):
    base = f"https://127.0.0.1:{server.tls_port}" if tls else f"http://127.0.0.1:{server.port}"
    return base + path + (f"?{query}" if query else "")


class _FixedPayload(S3SigV4Auth):
    """SigV4 with the x-amz-content-sha256 line we choose (UNSIGNED-PAYLOAD, STREAMING-...)."""

    def __init__(self, credentials, region, payload):
        super().__init__(credentials, "s3", region)
        self._payload = payload

    def payload(self, request):
        return self._payload


def sign_v4(server, method, path, body=b"", headers=None, query="", region="us-east-1", payload=None):
    """Headers of a SigV4 header-signed request, as botocore signs them (every header named)."""
    req = AWSRequest(method=method, url=url(server, path, query), data=body, headers=dict(headers or {}))
    auth = _FixedPayload(creds(server), region, payload) if payload else S3SigV4Auth(creds(server), "s3", region)
    auth.add_auth(req)
    return dict(req.headers)


def sign_v2(server, method, path, headers=None, secret=None, access_key=None):
    """Headers of a SigV2 header-signed request (botocore's HmacV1Auth, what `s3` signing does)."""
    req = AWSRequest(method=method, url=url(server, path), headers=dict(headers or {}))
    HmacV1Auth(Credentials(access_key or server.access_key, secret or server.secret_key)).add_auth(req)
    return dict(req.headers)


def sigv2_signature(server, method, path, headers, secret=None):
    """The SigV2 signature of a request with exactly these headers (its Date included)."""
    from urllib.parse import urlsplit
    auth = HmacV1Auth(Credentials(server.access_key, secret or server.secret_key))
    return auth.get_signature(method, urlsplit(url(server, path)), dict(headers))


def signing_key(secret, date, region="us-east-1"):
    k = hmac.new(b"AWS4" + secret.encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def signed_aws_chunked(server, path, data, chunk=64 * 1024, trailer=None, headers=None):
    """A PUT whose body is aws-chunked with signed chunks and, if `trailer` = (name, value), a
    signed trailer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], AWS contract A.2).
    Returns (headers, body)."""
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    h = dict(headers or {})
    h.update({"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data))})
    if trailer:
        h["X-Amz-Trailer"] = trailer[0]
    # The encoded length does not depend on the signatures (always 64 hex digits).
    fake_sig = "0" * 64
    encoded = b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(c), fake_sig.encode(), c) for c in chunks[:-1])
    encoded += b"0;chunk-signature=" + fake_sig.encode() + b"\r\n"
    if trailer:
        encoded += f"{trailer[0]}:{trailer[1]}\r\n".encode() + b"x-amz-trailer-signature:" + fake_sig.encode() + b"\r\n"
    encoded += b"\r\n"
    h["Content-Length"] = str(len(encoded))
    signed = sign_v4(server, "PUT", path, headers=h, payload=mode)
    seed = re.search(r"Signature=([0-9a-f]{64})", signed["Authorization"]).group(1)
    amz_date = signed["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = signing_key(server.secret_key, amz_date[:8])
    prev = seed
    body = b""
    for c in chunks:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256, hashlib.sha256(c).hexdigest()])
        prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        body += b"%x;chunk-signature=%s\r\n" % (len(c), prev.encode())
        if c:
            body += c + b"\r\n"
    if trailer:
        line = f"{trailer[0]}:{trailer[1]}\n"
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev, hashlib.sha256(line.encode()).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        body += f"{trailer[0]}:{trailer[1]}\r\n".encode() + b"x-amz-trailer-signature:" + sig.encode() + b"\r\n"
    body += b"\r\n"
    assert len(body) == len(encoded)
    return signed, body


def http_chunked(body, size=1000):
    """`body` in HTTP/1.1 chunked framing (Transfer-Encoding: chunked)."""
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


class RawConnection:
    """One HTTP/1.1 connection driven by hand: the test decides when the body goes."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def send_head(self, method, path, headers):
        lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        # UTF-8, so a test can send raw non-ASCII header values (user metadata).
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

    def send(self, data):
        self.sock.sendall(data)

    def _read_until(self, marker):
        while marker not in self.buf:
            more = self.sock.recv(65536)
            if not more:
                raise ConnectionError("connection closed: " + repr(self.buf))
            self.buf += more
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_response(self, head_only=False):
        """(status, headers lower-cased, body) of the next response (1xx included)."""
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = b""
        if status >= 200 and not head_only:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                more = self.sock.recv(65536)
                if not more:
                    break
                self.buf += more
            body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def close(self):
        self.sock.close()


def err(fn, **kw):
    """(error code, HTTP status) of a boto3 call that must fail."""
    import pytest
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def xml_field(text, name):
    if isinstance(text, bytes):
        text = text.decode()
    m = re.search(f"<{name}>(.*?)</{name}>", text, re.S)
    return m.group(1) if m else None
