"""Encryption at rest, end to end with boto3 against the real binary (issue 5).

Every mode (SSE-S3, SSE-KMS, SSE-KMS + bucket key, DSSE-KMS, SSE-C) is written and read through
the S3 API, and the data directory is inspected: no plaintext marker may appear anywhere in it,
and a flipped stored byte must turn a read into an error, never into altered bytes.
"""

import base64
import json
import hashlib
import os
import pathlib

import pytest
import requests
from botocore.exceptions import ClientError

MARKER = b"SEALBOX-PLAINTEXT-MARKER-0123456789"

def _customer_key(seed=b"k"):
    key = hashlib.sha256(seed).digest()
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(key).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


def _payload(size):
    body = bytearray(os.urandom(size))
    for off in range(0, max(size - len(MARKER), 0), 4096):
        body[off:off + len(MARKER)] = MARKER
    return bytes(body)


def _scan_for_marker(root):
    hits = []
    for path in pathlib.Path(root).rglob("*"):
        if path.is_file() and MARKER in path.read_bytes():
            hits.append(str(path))
    return hits


def test_every_mode_round_trips_and_no_plaintext_reaches_disk(server):
    s3 = server.client(tls=True)
    kms = server.client("kms", tls=True)
    key_id = kms.create_key(Description="app")["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="sse-all")
    data = _payload(300_000)
    modes = {
        "none": {},
        "s3": {"ServerSideEncryption": "AES256"},
        "kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id},
        "kms-default-key": {"ServerSideEncryption": "aws:kms"},
        "kms-bucket-key": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id, "BucketKeyEnabled": True},
        "dsse": {"ServerSideEncryption": "aws:kms:dsse", "SSEKMSKeyId": key_id},
        "ssec": _customer_key(),
    }
    for name, args in modes.items():
        put = s3.put_object(Bucket="sse-all", Key=name, Body=data, **args)
        read_args = _customer_key() if name == "ssec" else {}
        got = s3.get_object(Bucket="sse-all", Key=name, **read_args)
        assert got["Body"].read() == data, name
        head = s3.head_object(Bucket="sse-all", Key=name, **read_args)
        if name == "ssec":
            assert "ServerSideEncryption" not in put
            assert head["SSECustomerAlgorithm"] == "AES256"
        else:
            expected = {"none": "AES256", "s3": "AES256", "dsse": "aws:kms:dsse"}.get(name, "aws:kms")
            assert put["ServerSideEncryption"] == expected, name
            assert head["ServerSideEncryption"] == expected, name
        if name in ("kms", "kms-bucket-key", "dsse"):
            assert put["SSEKMSKeyId"].endswith(f":key/{key_id}")
            assert put["SSEKMSKeyId"].startswith("arn:aws:kms:us-east-1:")
        assert head.get("BucketKeyEnabled", False) == (name == "kms-bucket-key"), name
        md5 = hashlib.md5(data).hexdigest()
        # SSE-S3 ETags are the MD5 of the plaintext; KMS, DSSE and SSE-C ETags are not (C.4).
        assert (put["ETag"].strip('"') == md5) == (name in ("none", "s3")), name
        # Ranges decrypt only what they need and return exactly the slice.
        part = s3.get_object(Bucket="sse-all", Key=name, Range="bytes=70000-140001", **read_args)
        assert part["Body"].read() == data[70000:140002]
    assert _scan_for_marker(server.data) == []


def test_default_encryption_precedence_and_truthful_heads(server):
    s3 = server.client()
    kms = server.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="defaults")
    enc = s3.get_bucket_encryption(Bucket="defaults")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    s3.put_object(Bucket="defaults", Key="before", Body=b"x")
    s3.put_bucket_encryption(
        Bucket="defaults",
        ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
            "BucketKeyEnabled": True}]},
    )
    put = s3.put_object(Bucket="defaults", Key="after", Body=b"y")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"].endswith(key_id)
    assert put["BucketKeyEnabled"] is True
    override = s3.put_object(Bucket="defaults", Key="override", Body=b"z", ServerSideEncryption="AES256")
    assert override["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket="defaults", Key="before")["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket="defaults", Key="after")["ServerSideEncryption"] == "aws:kms"
    s3.delete_bucket_encryption(Bucket="defaults")
    assert s3.put_object(Bucket="defaults", Key="later", Body=b"w")["ServerSideEncryption"] == "AES256"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_encryption(
            Bucket="defaults",
            ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256", "KMSMasterKeyID": key_id}}]},
        )
    assert e.value.response["Error"]["Code"] == "InvalidArgument"


def test_bad_encryption_input_gets_aws_errors(server):
    s3 = server.client()
    tls = server.client(tls=True)
    s3.create_bucket(Bucket="bad-input")

    def code(fn, **kw):
        with pytest.raises(ClientError) as e:
            fn(**kw)
        return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]

    assert code(s3.put_object, Bucket="bad-input", Key="k", Body=b"x", ServerSideEncryption="aws:fsx") == ("InvalidArgument", 400)
    assert code(s3.put_object, Bucket="bad-input", Key="k", Body=b"x", ServerSideEncryption="AES256", SSEKMSKeyId="k") == ("InvalidArgument", 400)
    assert code(s3.put_object, Bucket="bad-input", Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/nope") == ("KMS.NotFoundException", 400)
    assert code(s3.put_object, Bucket="bad-input", Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSEncryptionContext="not-json") == ("InvalidArgument", 400)
    # SSE-C over plain HTTP is refused; over TLS a wrong-length key or MD5 is refused.
    assert code(s3.put_object, Bucket="bad-input", Key="k", Body=b"x", **_customer_key()) == ("InvalidRequest", 400)
    bad = _customer_key()
    bad["SSECustomerKeyMD5"] = base64.b64encode(b"0" * 16).decode()
    assert code(tls.put_object, Bucket="bad-input", Key="k", Body=b"x", **bad) == ("InvalidArgument", 400)
    assert code(tls.put_object, Bucket="bad-input", Key="k", Body=b"x", SSECustomerAlgorithm="AES128",
                SSECustomerKey=_customer_key()["SSECustomerKey"]) in (("InvalidEncryptionAlgorithmError", 400), ("InvalidArgument", 400))
    assert s3.list_objects_v2(Bucket="bad-input")["KeyCount"] == 0


def test_sse_c_needs_the_same_key(server):
    s3 = server.client(tls=True)
    s3.create_bucket(Bucket="ssec")
    s3.put_object(Bucket="ssec", Key="k", Body=b"secret", **_customer_key(b"one"))

    def err(**kw):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="ssec", Key="k", **kw)
        return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]

    assert err() == ("InvalidRequest", 400)
    assert err(**_customer_key(b"two")) == ("AccessDenied", 403)
    assert s3.get_object(Bucket="ssec", Key="k", **_customer_key(b"one"))["Body"].read() == b"secret"
    # A self-copy with a new key rotates the customer key.
    copy_src = {f"CopySource{k}": v for k, v in _customer_key(b"one").items()}
    s3.copy_object(Bucket="ssec", Key="k", CopySource={"Bucket": "ssec", "Key": "k"}, **copy_src, **_customer_key(b"two"))
    assert s3.get_object(Bucket="ssec", Key="k", **_customer_key(b"two"))["Body"].read() == b"secret"
    assert err(**_customer_key(b"one")) == ("AccessDenied", 403)


def test_flipped_stored_byte_is_an_error_never_altered_data(server):
    s3 = server.client()
    s3.create_bucket(Bucket="tamper")
    data = _payload(200_000)
    s3.put_object(Bucket="tamper", Key="victim", Body=data)
    s3.put_object(Bucket="tamper", Key="bystander", Body=b"fine")
    blobs = [p for p in (server.data / "blobs").rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    assert len(blobs) == 1
    raw = bytearray(blobs[0].read_bytes())
    raw[150_000] ^= 0x01
    blobs[0].write_bytes(bytes(raw))
    body = b""
    with pytest.raises(Exception):
        got = s3.get_object(Bucket="tamper", Key="victim")
        body = got["Body"].read()
        assert body == data  # reached only if the server served every byte: must not happen
        raise AssertionError("tampered object was served in full")
    assert data[:len(body)] == body  # whatever arrived before the error was authentic
    # The server keeps serving other objects.
    assert s3.get_object(Bucket="tamper", Key="bystander")["Body"].read() == b"fine"
    # The failure is counted and on the audit trail.
    metrics = requests.get(f"http://127.0.0.1:{server.port}/metrics").text
    failures = [l for l in metrics.splitlines() if l.startswith("sealbox_object_integrity_failures_total ")]
    assert failures and int(failures[0].split()[1]) >= 1
    server.stop()
    import subprocess
    out = subprocess.run([os.environ.get("SEALBOX_BIN", "/work/cache/target/debug/sealbox"), "audit", "lookup", "--data",
                          str(server.data), "--event-name", "ObjectIntegrityFailure"], capture_output=True, text=True,
                         env=dict(os.environ, RUST_BACKTRACE="0"))
    assert '"key": "victim"' in out.stdout


def test_multipart_and_copy_change_encryption(server):
    s3 = server.client()
    kms = server.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="mpu")
    part = _payload(5 * 1024 * 1024)
    up = s3.create_multipart_upload(Bucket="mpu", Key="big", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert up["ServerSideEncryption"] == "aws:kms"
    etags = []
    for n in (1, 2):
        r = s3.upload_part(Bucket="mpu", Key="big", UploadId=up["UploadId"], PartNumber=n, Body=part)
        assert r["ServerSideEncryption"] == "aws:kms"
        etags.append({"PartNumber": n, "ETag": r["ETag"]})
    done = s3.complete_multipart_upload(Bucket="mpu", Key="big", UploadId=up["UploadId"], MultipartUpload={"Parts": etags})
    assert done["ETag"].strip('"').endswith("-2")
    got = s3.get_object(Bucket="mpu", Key="big", PartNumber=2)
    assert got["Body"].read() == part and got["PartsCount"] == 2
    # Copy SSE-S3 -> SSE-KMS, then re-encrypt in place with a self-copy.
    s3.put_object(Bucket="mpu", Key="plain", Body=b"abc")
    c = s3.copy_object(Bucket="mpu", Key="kms-copy", CopySource={"Bucket": "mpu", "Key": "plain"},
                       ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert c["ServerSideEncryption"] == "aws:kms"
    s3.copy_object(Bucket="mpu", Key="plain", CopySource={"Bucket": "mpu", "Key": "plain"},
                   ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    head = s3.head_object(Bucket="mpu", Key="plain")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert s3.get_object(Bucket="mpu", Key="plain")["Body"].read() == b"abc"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket="mpu", Key="plain", CopySource={"Bucket": "mpu", "Key": "plain"})
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    assert _scan_for_marker(server.data) == []


def test_disabled_key_makes_objects_unreadable_and_rotation_keeps_them(server):
    s3 = server.client()
    kms = server.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="lifecycle")
    s3.put_object(Bucket="lifecycle", Key="old", Body=b"before rotation", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    s3.put_object(Bucket="lifecycle", Key="bk", Body=b"bucket key", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id,
                  BucketKeyEnabled=True)
    kms.rotate_key_on_demand(KeyId=key_id)
    s3.put_object(Bucket="lifecycle", Key="new", Body=b"after rotation", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert s3.get_object(Bucket="lifecycle", Key="old")["Body"].read() == b"before rotation"
    assert s3.get_object(Bucket="lifecycle", Key="new")["Body"].read() == b"after rotation"
    kms.disable_key(KeyId=key_id)
    for k in ("old", "new", "bk"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="lifecycle", Key=k)
        assert e.value.response["Error"]["Code"] == "KMS.DisabledException", k
    kms.enable_key(KeyId=key_id)
    assert s3.get_object(Bucket="lifecycle", Key="bk")["Body"].read() == b"bucket key"


def test_bucket_keys_make_few_kms_calls(server):
    s3 = server.client()
    kms = server.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="bk-yes")
    s3.create_bucket(Bucket="bk-no")

    def kms_calls():
        text = requests.get(f"http://127.0.0.1:{server.port}/metrics").text
        total = 0
        for line in text.splitlines():
            if line.startswith("sealbox_kms_s3_calls_total"):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    before = kms_calls()
    for i in range(200):
        s3.put_object(Bucket="bk-yes", Key=f"o{i}", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id,
                      BucketKeyEnabled=True)
    with_bucket_key = kms_calls() - before
    before = kms_calls()
    for i in range(200):
        s3.put_object(Bucket="bk-no", Key=f"o{i}", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    without = kms_calls() - before
    assert without == 200
    assert with_bucket_key <= 2
    hits = requests.get(f"http://127.0.0.1:{server.port}/metrics").text
    assert 'sealbox_bucket_key_cache_total{result="hit"} 19' in hits or 'result="hit"} 199' in hits


def _wrapped_versions(server, bucket):
    """Material version named by every wrapped data key of every object, read from the meta store."""
    import sqlite3
    db = sqlite3.connect(f"file:{server.data / 'meta.db'}?mode=ro", uri=True)
    out = {}
    for key, doc in db.execute("SELECT key, doc FROM objects WHERE bucket = ?", (bucket,)):
        sse = json.loads(json.loads(doc)["sse"])
        out[key.decode()] = [int.from_bytes(base64.b64decode(w)[20:24], "big") for w in sse["wrapped_keys"]]
    db.close()
    return out


def test_rewrap_moves_every_data_key_to_the_newest_material(server):
    import subprocess
    s3 = server.client()
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="rewrap")
    bodies = {}
    for name, args in {"kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key},
                       "dsse": {"ServerSideEncryption": "aws:kms:dsse", "SSEKMSKeyId": key},
                       "bk": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key, "BucketKeyEnabled": True},
                       "ssec": None}.items():
        bodies[name] = os.urandom(100_000)
        if args is None:
            continue
        s3.put_object(Bucket="rewrap", Key=name, Body=bodies[name], **args)
    assert set(v for vs in _wrapped_versions(server, "rewrap").values() for v in vs) == {1}
    kms.rotate_key_on_demand(KeyId=key)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key, RUST_BACKTRACE="0")
    out = subprocess.run([os.environ.get("SEALBOX_BIN", "/work/cache/target/debug/sealbox"), "rewrap", "rewrap",
                          "--endpoint", f"http://127.0.0.1:{server.port}"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["rewrapped"] == 3 and report["failed"] == 0
    assert set(v for vs in _wrapped_versions(server, "rewrap").values() for v in vs) == {2}
    for name in ("kms", "dsse", "bk"):
        assert s3.get_object(Bucket="rewrap", Key=name)["Body"].read() == bodies[name]
    again = subprocess.run([os.environ.get("SEALBOX_BIN", "/work/cache/target/debug/sealbox"), "rewrap", "rewrap",
                            "--endpoint", f"http://127.0.0.1:{server.port}"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["already_current"] == 3
