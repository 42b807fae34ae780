"""Conditional writes (issue 16, section 4): If-None-Match: * and If-Match on PutObject,
CompleteMultipartUpload and CopyObject, as S3 answers them: 412 PreconditionFailed when the
condition does not hold, 404 NoSuchKey for If-Match on a missing key, 409
ConditionalRequestConflict when the object is deleted while the write is under way, and exactly
one winner among concurrent If-None-Match: * writers (what lock files and leader election on S3
rely on)."""

import os
import threading

import pytest
from botocore.exceptions import ClientError

from conftest import Server
from s3wire import RawConnection, err, sign_v4, xml_field

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("conditional") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server):
    return server.client()


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="cond")
    return "cond"


def body_of(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_put_if_none_match_creates_only(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    assert err(s3.put_object, Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*") == ("PreconditionFailed", 412)
    assert body_of(s3, bucket, "once") == b"first"
    # An ETag in If-None-Match is not a condition S3 writes know.
    assert err(s3.put_object, Bucket=bucket, Key="once", Body=b"x", IfNoneMatch='"abc"')[1] == 501


def test_put_if_match_replaces_only_that_version(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    etag2 = s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag)["ETag"]
    assert body_of(s3, bucket, "cas") == b"v2"
    # The first writer's ETag is stale now: 412, nothing changes.
    assert err(s3.put_object, Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag) == ("PreconditionFailed", 412)
    assert body_of(s3, bucket, "cas") == b"v2"
    # If-Match on a key that does not exist: 404 NoSuchKey (AWS), not a create.
    assert err(s3.put_object, Bucket=bucket, Key="never", Body=b"x", IfMatch=etag2) == ("NoSuchKey", 404)
    assert err(s3.head_object, Bucket=bucket, Key="never")[1] == 404


def multipart(s3, bucket, key, parts):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=p)["ETag"]
             for n, p in enumerate(parts, 1)]
    return up, {"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]}


def test_complete_multipart_upload_conditions(s3, bucket):
    parts = [os.urandom(5 * MiB), b"end"]
    # An upload in progress is not an object: a conditional PUT that finishes first wins, and the
    # upload's conditional Complete then fails (AWS's scenario).
    up, listing = multipart(s3, bucket, "mpu-lock", parts)
    s3.put_object(Bucket=bucket, Key="mpu-lock", Body=b"put won", IfNoneMatch="*")
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="mpu-lock", UploadId=up,
               MultipartUpload=listing, IfNoneMatch="*") == ("PreconditionFailed", 412)
    assert body_of(s3, bucket, "mpu-lock") == b"put won"
    # The failed Complete leaves the upload: it can still complete unconditionally.
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu-lock", UploadId=up, MultipartUpload=listing)
    assert body_of(s3, bucket, "mpu-lock") == b"".join(parts)
    # If-None-Match on a free key, If-Match on the current and on a stale ETag, on a missing key.
    up, listing = multipart(s3, bucket, "mpu-new", parts)
    first = s3.complete_multipart_upload(Bucket=bucket, Key="mpu-new", UploadId=up, MultipartUpload=listing,
                                         IfNoneMatch="*")
    up, listing = multipart(s3, bucket, "mpu-new", [b"replaced"])
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="mpu-new", UploadId=up, MultipartUpload=listing,
               IfMatch='"00000000000000000000000000000000-2"') == ("PreconditionFailed", 412)
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu-new", UploadId=up, MultipartUpload=listing,
                                 IfMatch=first["ETag"])
    assert body_of(s3, bucket, "mpu-new") == b"replaced"
    up, listing = multipart(s3, bucket, "mpu-missing", [b"x"])
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="mpu-missing", UploadId=up, MultipartUpload=listing,
               IfMatch=first["ETag"]) == ("NoSuchKey", 404)


def test_copy_object_destination_conditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="copy-src", Body=b"source")
    dst = s3.put_object(Bucket=bucket, Key="copy-dst", Body=b"destination")
    src = {"Bucket": bucket, "Key": "copy-src"}
    assert err(s3.copy_object, Bucket=bucket, Key="copy-dst", CopySource=src, IfNoneMatch="*") == ("PreconditionFailed", 412)
    assert err(s3.copy_object, Bucket=bucket, Key="copy-dst", CopySource=src, IfMatch='"nope"') == ("PreconditionFailed", 412)
    assert body_of(s3, bucket, "copy-dst") == b"destination"
    s3.copy_object(Bucket=bucket, Key="copy-dst", CopySource=src, IfMatch=dst["ETag"])
    s3.copy_object(Bucket=bucket, Key="copy-new", CopySource=src, IfNoneMatch="*")
    assert body_of(s3, bucket, "copy-dst") == body_of(s3, bucket, "copy-new") == b"source"


@pytest.mark.parametrize("round_", range(3))
def test_exactly_one_of_sixteen_concurrent_creators_wins(server, bucket, round_):
    """16 clients race to create the same key with If-None-Match: *; each writes its own bytes.
    Exactly one gets 200, the 15 others 412, and the object holds the winner's bytes."""
    key = f"lock-{round_}"
    clients = [server.client() for _ in range(16)]
    start = threading.Barrier(16)
    results = [None] * 16

    def writer(i):
        body = f"writer {i} ".encode() * 2000
        start.wait()
        try:
            clients[i].put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            results[i] = 200
        except ClientError as e:
            results[i] = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in enumerate(results) if r == 200]
    assert len(winners) == 1, results
    assert all(r == ("PreconditionFailed", 412) for i, r in enumerate(results) if i != winners[0]), results
    assert body_of(clients[0], bucket, key) == f"writer {winners[0]} ".encode() * 2000


def signed_put_head(server, path, body, extra):
    headers = sign_v4(server, "PUT", path, body=body, headers=dict(extra, **{"Content-Length": str(len(body))}))
    headers["Expect"] = "100-continue"
    headers["Host"] = f"127.0.0.1:{server.port}"
    return headers


def test_a_delete_during_a_conditional_write_is_a_conflict(server, s3, bucket):
    """The object matches If-Match when the write starts; it is deleted before the body arrives:
    409 ConditionalRequestConflict (retry), never a silent create. The 100 Continue shows the
    condition was checked before the body was asked for."""
    etag = s3.put_object(Bucket=bucket, Key="raced", Body=b"original")["ETag"]
    body = b"conditional update"
    path = f"/{bucket}/raced"
    conn = RawConnection(server.port)
    try:
        conn.send_head("PUT", path, signed_put_head(server, path, body, {"If-Match": etag}))
        status, _, _ = conn.read_response(head_only=True)
        assert status == 100
        s3.delete_object(Bucket=bucket, Key="raced")
        conn.send(body)
        status, headers, answer = conn.read_response()
    finally:
        conn.close()
    assert status == 409 and xml_field(answer, "Code") == "ConditionalRequestConflict", answer
    assert headers["x-amz-request-id"] == xml_field(answer, "RequestId")
    assert err(s3.head_object, Bucket=bucket, Key="raced")[1] == 404


def test_failed_conditions_are_answered_before_the_body(server, s3, bucket):
    """A client waiting on Expect: 100-continue gets 412 (or 404) at once and never sends data."""
    s3.put_object(Bucket=bucket, Key="taken", Body=b"already here")
    body = os.urandom(1000)
    for key, extra, want in [("taken", {"If-None-Match": "*"}, (412, "PreconditionFailed")),
                             ("free", {"If-Match": '"abc"'}, (404, "NoSuchKey"))]:
        path = f"/{bucket}/{key}"
        conn = RawConnection(server.port)
        try:
            conn.send_head("PUT", path, signed_put_head(server, path, body, extra))
            status, _, answer = conn.read_response()
        finally:
            conn.close()
        assert (status, xml_field(answer, "Code")) == want, answer
    assert body_of(s3, bucket, "taken") == b"already here"


def test_aws_cli_conditional_put(server, bucket, tmp_path):
    f = tmp_path / "lock.json"
    f.write_text('{"owner": "cli"}')
    args = ["s3api", "put-object", "--bucket", bucket, "--key", "cli-lock", "--body", str(f), "--if-none-match", "*"]
    server.cli(*args)
    second = server.cli(*args, check=False)
    assert second.returncode != 0 and "PreconditionFailed" in second.stderr
