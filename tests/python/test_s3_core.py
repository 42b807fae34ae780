"""Core S3 behaviour with boto3 against the real binary (issue 3): buckets, objects, ranges,
conditionals, metadata, copy, listing, multipart, checksums, presigned URLs, auth errors."""

import base64
import hashlib
import os
import zlib

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError


def err(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle_and_name_rules(s3):
    s3.create_bucket(Bucket="life-cycle")
    assert "life-cycle" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert err(s3.create_bucket, Bucket="life-cycle") == ("BucketAlreadyOwnedByYou", 409)
    s3.head_bucket(Bucket="life-cycle")
    assert s3.get_bucket_location(Bucket="life-cycle").get("LocationConstraint") is None
    s3.put_object(Bucket="life-cycle", Key="k", Body=b"x")
    assert err(s3.delete_bucket, Bucket="life-cycle") == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="life-cycle", Key="k")
    s3.delete_bucket(Bucket="life-cycle")
    assert err(s3.head_bucket, Bucket="life-cycle")[1] == 404
    for bad in ["ab", "Upper", "a..b", "192.168.0.1", "-dash", "x" * 64]:
        assert err(s3.create_bucket, Bucket=bad)[0] == "InvalidBucketName", bad
    assert err(s3.list_objects_v2, Bucket="no-such-bucket") == ("NoSuchBucket", 404)


def test_put_get_head_metadata_and_conditionals(s3, bucket):
    body = b"hello world" * 1000
    put = s3.put_object(Bucket=bucket, Key="dir/obj.txt", Body=body, ContentType="text/plain",
                        CacheControl="max-age=60", ContentDisposition="inline", ContentEncoding="identity",
                        Metadata={"Owner": "alice", "x": "y"})
    etag = put["ETag"]
    assert etag.strip('"') == hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="dir/obj.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain" and got["CacheControl"] == "max-age=60"
    assert got["Metadata"] == {"owner": "alice", "x": "y"}
    head = s3.head_object(Bucket=bucket, Key="dir/obj.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == etag
    assert err(s3.get_object, Bucket=bucket, Key="missing") == ("NoSuchKey", 404)
    assert err(s3.get_object, Bucket=bucket, Key="dir/obj.txt", IfMatch='"nope"') == ("PreconditionFailed", 412)
    assert err(s3.get_object, Bucket=bucket, Key="dir/obj.txt", IfNoneMatch=etag)[1] == 304
    assert err(s3.get_object, Bucket=bucket, Key="dir/obj.txt", IfModifiedSince=head["LastModified"])[1] == 304
    assert s3.get_object(Bucket=bucket, Key="dir/obj.txt", IfMatch=etag)["Body"].read() == body
    # Conditional write: create-only.
    assert err(s3.put_object, Bucket=bucket, Key="dir/obj.txt", Body=b"new", IfNoneMatch="*") == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="fresh", Body=b"new", IfNoneMatch="*")
    # Metadata over 2 KB is refused.
    assert err(s3.put_object, Bucket=bucket, Key="big-meta", Body=b"x", Metadata={"m": "v" * 2100})[0] == "MetadataTooLarge"


def test_ranges(s3, bucket):
    data = bytes(range(256)) * 1000
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    for rng, expect in [("bytes=0-9", data[:10]), ("bytes=100-", data[100:]), ("bytes=-7", data[-7:]),
                        ("bytes=255990-999999", data[255990:])]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["Body"].read() == expect, rng
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=5-9")["ContentRange"] == f"bytes 5-9/{len(data)}"
    assert err(s3.get_object, Bucket=bucket, Key="r", Range=f"bytes={len(data)}-") == ("InvalidRange", 416)


def test_copy_and_metadata_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", Metadata={"a": "1"}, ContentType="text/x")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["Metadata"] == {"a": "1"} and h["ContentType"] == "text/x"
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"b": "2"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"b": "2"}
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"copy me"
    assert err(s3.copy_object, Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})[0] == "InvalidRequest"
    s3.create_bucket(Bucket=bucket + "-other")
    s3.copy_object(Bucket=bucket + "-other", Key="x", CopySource={"Bucket": bucket, "Key": "src"})
    assert s3.get_object(Bucket=bucket + "-other", Key="x")["Body"].read() == b"copy me"


def test_listing_v1_v2_delimiters_paging_and_encoding(s3, bucket):
    keys = ["a", "a+b", "a b", "a%c", "dir/1", "dir/2", "dir/sub/3", "é", "中", "Z"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir/"]
    assert "dir/1" not in [o["Key"] for o in r["Contents"]]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="dir/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["dir/1", "dir/2"] and r["CommonPrefixes"][0]["Prefix"] == "dir/sub/"
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=3, **kw)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == listed
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, StartAfter="dir/2")["Contents"]][0] == "dir/sub/3"
    v1 = s3.list_objects(Bucket=bucket, MaxKeys=4)
    assert v1["IsTruncated"] and len(v1["Contents"]) == 4
    v1b = s3.list_objects(Bucket=bucket, Marker=v1["Contents"][-1]["Key"])
    assert [o["Key"] for o in v1["Contents"] + v1b["Contents"]] == listed
    assert err(s3.list_objects_v2, Bucket=bucket, ContinuationToken="garbage!!")[0] == "InvalidArgument"


def test_delete_objects_quiet_and_verbose(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k0"}, {"Key": "k1"}, {"Key": "nope"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["k0", "k1", "nope"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k2"}], "Quiet": True})
    assert "Deleted" not in r
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k3", "k4"]


def test_multipart_upload_rules_and_etag(s3, bucket, tmp_path):
    part = os.urandom(5 * 1024 * 1024)
    tail = b"tail"
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=part)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=tail)["ETag"]
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="mp", UploadId=up)["Parts"]] == [1, 2]
    assert up in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=up,
               MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})[0] == "InvalidPartOrder"
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=up,
               MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0000"'}]})[0] == "InvalidPart"
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=up,
               MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e2}]})[0] in ("InvalidPart", "EntityTooSmall")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    md5s = hashlib.md5(part).digest() + hashlib.md5(tail).digest()
    assert done["ETag"].strip('"') == f"{hashlib.md5(md5s).hexdigest()}-2"
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == part + tail
    assert err(s3.list_parts, Bucket=bucket, Key="mp", UploadId=up)[0] == "NoSuchUpload"
    # Small parts are refused when not last.
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    a = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=1, Body=b"a")["ETag"]
    b = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=2, Body=b"b")["ETag"]
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="small", UploadId=up,
               MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": a}, {"PartNumber": 2, "ETag": b}]})[0] == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up)
    assert err(s3.abort_multipart_upload, Bucket=bucket, Key="small", UploadId=up)[0] == "NoSuchUpload"
    assert err(s3.upload_part, Bucket=bucket, Key="x", UploadId="nope", PartNumber=1, Body=b"x")[0] == "NoSuchUpload"
    # UploadPartCopy with a range, and boto3's managed multipart upload.
    up = s3.create_multipart_upload(Bucket=bucket, Key="pc")["UploadId"]
    c = s3.upload_part_copy(Bucket=bucket, Key="pc", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "mp"}, CopySourceRange="bytes=10-109")
    s3.complete_multipart_upload(Bucket=bucket, Key="pc", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": c["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="pc")["Body"].read() == part[10:110]
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * 1024 * 1024 + 3))
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(src), bucket, "managed", Config=cfg)
    s3.download_file(bucket, "managed", str(tmp_path / "back.bin"), Config=cfg)
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    got = s3.get_object(Bucket=bucket, Key="managed", PartNumber=3)
    assert got["PartsCount"] == 3 and len(got["Body"].read()) == 2 * 1024 * 1024 + 3


def test_checksums_are_verified_and_returned(s3, bucket):
    data = b"checksum me" * 100
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    r = s3.put_object(Bucket=bucket, Key="c32", Body=data)  # boto3 adds CRC32 by default
    assert r["ChecksumCRC32"] == crc
    got = s3.get_object(Bucket=bucket, Key="c32", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc and got["Body"].read() == data
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert s3.put_object(Bucket=bucket, Key="s256", Body=data, ChecksumAlgorithm="SHA256")["ChecksumSHA256"] == sha
    assert err(s3.put_object, Bucket=bucket, Key="bad", Body=data, ChecksumCRC32="AAAAAA==")[0] == "BadDigest"
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert err(s3.put_object, Bucket=bucket, Key="bad", Body=data, ContentMD5=bad_md5)[0] == "BadDigest"
    assert err(s3.head_object, Bucket=bucket, Key="bad")[1] == 404


def test_presigned_urls_v4_and_v2(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    v4 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
                      aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert requests.get(url).content == b"presigned"
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=60)
    assert requests.put(put_url, data=b"via url").status_code == 200
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"via url"
    v2_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"})
    assert requests.get(v2_url).content == b"presigned"
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert requests.get(tampered).status_code == 403


def test_auth_errors(server, bucket):
    assert err(server.client(access_key="AKIANOTAKEY", secret_key="x").list_buckets) == ("InvalidAccessKeyId", 403)
    assert err(server.client(secret_key="wrong").list_buckets) == ("SignatureDoesNotMatch", 403)
    r = requests.get(f"http://127.0.0.1:{server.port}/{bucket}")
    assert r.status_code == 403 and b"AccessDenied" in r.content


def test_malformed_xml_and_bad_part_numbers(server, s3, bucket):
    assert err(s3.upload_part, Bucket=bucket, Key="k", UploadId="x", PartNumber=10001, Body=b"x")[0] in ("InvalidArgument", "NoSuchUpload")
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    assert err(s3.upload_part, Bucket=bucket, Key="k", UploadId=up, PartNumber=0, Body=b"x")[0] == "InvalidArgument"
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=up,
               MultipartUpload={"Parts": []})[0] == "MalformedXML"
