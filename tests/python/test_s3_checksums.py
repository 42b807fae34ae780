"""Integrity checksums as current SDKs send them (issue 16, section 3): CRC32, CRC32C, CRC64NVME,
SHA1 and SHA256 in headers, with x-amz-sdk-checksum-algorithm and in aws-chunked trailers
(signed and unsigned); S3's default CRC64NVME; COMPOSITE and FULL_OBJECT multipart checksums;
what GET/HEAD return with x-amz-checksum-mode (whole objects, parts, ranges); GetObjectAttributes;
GET/HEAD ?partNumber. Expected values are computed here, independently of the server."""

import base64
import hashlib
import os

import boto3
import pytest
import requests
from botocore.config import Config

from conftest import Server
from s3wire import checksum, composite, crc32c, crc64nvme, err, sign_v4, signed_aws_chunked, url, xml_field

ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
MiB = 1024 * 1024
# botocore computes these two only with awscrt, which the test venv does not install: the tests
# send their values (computed here) instead of naming the algorithm.
NEEDS_CRT = {"CRC32C", "CRC64NVME"}


def checksum_args(algorithm, data):
    """boto3 arguments that make the request carry `algorithm`'s checksum of `data`."""
    if algorithm in NEEDS_CRT:
        return {f"Checksum{algorithm}": checksum(algorithm, data)}
    return {"ChecksumAlgorithm": algorithm}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("checksums") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server):
    return server.client()


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="sums")
    return "sums"


def no_checksum_client(server, **kw):
    """A client that sends no flexible checksum of its own (as s3cmd, rclone and older SDKs)."""
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      request_checksum_calculation="when_required", response_checksum_validation="when_required"),
        **kw,
    )


def test_our_reference_crcs_match_the_published_check_values():
    # The CRC catalogue's check values over b"123456789": the tests' own yardstick is right.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc64nvme(b"123456789") == 0xAE8B14860A799888


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_with_each_algorithm_is_verified_stored_and_returned(s3, bucket, algorithm):
    data = os.urandom(3000) + algorithm.encode()
    want = checksum(algorithm, data)
    put = s3.put_object(Bucket=bucket, Key=f"one-{algorithm}", Body=data, **checksum_args(algorithm, data))
    assert put[f"Checksum{algorithm}"] == want and put["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key=f"one-{algorithm}", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == want and head["ChecksumType"] == "FULL_OBJECT"
    # Without checksum mode nothing is returned (AWS).
    assert f"Checksum{algorithm}" not in s3.head_object(Bucket=bucket, Key=f"one-{algorithm}")
    got = s3.get_object(Bucket=bucket, Key=f"one-{algorithm}", ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == want and got["Body"].read() == data
    # A wrong value in the header: 400 BadDigest, and nothing is stored.
    wrong = checksum(algorithm, data + b"x")
    assert err(s3.put_object, Bucket=bucket, Key=f"bad-{algorithm}", Body=data,
               **{f"Checksum{algorithm}": wrong}) == ("BadDigest", 400)
    assert err(s3.head_object, Bucket=bucket, Key=f"bad-{algorithm}")[1] == 404
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"one-{algorithm}")["Contents"][0]
    assert listed["ChecksumAlgorithm"] == [algorithm] and listed["ChecksumType"] == "FULL_OBJECT"


def test_objects_sent_without_a_checksum_get_s3s_default_crc64nvme(server, bucket):
    plain = no_checksum_client(server)
    data = b"no checksum sent with this one" * 50
    put = plain.put_object(Bucket=bucket, Key="default", Body=data)
    assert "x-amz-checksum-crc32" not in put["ResponseMetadata"]["HTTPHeaders"]
    assert put["ChecksumCRC64NVME"] == checksum("CRC64NVME", data) and put["ChecksumType"] == "FULL_OBJECT"
    head = plain.head_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == checksum("CRC64NVME", data)


def test_sdk_algorithm_headers_must_match_what_is_sent(server, bucket):
    data = b"sdk algorithm"
    path = f"/{bucket}/sdk"

    def put(extra):
        h = sign_v4(server, "PUT", path, body=data, headers=extra)
        return requests.put(url(server, path), data=data, headers=h)

    # The algorithm named, no value anywhere: AWS refuses (400 InvalidRequest).
    r = put({"x-amz-sdk-checksum-algorithm": "CRC32"})
    assert r.status_code == 400 and xml_field(r.text, "Code") == "InvalidRequest", r.text
    # Named one algorithm, sent another: BadDigest.
    r = put({"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-sha256": checksum("SHA256", data)})
    assert r.status_code == 400 and xml_field(r.text, "Code") == "BadDigest", r.text
    # Two checksums at once: refused.
    r = put({"x-amz-checksum-crc32": checksum("CRC32", data), "x-amz-checksum-sha1": checksum("SHA1", data)})
    assert r.status_code == 400 and xml_field(r.text, "Code") == "InvalidRequest", r.text
    # An algorithm we do not compute is refused, never left unchecked.
    r = put({"x-amz-checksum-sha512": base64.b64encode(hashlib.sha512(data).digest()).decode()})
    assert r.status_code == 400 and xml_field(r.text, "Code") == "InvalidRequest", r.text
    r = put({"x-amz-sdk-checksum-algorithm": "XXHASH64", "x-amz-checksum-crc32": checksum("CRC32", data)})
    assert r.status_code == 400 and xml_field(r.text, "Code") == "InvalidRequest", r.text
    # Named and sent: stored.
    r = put({"x-amz-sdk-checksum-algorithm": "CRC32C", "x-amz-checksum-crc32c": checksum("CRC32C", data)})
    assert r.status_code == 200 and r.headers["x-amz-checksum-crc32c"] == checksum("CRC32C", data)
    assert server.client().head_object(Bucket=bucket, Key="sdk")["ContentLength"] == len(data)


def test_boto3_over_https_sends_aws_chunked_trailers(server, bucket):
    """botocore over HTTPS: aws-chunked body, the CRC32 in the trailer, Transfer-Encoding chunked
    and no Content-Length; the aws-chunked content coding is framing, not stored metadata."""
    tls = server.client(tls=True)
    data = os.urandom(200_000)
    put = tls.put_object(Bucket=bucket, Key="trailer", Body=data, ContentEncoding="gzip")
    assert put["ChecksumCRC32"] == checksum("CRC32", data)
    head = tls.head_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == checksum("CRC32", data)
    assert head["ContentEncoding"] == "gzip"
    put = tls.put_object(Bucket=bucket, Key="trailer-sha", Body=data, ChecksumAlgorithm="SHA256")
    assert put["ChecksumSHA256"] == checksum("SHA256", data)
    assert "ContentEncoding" not in tls.head_object(Bucket=bucket, Key="trailer-sha")
    assert tls.get_object(Bucket=bucket, Key="trailer-sha")["Body"].read() == data


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC64NVME"])
def test_signed_chunks_with_signed_trailers(server, s3, bucket, algorithm):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER made by hand: the trailer checksum is checked
    against the data (BadDigest on a lie), and the trailer's own signature is checked."""
    data = os.urandom(150_000)
    name = f"x-amz-checksum-{algorithm.lower()}"
    path = f"/{bucket}/signed-trailer-{algorithm}"
    headers, body = signed_aws_chunked(server, path, data, trailer=(name, checksum(algorithm, data)))
    r = requests.put(url(server, path), data=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers[name] == checksum(algorithm, data)
    assert s3.get_object(Bucket=bucket, Key=f"signed-trailer-{algorithm}")["Body"].read() == data
    # A trailer that lies about the data.
    lie_path = path + "-lie"
    headers, body = signed_aws_chunked(server, lie_path, data, trailer=(name, checksum(algorithm, data[1:])))
    r = requests.put(url(server, lie_path), data=body, headers=headers)
    assert r.status_code == 400 and xml_field(r.text, "Code") == "BadDigest", r.text
    # A trailer swapped after signing: the trailer signature fails.
    headers, body = signed_aws_chunked(server, lie_path, data, trailer=(name, checksum(algorithm, data)))
    forged = body.replace(checksum(algorithm, data).encode(), checksum(algorithm, data[1:]).encode())
    r = requests.put(url(server, lie_path), data=forged, headers=headers)
    assert r.status_code == 403 and xml_field(r.text, "Code") == "SignatureDoesNotMatch", r.text
    assert err(s3.head_object, Bucket=bucket, Key=f"signed-trailer-{algorithm}-lie")[1] == 404


def test_unsigned_trailer_announced_but_missing_is_bad_digest(server, s3, bucket):
    data = b"unsigned chunks, trailer promised"
    path = f"/{bucket}/missing-trailer"
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)
    h = sign_v4(server, "PUT", path, payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers={
        "Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32", "Content-Length": str(len(body))})
    r = requests.put(url(server, path), data=body, headers=h)
    assert r.status_code == 400 and xml_field(r.text, "Code") == "BadDigest", r.text
    assert err(s3.head_object, Bucket=bucket, Key="missing-trailer")[1] == 404


def upload(s3, bucket, key, parts, algorithm=None, kind=None, part_checksums=True):
    """A multipart upload of `parts`; returns (complete response, part responses)."""
    kw = {}
    if algorithm:
        kw["ChecksumAlgorithm"] = algorithm
    if kind:
        kw["ChecksumType"] = kind
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)
    up = created["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        pkw = checksum_args(algorithm, data) if algorithm else {}
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=data, **pkw)
        entry = {"PartNumber": n, "ETag": r["ETag"]}
        if algorithm and part_checksums:
            entry[f"Checksum{algorithm}"] = r[f"Checksum{algorithm}"]
        done.append((entry, r))
    complete = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                            MultipartUpload={"Parts": [e for e, _ in done]})
    return created, complete, [r for _, r in done]


def test_multipart_composite_checksums(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail of the object"]
    for algorithm in ["SHA256", "SHA1", "CRC32C"]:
        key = f"composite-{algorithm}"
        created, done, responses = upload(s3, bucket, key, parts, algorithm)
        assert created["ChecksumAlgorithm"] == algorithm and created["ChecksumType"] == "COMPOSITE"
        part_values = [checksum(algorithm, p) for p in parts]
        assert [r[f"Checksum{algorithm}"] for r in responses] == part_values
        assert done[f"Checksum{algorithm}"] == composite(algorithm, part_values)
        assert done["ChecksumType"] == "COMPOSITE"
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head[f"Checksum{algorithm}"] == composite(algorithm, part_values)
        # A part read returns that part's checksum (so clients can check the part's bytes).
        got = s3.get_object(Bucket=bucket, Key=key, PartNumber=2, ChecksumMode="ENABLED")
        assert got[f"Checksum{algorithm}"] == part_values[1] and got["Body"].read() == parts[1]
        attrs = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["Checksum", "ObjectParts"])
        assert attrs["Checksum"][f"Checksum{algorithm}"] == composite(algorithm, part_values).split("-")[0]
        assert attrs["Checksum"]["ChecksumType"] == "COMPOSITE"
        assert [p[f"Checksum{algorithm}"] for p in attrs["ObjectParts"]["Parts"]] == part_values


def test_multipart_full_object_checksums_are_the_crc_of_the_whole(server, s3, bucket):
    parts = [os.urandom(5 * MiB), b"the last part"]
    whole = b"".join(parts)
    created, done, responses = upload(s3, bucket, "full-crc32", parts, "CRC32", "FULL_OBJECT")
    assert created["ChecksumType"] == "FULL_OBJECT"
    assert done["ChecksumCRC32"] == checksum("CRC32", whole) and done["ChecksumType"] == "FULL_OBJECT"
    assert s3.head_object(Bucket=bucket, Key="full-crc32", ChecksumMode="ENABLED")["ChecksumCRC32"] == checksum("CRC32", whole)
    # A part of a FULL_OBJECT object of several parts carries no checksum of its own bytes.
    got = s3.get_object(Bucket=bucket, Key="full-crc32", PartNumber=1, ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in got and got["Body"].read() == parts[0]
    # CRC64NVME is FULL_OBJECT by default; an upload that names nothing gets it too (S3's
    # default). The combined part CRCs must equal the CRC the server computes in one pass
    # over the same bytes (a single PUT), and our own over a small object.
    _, done64, _ = upload(s3, bucket, "full-crc64", parts, "CRC64NVME")
    assert done64["ChecksumType"] == "FULL_OBJECT"
    plain = no_checksum_client(server)
    up = plain.create_multipart_upload(Bucket=bucket, Key="full-default")["UploadId"]
    etags = [plain.upload_part(Bucket=bucket, Key="full-default", UploadId=up, PartNumber=n, Body=p)["ETag"]
             for n, p in enumerate(parts, 1)]
    done_default = plain.complete_multipart_upload(
        Bucket=bucket, Key="full-default", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
    single = plain.put_object(Bucket=bucket, Key="single-same-bytes", Body=whole)
    assert done64["ChecksumCRC64NVME"] == done_default["ChecksumCRC64NVME"] == single["ChecksumCRC64NVME"]
    assert done_default["ChecksumType"] == "FULL_OBJECT"
    small = plain.put_object(Bucket=bucket, Key="small", Body=b"the last part")
    assert small["ChecksumCRC64NVME"] == checksum("CRC64NVME", b"the last part")


def test_multipart_checksum_rules(s3, bucket):
    def create_err(**kw):
        return err(s3.create_multipart_upload, Bucket=bucket, Key="rules", **kw)

    assert create_err(ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT") == ("InvalidRequest", 400)
    assert create_err(ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE") == ("InvalidRequest", 400)
    assert create_err(ChecksumType="COMPOSITE") == ("InvalidRequest", 400)
    part = os.urandom(5 * MiB)
    up = s3.create_multipart_upload(Bucket=bucket, Key="rules", ChecksumAlgorithm="SHA256")["UploadId"]
    # Every part of an upload that declared SHA256 carries a SHA256.
    assert err(s3.upload_part, Bucket=bucket, Key="rules", UploadId=up, PartNumber=1, Body=part,
               ChecksumAlgorithm="CRC32") == ("InvalidRequest", 400)
    p1 = s3.upload_part(Bucket=bucket, Key="rules", UploadId=up, PartNumber=1, Body=part, ChecksumAlgorithm="SHA256")
    p2 = s3.upload_part(Bucket=bucket, Key="rules", UploadId=up, PartNumber=2, Body=b"end", ChecksumAlgorithm="SHA256")
    base = [{"PartNumber": 1, "ETag": p1["ETag"], "ChecksumSHA256": p1["ChecksumSHA256"]},
            {"PartNumber": 2, "ETag": p2["ETag"], "ChecksumSHA256": p2["ChecksumSHA256"]}]

    def complete_err(parts, **kw):
        return err(s3.complete_multipart_upload, Bucket=bucket, Key="rules", UploadId=up,
                   MultipartUpload={"Parts": parts}, **kw)

    # The part checksums must all be listed, and be the stored ones.
    assert complete_err([base[0], {"PartNumber": 2, "ETag": p2["ETag"]}]) == ("InvalidRequest", 400)
    assert complete_err([base[0], dict(base[1], ChecksumSHA256=checksum("SHA256", b"other"))]) == ("InvalidPart", 400)
    # A whole-object checksum sent with Complete must match; so must the object size.
    want = composite("SHA256", [p1["ChecksumSHA256"], p2["ChecksumSHA256"]])
    assert complete_err(base, ChecksumSHA256=composite("SHA256", [p2["ChecksumSHA256"], p1["ChecksumSHA256"]])) == ("BadDigest", 400)
    assert complete_err(base, MpuObjectSize=len(part)) == ("InvalidRequest", 400)
    assert complete_err(base, ChecksumType="FULL_OBJECT") == ("InvalidRequest", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="rules", UploadId=up, MultipartUpload={"Parts": base},
                                        ChecksumSHA256=want, MpuObjectSize=len(part) + 3)
    assert done["ChecksumSHA256"] == want


def test_part_number_reads(s3, bucket):
    data = b"single part object"
    s3.put_object(Bucket=bucket, Key="single", Body=data)
    for call in (s3.get_object, s3.head_object):
        r = call(Bucket=bucket, Key="single", PartNumber=1, ChecksumMode="ENABLED")
        # Part 1 of a single-part object is the whole object, answered as a range (AWS).
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert r["ContentRange"] == f"bytes 0-{len(data) - 1}/{len(data)}" and r["ContentLength"] == len(data)
        assert "x-amz-mp-parts-count" not in r["ResponseMetadata"]["HTTPHeaders"]
        assert r["ChecksumCRC32"] == checksum("CRC32", data)
        assert err(call, Bucket=bucket, Key="single", PartNumber=2)[1] == 416
    assert err(s3.get_object, Bucket=bucket, Key="single", PartNumber=2) == ("InvalidPartNumber", 416)
    assert s3.get_object(Bucket=bucket, Key="single", PartNumber=1)["Body"].read() == data
    parts = [os.urandom(5 * MiB), b"second and last"]
    upload(s3, bucket, "mp-read", parts, "CRC32")
    for call in (s3.get_object, s3.head_object):
        r = call(Bucket=bucket, Key="mp-read", PartNumber=2)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206 and r["PartsCount"] == 2
        total = len(parts[0]) + len(parts[1])
        assert r["ContentRange"] == f"bytes {len(parts[0])}-{total - 1}/{total}"
        assert r["ContentLength"] == len(parts[1])
    assert s3.get_object(Bucket=bucket, Key="mp-read", PartNumber=2)["Body"].read() == parts[1]
    assert err(s3.get_object, Bucket=bucket, Key="mp-read", PartNumber=3) == ("InvalidPartNumber", 416)
    assert err(s3.head_object, Bucket=bucket, Key="mp-read", PartNumber=3)[1] == 416
    assert err(s3.get_object, Bucket=bucket, Key="mp-read", PartNumber=1, Range="bytes=0-1") == ("InvalidRequest", 400)
    # A range is not the object: no checksum describes it.
    ranged = s3.get_object(Bucket=bucket, Key="single", Range="bytes=1-3", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in ranged and ranged["Body"].read() == data[1:4]
    # Without partNumber a multipart object reports no parts count (AWS).
    assert "PartsCount" not in s3.head_object(Bucket=bucket, Key="mp-read")


def test_get_object_attributes(server, s3, bucket):
    data = b"attributes of a small object"
    put = s3.put_object(Bucket=bucket, Key="attrs", Body=data, ChecksumAlgorithm="SHA1", StorageClass="STANDARD_IA")
    a = s3.get_object_attributes(Bucket=bucket, Key="attrs",
                                 ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    # GetObjectAttributes shows the ETag without quotes (unlike HEAD).
    assert a["ETag"] == put["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert a["Checksum"] == {"ChecksumSHA1": checksum("SHA1", data), "ChecksumType": "FULL_OBJECT"}
    assert a["ObjectSize"] == len(data) and a["StorageClass"] == "STANDARD_IA"
    assert "ObjectParts" not in a and "LastModified" in a
    only_size = s3.get_object_attributes(Bucket=bucket, Key="attrs", ObjectAttributes=["ObjectSize"])
    assert only_size["ObjectSize"] == len(data) and "ETag" not in only_size and "Checksum" not in only_size
    # Paging the parts of a COMPOSITE object; a FULL_OBJECT one reports only its part count.
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"three"]
    upload(s3, bucket, "attrs-mp", parts, "SHA256")
    page = s3.get_object_attributes(Bucket=bucket, Key="attrs-mp", ObjectAttributes=["ObjectParts"], MaxParts=2)
    op = page["ObjectParts"]
    assert op["TotalPartsCount"] == 3 and op["IsTruncated"] and op["NextPartNumberMarker"] == 2
    assert [(p["PartNumber"], p["Size"]) for p in op["Parts"]] == [(1, 5 * MiB), (2, 5 * MiB)]
    rest = s3.get_object_attributes(Bucket=bucket, Key="attrs-mp", ObjectAttributes=["ObjectParts"],
                                    MaxParts=2, PartNumberMarker=2)["ObjectParts"]
    assert not rest["IsTruncated"] and [p["PartNumber"] for p in rest["Parts"]] == [3]
    assert rest["Parts"][0]["ChecksumSHA256"] == checksum("SHA256", b"three")
    upload(s3, bucket, "attrs-full", parts[1:], "CRC32", "FULL_OBJECT")
    full = s3.get_object_attributes(Bucket=bucket, Key="attrs-full", ObjectAttributes=["ObjectParts", "Checksum"])
    assert full["ObjectParts"] == {"TotalPartsCount": 2}
    assert full["Checksum"]["ChecksumCRC32"] == checksum("CRC32", b"".join(parts[1:]))
    # Wrong attribute names and missing objects, as AWS answers them.
    raw = requests.get(url(server, f"/{bucket}/attrs", "attributes"),
                       headers=sign_v4(server, "GET", f"/{bucket}/attrs", query="attributes",
                                       headers={"x-amz-object-attributes": "ETag,Colour"}))
    assert raw.status_code == 400 and xml_field(raw.text, "Code") == "InvalidArgument", raw.text
    assert err(s3.get_object_attributes, Bucket=bucket, Key="nope", ObjectAttributes=["ETag"]) == ("NoSuchKey", 404)
    # The aws CLI shows the same.
    out = server.cli("s3api", "get-object-attributes", "--bucket", bucket, "--key", "attrs",
                     "--object-attributes", "ETag", "ObjectSize").stdout
    assert f'"ETag": "{hashlib.md5(data).hexdigest()}"' in out and f'"ObjectSize": {len(data)}' in out


def test_get_object_attributes_of_sse_c_objects_needs_the_key(server, bucket):
    tls = server.client(tls=True)
    key = os.urandom(32)
    other = os.urandom(32)
    data = b"customer-keyed"
    tls.put_object(Bucket=bucket, Key="ssec", Body=data, SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    names = ["ETag", "Checksum", "ObjectSize"]

    def sse(k):
        # botocore encodes SSE-C keys itself only for the older operations.
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(k).decode(),
                "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(k).digest()).decode()}

    assert err(tls.get_object_attributes, Bucket=bucket, Key="ssec", ObjectAttributes=names) == ("InvalidRequest", 400)
    assert err(tls.get_object_attributes, Bucket=bucket, Key="ssec", ObjectAttributes=names, **sse(other))[1] == 403
    a = tls.get_object_attributes(Bucket=bucket, Key="ssec", ObjectAttributes=names, **sse(key))
    assert a["ObjectSize"] == len(data) and a["Checksum"]["ChecksumCRC32"] == checksum("CRC32", data)
    # The ETag of an SSE-C object is not the MD5 of its data (it would be an oracle).
    assert a["ETag"] != hashlib.md5(data).hexdigest() and len(a["ETag"]) == 32
