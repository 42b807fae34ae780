"""The rest of the everyday S3 surface (issue 16, section 6), as Amazon S3 answers it: ListBuckets
paging, max-keys=0, an empty delimiter, x-amz-expected-bucket-owner, Expect: 100-continue,
uploads without Content-Length, GetBucketLocation, request ids in error bodies, Unicode user
metadata, SigV2 header authentication, a wrong region in the credential scope (s3cmd's default
configuration), storage classes and RestoreObject. boto3, the aws CLI, s3cmd and hand-made
requests where a client would hide the wire."""

import base64
import email.utils
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import MARKER, Server
from s3wire import RawConnection, checksum, err, http_chunked, sign_v2, sign_v4, sigv2_signature, url, xml_field

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("everyday") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server):
    return server.client()


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="daily")
    return "daily"


def signed_get(server, path, query="", headers=None):
    return requests.get(url(server, path, query), headers=sign_v4(server, "GET", path, query=query, headers=headers))


def test_list_buckets_pages_filters_and_names_the_region(server, s3):
    names = [f"page-{i}" for i in range(5)] + ["other-1"]
    for n in names:
        s3.create_bucket(Bucket=n)
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_buckets(MaxBuckets=2, Prefix="page-", **kw)
        assert page["Prefix"] == "page-" and len(page["Buckets"]) <= 2
        assert all(b["BucketRegion"] == "us-east-1" for b in page["Buckets"])
        seen += [b["Name"] for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if not token:
            break
    assert seen == [f"page-{i}" for i in range(5)]
    everything = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert set(names) <= set(everything) and "ContinuationToken" not in s3.list_buckets()
    assert s3.list_buckets(BucketRegion="eu-west-1")["Buckets"] == []
    assert [b["Name"] for b in s3.list_buckets(BucketRegion="us-east-1", Prefix="other")["Buckets"]] == ["other-1"]
    for bad in ("0", "10001"):
        r = signed_get(server, "/", f"max-buckets={bad}")
        assert r.status_code == 400 and xml_field(r.text, "Code") == "InvalidArgument", r.text
    r = signed_get(server, "/", "continuation-token=not%21a%21token")
    assert r.status_code == 400 and xml_field(r.text, "Code") == "InvalidArgument", r.text


def test_max_keys_zero_and_an_empty_delimiter(server, s3, bucket):
    for k in ["dir/a", "dir/b", "top"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    for listing in (s3.list_objects, s3.list_objects_v2):
        r = listing(Bucket=bucket, MaxKeys=0)
        assert r["IsTruncated"] is False and "Contents" not in r and r["MaxKeys"] == 0
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0
    # An empty delimiter is no delimiter, and AWS then leaves Delimiter out of the answer.
    for query in ("delimiter=", "list-type=2&delimiter="):
        r = signed_get(server, f"/{bucket}", query)
        assert r.status_code == 200 and "<Delimiter" not in r.text, r.text
        assert r.text.count("<Key>") >= 3 and "<CommonPrefixes>" not in r.text
    assert s3.list_objects_v2(Bucket=bucket, Delimiter="/")["CommonPrefixes"] == [{"Prefix": "dir/"}]


def test_expected_bucket_owner(s3, bucket):
    s3.put_object(Bucket=bucket, Key="owned", Body=b"x", ExpectedBucketOwner=ACCOUNT)
    assert s3.get_object(Bucket=bucket, Key="owned", ExpectedBucketOwner=ACCOUNT)["Body"].read() == b"x"
    s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=ACCOUNT)
    other = "111122223333"
    assert err(s3.head_bucket, Bucket=bucket, ExpectedBucketOwner=other)[1] == 403
    assert err(s3.get_object, Bucket=bucket, Key="owned", ExpectedBucketOwner=other) == ("AccessDenied", 403)
    assert err(s3.put_object, Bucket=bucket, Key="owned", Body=b"y", ExpectedBucketOwner=other) == ("AccessDenied", 403)
    assert err(s3.list_objects_v2, Bucket=bucket, ExpectedBucketOwner=other) == ("AccessDenied", 403)
    assert err(s3.copy_object, Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "owned"},
               ExpectedSourceBucketOwner=other) == ("AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="owned")["Body"].read() == b"x"
    assert err(s3.head_object, Bucket=bucket, Key="copy")[1] == 404


def put_head(server, path, body, signed=True):
    headers = {"Content-Length": str(len(body))}
    if signed:
        headers = sign_v4(server, "PUT", path, body=body, headers=headers)
    headers["Host"] = f"127.0.0.1:{server.port}"
    headers["Expect"] = "100-continue"
    return headers


def test_expect_100_continue_is_answered_before_the_body(server, s3, bucket):
    body = os.urandom(64 * 1024)
    # Refusals come at once, without a 100 Continue and without the body.
    for path, signed, want in [(f"/no-such-bucket/k", True, (404, "NoSuchBucket")),
                               (f"/{bucket}/anonymous", False, (403, "AccessDenied"))]:
        conn = RawConnection(server.port)
        try:
            conn.send_head("PUT", path, put_head(server, path, body, signed))
            status, headers, answer = conn.read_response()
        finally:
            conn.close()
        assert (status, xml_field(answer, "Code")) == want, answer
        # The body was never sent: the connection ends with the answer, so bytes that follow can
        # never be taken for that body (botocore reuses connections after such a refusal).
        assert headers.get("connection") == "close"
    # Accepted: 100 Continue first, then the body, then 200.
    path = f"/{bucket}/continued"
    conn = RawConnection(server.port)
    try:
        conn.send_head("PUT", path, put_head(server, path, body))
        assert conn.read_response(head_only=True)[0] == 100
        conn.send(body)
        status, headers, _ = conn.read_response()
    finally:
        conn.close()
    assert status == 200 and headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="continued")["Body"].read() == body


def raw_chunked_put(server, path, data, payload=None, extra=None):
    """A header-signed PUT sent with Transfer-Encoding: chunked and no Content-Length."""
    headers = sign_v4(server, "PUT", path, body=data, headers=extra, payload=payload)
    headers.pop("Content-Length", None)
    headers["Host"] = f"127.0.0.1:{server.port}"
    headers["Transfer-Encoding"] = "chunked"
    conn = RawConnection(server.port)
    try:
        conn.send_head("PUT", path, headers)
        try:
            conn.send(http_chunked(data))
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (and closed) before the whole body was taken
        return conn.read_response()
    finally:
        conn.close()


def test_uploads_without_content_length(server, s3, bucket):
    data = os.urandom(300_000)
    # The payload hash signed, or left unsigned: both accepted, bytes intact.
    for key, payload in [("chunked-signed", None), ("chunked-unsigned", "UNSIGNED-PAYLOAD")]:
        status, _, answer = raw_chunked_put(server, f"/{bucket}/{key}", data, payload)
        assert status == 200, answer
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    # A body that does not hash to the signed value is refused, not stored.
    status, _, answer = raw_chunked_put(server, f"/{bucket}/chunked-lie", data + b"!",
                                        payload=hashlib.sha256(data).hexdigest())
    assert status == 400 and xml_field(answer, "Code") == "XAmzContentSHA256Mismatch", answer
    assert err(s3.head_object, Bucket=bucket, Key="chunked-lie")[1] == 404
    # aws-chunked inside HTTP chunking (what botocore sends over HTTPS), no Content-Length: the
    # object's Content-Encoding keeps only the real coding.
    framed = b"%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % (
        len(data), data, checksum("CRC32", data).encode())
    headers = sign_v4(server, "PUT", f"/{bucket}/aws-chunked", payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers={
        "Content-Encoding": "aws-chunked,gzip", "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32"})
    headers.pop("Content-Length", None)
    headers.update({"Host": f"127.0.0.1:{server.port}", "Transfer-Encoding": "chunked"})
    conn = RawConnection(server.port)
    try:
        conn.send_head("PUT", f"/{bucket}/aws-chunked", headers)
        conn.send(http_chunked(framed, 4096))
        status, _, answer = conn.read_response()
    finally:
        conn.close()
    assert status == 200, answer
    head = s3.head_object(Bucket=bucket, Key="aws-chunked")
    assert head["ContentEncoding"] == "gzip" and head["ContentLength"] == len(data)
    # A presigned PUT streams without any length at all.
    v4 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
                      aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    presigned = v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned-chunked"})
    r = requests.put(presigned, data=(data[i:i + 50_000] for i in range(0, len(data), 50_000)))
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="presigned-chunked")["Body"].read() == data
    # Beyond what is buffered to learn the length: 411 MissingContentLength, as s3s would say.
    status, _, answer = raw_chunked_put(server, f"/{bucket}/too-big", os.urandom(9 << 20))
    assert status == 411 and xml_field(answer, "Code") == "MissingContentLength", answer


def test_request_ids_in_headers_and_error_bodies(server, s3, bucket):
    ok = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]
    assert len(ok["RequestId"]) == 16 and ok["HTTPHeaders"]["x-amz-id-2"]
    failures = [
        signed_get(server, f"/{bucket}/missing-key"),  # NoSuchKey from the handler
        requests.get(url(server, f"/{bucket}/x")),  # AccessDenied from the access hook
        requests.get(url(server, f"/{bucket}/x"), headers=dict(  # refused before s3s
            sign_v4(server, "GET", f"/{bucket}/x"), **{"x-amz-meta-unsigned": "1"})),
        requests.get(url(server, f"/{bucket}/x"), headers=sign_v4(server, "GET", f"/{bucket}/y")),  # bad signature
    ]
    ids = set()
    for r in failures:
        assert r.status_code >= 400
        rid = r.headers["x-amz-request-id"]
        assert xml_field(r.text, "RequestId") == rid, r.text
        ids.add(rid)
    assert len(ids) == len(failures)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing-key")
    meta = e.value.response["ResponseMetadata"]
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amz-request-id"]
    head = requests.head(url(server, f"/{bucket}/missing"), headers=sign_v4(server, "HEAD", f"/{bucket}/missing"))
    assert head.status_code == 404 and head.content == b"" and len(head.headers["x-amz-request-id"]) == 16


def rfc2047(value):
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="


def test_unicode_user_metadata(server, s3, bucket):
    value = "Grüße, 東京 ✓"
    # boto3 sends only ASCII: an RFC 2047 encoded word, stored decoded, returned encoded.
    s3.put_object(Bucket=bucket, Key="unicode-boto", Body=b"x", Metadata={"title": rfc2047(value)})
    head = s3.head_object(Bucket=bucket, Key="unicode-boto")
    assert head["Metadata"]["title"] == rfc2047(value)
    # Raw UTF-8 bytes in the header (signed as they are): returned RFC 2047 encoded, as AWS does.
    path = f"/{bucket}/unicode-raw"
    headers = sign_v4(server, "PUT", path, body=b"y", headers={"Content-Length": "1", "x-amz-meta-title": value})
    headers["Host"] = f"127.0.0.1:{server.port}"
    conn = RawConnection(server.port)
    try:
        conn.send_head("PUT", path, headers)
        conn.send(b"y")
        status, _, answer = conn.read_response()
    finally:
        conn.close()
    assert status == 200, answer
    raw = s3.head_object(Bucket=bucket, Key="unicode-raw")["Metadata"]["title"]
    assert raw.startswith("=?UTF-8?B?") and base64.b64decode(raw[10:-2]).decode() == value
    # The 2 KB limit counts UTF-8 bytes of the decoded values (é is two bytes).
    s3.put_object(Bucket=bucket, Key="unicode-fits", Body=b"x", Metadata={"m": rfc2047("é" * 1000)})
    assert err(s3.put_object, Bucket=bucket, Key="unicode-big", Body=b"x",
               Metadata={"m": rfc2047("é" * 1100)}) == ("MetadataTooLarge", 400)


def test_sigv2_header_authentication(server, bucket):
    v2 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
                      aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                      config=Config(signature_version="s3", s3={"addressing_style": "path"},
                                    retries={"max_attempts": 1}))
    v2.put_object(Bucket=bucket, Key="v2", Body=b"signed the old way", Metadata={"a": "b"})
    assert v2.get_object(Bucket=bucket, Key="v2")["Body"].read() == b"signed the old way"
    assert "v2" in [o["Key"] for o in v2.list_objects(Bucket=bucket)["Contents"]]
    path = f"/{bucket}/v2"

    def get(headers):
        return requests.get(url(server, path), headers=headers)

    def check(r, status, code, message=None):
        assert r.status_code == status and xml_field(r.text, "Code") == code, r.text
        if message:
            assert xml_field(r.text, "Message") == message, r.text
        assert xml_field(r.text, "RequestId") == r.headers["x-amz-request-id"]

    good = sign_v2(server, "GET", path)
    assert get(good).content == b"signed the old way"
    no_date = {k: v for k, v in good.items() if k.lower() != "date"}
    check(get(no_date), 403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    check(get(dict(no_date, Date="not a date")), 403, "AccessDenied")
    # A correct signature over a date an hour old: a replay, refused as AWS does.
    old = email.utils.formatdate(time.time() - 3600, usegmt=True)
    stale = {"Date": old}
    stale["Authorization"] = f"AWS {server.access_key}:{sigv2_signature(server, 'GET', path, stale)}"
    r = get(stale)
    check(r, 403, "RequestTimeTooSkewed")
    assert xml_field(r.text, "MaxAllowedSkewMilliseconds") == "900000"
    check(get(sign_v2(server, "GET", path, secret="wrong")), 403, "SignatureDoesNotMatch")
    check(get(sign_v2(server, "GET", path, access_key="AKIANOSUCHKEY0000000")), 403, "InvalidAccessKeyId")
    # Presigned SigV2 URLs (botocore's default with a custom endpoint) still work.
    assert requests.get(v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2"})).status_code == 200


def test_a_wrong_region_names_the_right_one(server, bucket):
    # botocore follows the region an AuthorizationHeaderMalformed names, as it does on AWS: a
    # client configured for eu-west-1 is answered once, then signs for us-east-1 and succeeds.
    eu = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="eu-west-1",
                      aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    answers = []
    eu.meta.events.register("after-call.s3", lambda http_response, **kw: answers.append(http_response.status_code))
    eu.meta.events.register("needs-retry.s3", lambda response, **kw: answers.append(response[0].status_code) if response else None)
    eu.list_objects_v2(Bucket=bucket)
    assert answers[0] == 400 and answers[-1] == 200, answers
    r = requests.get(url(server, f"/{bucket}"), headers=sign_v4(server, "GET", f"/{bucket}", region="US"))
    assert r.status_code == 400 and xml_field(r.text, "Code") == "AuthorizationHeaderMalformed"
    assert xml_field(r.text, "Region") == "us-east-1"
    assert xml_field(r.text, "Message") == "The authorization header is malformed; the region 'US' is wrong; expecting 'us-east-1'"
    head = requests.head(url(server, f"/{bucket}"), headers=sign_v4(server, "HEAD", f"/{bucket}", region="US"))
    assert head.status_code == 400 and head.headers["x-amz-bucket-region"] == "us-east-1"
    v4 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="eu-west-1",
                      aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    r = requests.get(v4.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}))
    assert r.status_code == 400 and xml_field(r.text, "Code") == "AuthorizationQueryParametersError"
    assert xml_field(r.text, "Region") == "us-east-1"


def test_get_bucket_location_and_the_region_of_another_server(server, s3, bucket, tmp_path):
    # us-east-1: an empty LocationConstraint element.
    r = signed_get(server, f"/{bucket}", "location")
    assert r.status_code == 200 and "<LocationConstraint" in r.text and "us-east" not in r.text, r.text
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None
    eu = Server(tmp_path / "eu", extra_args=("--region", "eu-west-1"))
    try:
        c = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{eu.port}", region_name="eu-west-1",
                         aws_access_key_id=eu.access_key, aws_secret_access_key=eu.secret_key,
                         config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        c.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        assert c.get_bucket_location(Bucket="eu-bucket")["LocationConstraint"] == "eu-west-1"
        # A request signed for us-east-1 is told where to go.
        path = "/eu-bucket"
        r = requests.get(url(eu, path), headers=sign_v4(eu, "GET", path))
        assert r.status_code == 400 and xml_field(r.text, "Code") == "AuthorizationHeaderMalformed"
        assert xml_field(r.text, "Region") == "eu-west-1"
        assert eu.client().list_objects_v2(Bucket="eu-bucket")["KeyCount"] == 0  # boto3 follows it
    finally:
        eu.stop()


def s3cmd(server, cfg, *args):
    p = subprocess.run(["s3cmd", "-c", str(cfg), *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"s3cmd {' '.join(args)}: {p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.mark.skipif(shutil.which("s3cmd") is None, reason="s3cmd is not installed")
@pytest.mark.parametrize("tls", [False, True])
def test_s3cmd_with_its_default_configuration(server, tmp_path, tls):
    """s3cmd signs with its default bucket_location "US": the AuthorizationHeaderMalformed answer
    names us-east-1 and s3cmd retries there. Only host_base/host_bucket and the credentials (and
    the CA for HTTPS) are set; everything else is s3cmd's default."""
    port = server.tls_port if tls else server.port
    cfg = tmp_path / "s3cfg"
    lines = ["[default]", f"access_key = {server.access_key}", f"secret_key = {server.secret_key}",
             f"host_base = 127.0.0.1:{port}", f"host_bucket = 127.0.0.1:{port}", f"use_https = {tls}"]
    if tls:
        lines.append(f"ca_certs_file = {server.data / 'tls' / 'ca.pem'}")
    cfg.write_text("\n".join(lines) + "\n")
    name = f"s3cmd-{'tls' if tls else 'http'}"
    small = tmp_path / "small.txt"
    small.write_text("hello from s3cmd")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    s3cmd(server, cfg, "mb", f"s3://{name}")
    assert f"s3://{name}" in s3cmd(server, cfg, "ls")
    s3cmd(server, cfg, "put", str(small), f"s3://{name}/small.txt")
    s3cmd(server, cfg, "put", "--multipart-chunk-size-mb=5", "--storage-class=STANDARD_IA", str(big), f"s3://{name}/big.bin")
    listing = s3cmd(server, cfg, "ls", f"s3://{name}")
    assert "small.txt" in listing and str(11 * 1024 * 1024) in listing
    info = s3cmd(server, cfg, "info", f"s3://{name}/big.bin")
    assert "STANDARD_IA" in info
    s3cmd(server, cfg, "get", "--force", f"s3://{name}/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    assert s3cmd(server, cfg, "get", f"s3://{name}/small.txt", "-") == "hello from s3cmd"
    s3cmd(server, cfg, "sync", str(small), f"s3://{name}/synced/")
    s3cmd(server, cfg, "del", "--recursive", "--force", f"s3://{name}/")
    s3cmd(server, cfg, "rb", f"s3://{name}")
    assert f"s3://{name}" not in s3cmd(server, cfg, "ls")


def test_storage_classes_and_restore(tmp_path):
    srv = Server(tmp_path / "data", extra_args=("--restore-delay-secs", "2"))
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="tiers")
        body = MARKER * 200
        for cls in ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER"]:
            s3.put_object(Bucket="tiers", Key=cls, Body=body, StorageClass=cls)
        f = tmp_path / "deep.bin"
        f.write_bytes(body)
        srv.cli("s3", "cp", "--quiet", "--storage-class", "DEEP_ARCHIVE", str(f), "s3://tiers/DEEP_ARCHIVE")
        assert err(s3.put_object, Bucket="tiers", Key="bad", Body=b"x", StorageClass="OUTPOSTS") == ("InvalidStorageClass", 400)
        # x-amz-storage-class on HEAD/GET for every class but STANDARD; listings name them all.
        assert "StorageClass" not in s3.head_object(Bucket="tiers", Key="STANDARD")
        assert s3.head_object(Bucket="tiers", Key="GLACIER")["StorageClass"] == "GLACIER"
        assert s3.get_object(Bucket="tiers", Key="STANDARD_IA")["StorageClass"] == "STANDARD_IA"
        listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket="tiers")["Contents"]}
        assert listed == {k: k for k in listed}
        assert {o["Key"]: o["StorageClass"] for o in s3.list_objects(Bucket="tiers")["Contents"]} == listed
        # Instant-retrieval classes read at once; the archives do not until restored.
        assert s3.get_object(Bucket="tiers", Key="GLACIER_IR")["Body"].read() == body
        for key in ("GLACIER", "DEEP_ARCHIVE"):
            assert err(s3.get_object, Bucket="tiers", Key=key) == ("InvalidObjectState", 403)
            assert err(s3.copy_object, Bucket="tiers", Key="copy", CopySource={"Bucket": "tiers", "Key": key}) \
                == ("InvalidObjectState", 403)
            assert "Restore" not in s3.head_object(Bucket="tiers", Key=key)
        assert err(s3.restore_object, Bucket="tiers", Key="STANDARD_IA",
                   RestoreRequest={"Days": 1}) == ("InvalidObjectState", 403)
        assert err(s3.restore_object, Bucket="tiers", Key="GLACIER", RestoreRequest={}) == ("InvalidArgument", 400)
        assert err(s3.restore_object, Bucket="tiers", Key="DEEP_ARCHIVE",
                   RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}}) == ("InvalidArgument", 400)
        assert err(s3.restore_object, Bucket="tiers", Key="GLACIER",
                   RestoreRequest={"Type": "SELECT", "Days": 1})[1] == 501
        started = s3.restore_object(Bucket="tiers", Key="GLACIER", RestoreRequest={"Days": 2})
        assert started["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert err(s3.restore_object, Bucket="tiers", Key="GLACIER", RestoreRequest={"Days": 2}) \
            == ("RestoreAlreadyInProgress", 409)
        assert s3.head_object(Bucket="tiers", Key="GLACIER")["Restore"] == 'ongoing-request="true"'
        status = s3.list_objects_v2(Bucket="tiers", OptionalObjectAttributes=["RestoreStatus"])["Contents"]
        status = {o["Key"]: o.get("RestoreStatus") for o in status}
        assert status["GLACIER"]["IsRestoreInProgress"] is True and "RestoreExpiryDate" not in status["GLACIER"]
        assert status["DEEP_ARCHIVE"] is None and status["GLACIER_IR"] is None
        assert "RestoreStatus" not in s3.list_objects_v2(Bucket="tiers")["Contents"][0]
        srv.cli("s3api", "restore-object", "--bucket", "tiers", "--key", "DEEP_ARCHIVE",
                "--restore-request", "Days=1,GlacierJobParameters={Tier=Bulk}")
        restore = None
        for _ in range(200):  # the restore takes --restore-delay-secs (2 s here)
            restore = s3.head_object(Bucket="tiers", Key="GLACIER").get("Restore")
            if restore != 'ongoing-request="true"':
                break
            time.sleep(0.1)
        assert restore.startswith('ongoing-request="false", expiry-date="') and restore.endswith(' 00:00:00 GMT"')
        expiry = email.utils.parsedate_to_datetime(restore.split('expiry-date="')[1].rstrip('"'))
        assert 2 * 86400 <= expiry.timestamp() - time.time() <= 3 * 86400 + 60
        assert s3.get_object(Bucket="tiers", Key="GLACIER")["Body"].read() == body
        # A restored copy can be copied out; the copy is STANDARD unless asked otherwise.
        s3.copy_object(Bucket="tiers", Key="thawed", CopySource={"Bucket": "tiers", "Key": "GLACIER"})
        assert "StorageClass" not in s3.head_object(Bucket="tiers", Key="thawed")
        # Restoring a restored object again keeps it longer: 200, not 202.
        again = s3.restore_object(Bucket="tiers", Key="GLACIER", RestoreRequest={"Days": 5})
        assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
        later = s3.head_object(Bucket="tiers", Key="GLACIER")["Restore"]
        assert email.utils.parsedate_to_datetime(later.split('expiry-date="')[1].rstrip('"')) > expiry
        # Archived objects are sealed on disk like all others.
        hits = [p for p in (tmp_path / "data").rglob("*") if p.is_file() and MARKER in p.read_bytes()]
        assert hits == []
        # Past the expiry the restored copy is gone: archived again (the server's clock moved on).
        srv.restart(extra_env={"SEALBOX_TEST_CLOCK_OFFSET_SECS": str(6 * 86400)})
        s3 = srv.client()
        assert err(s3.get_object, Bucket="tiers", Key="GLACIER") == ("InvalidObjectState", 403)
        assert "Restore" not in s3.head_object(Bucket="tiers", Key="GLACIER")
        assert s3.restore_object(Bucket="tiers", Key="GLACIER",
                                 RestoreRequest={"Days": 1})["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert s3.get_object(Bucket="tiers", Key="thawed")["Body"].read() == body
    finally:
        srv.stop()


def test_storage_class_of_multipart_uploads_and_attributes(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp-ia", StorageClass="ONEZONE_IA")["UploadId"]
    assert [u["StorageClass"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
            if u["UploadId"] == up] == ["ONEZONE_IA"]
    e = s3.upload_part(Bucket=bucket, Key="mp-ia", UploadId=up, PartNumber=1, Body=b"only part")["ETag"]
    assert s3.list_parts(Bucket=bucket, Key="mp-ia", UploadId=up)["StorageClass"] == "ONEZONE_IA"
    s3.complete_multipart_upload(Bucket=bucket, Key="mp-ia", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert s3.head_object(Bucket=bucket, Key="mp-ia")["StorageClass"] == "ONEZONE_IA"
    attrs = s3.get_object_attributes(Bucket=bucket, Key="mp-ia", ObjectAttributes=["StorageClass"])
    assert attrs["StorageClass"] == "ONEZONE_IA"
    s3.put_object(Bucket=bucket, Key="plain-standard", Body=b"x")
    assert s3.get_object_attributes(Bucket=bucket, Key="plain-standard",
                                    ObjectAttributes=["StorageClass"])["StorageClass"] == "STANDARD"


@pytest.mark.parametrize("edit", ["drop the class", "forge a restore"])
def test_editing_meta_db_cannot_thaw_an_archived_object(server, s3, bucket, edit):
    """The storage class and restore state are under the record's row MAC: an archived object
    made readable by editing meta.db (class removed, or a restore that never happened) is
    refused, never served."""
    key = f"frozen-{edit.replace(' ', '-')}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"archived secret", StorageClass="DEEP_ARCHIVE")
    db = sqlite3.connect(server.data / "meta.db", timeout=30)
    try:
        (doc,) = db.execute("SELECT doc FROM objects WHERE bucket = ? AND key = ?", (bucket, key.encode())).fetchone()
        doc = json.loads(doc)
        if edit == "drop the class":
            del doc["storage_class"]
        else:
            doc["restore"] = {"completes_ms": 0, "expires_ms": 4_102_444_800_000}
        db.execute("UPDATE objects SET doc = ? WHERE bucket = ? AND key = ?",
                   (json.dumps(doc, separators=(",", ":")), bucket, key.encode()))
        db.commit()
    finally:
        db.close()
    assert err(s3.get_object, Bucket=bucket, Key=key) == ("InternalError", 500)
    assert err(s3.head_object, Bucket=bucket, Key=key)[1] == 500
    assert err(s3.restore_object, Bucket=bucket, Key=key, RestoreRequest={"Days": 1}) == ("InternalError", 500)


def test_operations_we_do_not_know_are_refused_never_misrouted(server, s3, bucket):
    """S3 operations newer than our protocol layer (RenameObject, UpdateObjectEncryption, ABAC,
    S3 Metadata configurations) look like ones it knows (a PutObject, a DeleteBucket): each is
    answered 501 NotImplemented and changes nothing."""
    s3.create_bucket(Bucket="kept-bucket")
    s3.put_object(Bucket=bucket, Key="kept", Body=b"unchanged")
    for method, path, query, body, extra in [
        ("PUT", f"/{bucket}/renamed", "renameObject", b"", {"x-amz-rename-source": f"/{bucket}/kept"}),
        ("PUT", f"/{bucket}/kept", "encryption", b"<ObjectEncryption><SSE-KMS/></ObjectEncryption>", {}),
        ("DELETE", "/kept-bucket", "metadataConfiguration", b"", {}),
        ("GET", f"/{bucket}", "abac", b"", {}),
        ("PUT", f"/{bucket}", "metadataJournalTable", b"<x/>", {}),
    ]:
        r = requests.request(method, url(server, path, query), data=body,
                             headers=sign_v4(server, method, path, body=body, query=query, headers=extra))
        assert r.status_code == 501 and xml_field(r.text, "Code") == "NotImplemented", (path, query, r.text)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"unchanged"
    assert err(s3.head_object, Bucket=bucket, Key="renamed")[1] == 404
    s3.head_bucket(Bucket="kept-bucket")


def test_every_operation_we_do_not_support_answers_not_implemented(s3, bucket):
    """Never a silent accept: each unsupported operation (outside issue 16 §1, §2 and §5, which are
    being built) is 501 NotImplemented and changes nothing."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    calls = [
        lambda: s3.put_bucket_accelerate_configuration(Bucket=bucket, AccelerateConfiguration={"Status": "Enabled"}),
        lambda: s3.get_bucket_accelerate_configuration(Bucket=bucket),
        lambda: s3.list_bucket_analytics_configurations(Bucket=bucket),
        lambda: s3.get_bucket_intelligent_tiering_configuration(Bucket=bucket, Id="a"),
        lambda: s3.get_bucket_inventory_configuration(Bucket=bucket, Id="a"),
        lambda: s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
            {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]}),
        lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
        lambda: s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={}),
        lambda: s3.get_bucket_metrics_configuration(Bucket=bucket, Id="a"),
        lambda: s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={}),
        lambda: s3.get_bucket_replication(Bucket=bucket),
        lambda: s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"}),
        lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        lambda: s3.get_bucket_tagging(Bucket=bucket),
        lambda: s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "i.html"}}),
        lambda: s3.get_object_torrent(Bucket=bucket, Key="k"),
        lambda: s3.select_object_content(Bucket=bucket, Key="k", Expression="select * from s3object",
                                         ExpressionType="SQL", InputSerialization={"CSV": {}},
                                         OutputSerialization={"CSV": {}}),
        lambda: s3.create_session(Bucket=bucket),
        lambda: s3.get_bucket_metadata_table_configuration(Bucket=bucket),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        r = e.value.response
        assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("NotImplemented", 501), r
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_object_lock_is_refused_until_it_is_built(s3, bucket):
    """Issue 16 §2 builds Object Lock; until then a write asking for it is refused (501), never
    stored unprotected, and no bucket claims it."""
    until = time.time() + 86400
    for kw in ({"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}, {"ObjectLockLegalHoldStatus": "ON"}):
        assert err(s3.put_object, Bucket=bucket, Key="locked", Body=b"x", **kw) == ("NotImplemented", 501)
        assert err(s3.create_multipart_upload, Bucket=bucket, Key="locked", **kw) == ("NotImplemented", 501)
    assert err(s3.head_object, Bucket=bucket, Key="locked")[1] == 404
    assert err(s3.create_bucket, Bucket="lock-bucket", ObjectLockEnabledForBucket=True) == ("NotImplemented", 501)
    assert err(s3.head_bucket, Bucket="lock-bucket")[1] == 404
