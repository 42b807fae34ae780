"""`sealbox backup` of a running server under concurrent writes, and `sealbox restore`: every
object acknowledged before the backup began reads back byte for byte from a server started on the
restored directory with the same root key; objects written during the backup come back whole or
not at all; without the root key nothing is readable; a tampered backup is refused."""

import os
import pathlib
import random
import shutil
import subprocess
import threading
import time

import pytest

from conftest import MARKER, SEALBOX_BIN, Server

SSE_C_KEY = bytes(range(32))


def run(*args, check=None):
    proc = subprocess.run([SEALBOX_BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def body(n):
    return MARKER + os.urandom(n) + MARKER


def fill(srv):
    """Objects in every mode, acknowledged before any backup starts: {(bucket, key): (bytes, sse-c)}."""
    s3, kms = srv.client(), srv.client("kms")
    s3_tls = srv.client(tls=True)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="stable")
    s3.create_bucket(Bucket="bucketkeys")
    s3.put_bucket_encryption(Bucket="bucketkeys", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True}]})
    expected = {}
    for i in range(24):
        data = body(random.randint(0, 200_000))
        mode = i % 4
        if mode == 0:
            s3.put_object(Bucket="stable", Key=f"s3/{i}", Body=data)
            expected[("stable", f"s3/{i}")] = (data, False)
        elif mode == 1:
            s3.put_object(Bucket="stable", Key=f"kms/{i}", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
            expected[("stable", f"kms/{i}")] = (data, False)
        elif mode == 2:
            s3.put_object(Bucket="stable", Key=f"dsse/{i}", Body=data, ServerSideEncryption="aws:kms:dsse")
            expected[("stable", f"dsse/{i}")] = (data, False)
        else:
            s3.put_object(Bucket="bucketkeys", Key=f"bk/{i}", Body=data)
            expected[("bucketkeys", f"bk/{i}")] = (data, False)
    data = body(300_000)
    s3_tls.put_object(Bucket="stable", Key="ssec", Body=data, SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_C_KEY)
    expected[("stable", "ssec")] = (data, True)
    part1, part2 = body(5 * 1024 * 1024), body(70_000)
    mpu = s3.create_multipart_upload(Bucket="stable", Key="multi", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    etags = [s3.upload_part(Bucket="stable", Key="multi", UploadId=mpu["UploadId"], PartNumber=n, Body=p)["ETag"]
             for n, p in ((1, part1), (2, part2))]
    s3.complete_multipart_upload(Bucket="stable", Key="multi", UploadId=mpu["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    expected[("stable", "multi")] = (part1 + part2, False)
    return expected


def read(srv, bucket, key, ssec):
    if ssec:
        return srv.client(tls=True).get_object(Bucket=bucket, Key=key, SSECustomerAlgorithm="AES256",
                                               SSECustomerKey=SSE_C_KEY)["Body"].read()
    return srv.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def test_backup_under_concurrent_writes_restores_every_acknowledged_object(tmp_path):
    # A one-second grace period: blobs the writers replace are deleted while the backup runs.
    srv = Server(tmp_path / "data", extra_args=["--blob-grace-secs", "1"])
    restored_srv = None
    try:
        expected = fill(srv)
        srv.client().create_bucket(Bucket="churn")
        attempted = {}  # key -> every body a writer tried to store there
        stop = threading.Event()
        errors = []

        def writer(n):
            s3 = srv.client()
            j = 0
            try:
                while not stop.is_set():
                    key = f"w{n}/{j % 8}"
                    data = body(random.randint(0, 120_000))
                    attempted.setdefault(key, []).append(data)
                    s3.put_object(Bucket="churn", Key=key, Body=data,
                                  **({"ServerSideEncryption": "aws:kms"} if j % 2 else {}))
                    if j % 5 == 4:
                        s3.delete_object(Bucket="churn", Key=f"w{n}/{(j + 3) % 8}")
                    j += 1
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        dest = tmp_path / "backup"
        out = run("backup", "--data", srv.data, dest, check=0).stdout
        time.sleep(1.5)  # writers keep replacing (and the collector deleting) after the snapshot too
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors
        assert "no root key" in out
        assert not (dest / "root.key").exists()

        restored = tmp_path / "restored"
        out = run("restore", dest, "--data", restored, "--root-key-file", srv.data / "root.key", check=0).stdout
        assert "every check passed" in out, out
        assert "0 SSE-C objects" not in out, "the SSE-C object was length-checked"

        # The same root key serves the restored directory; every object acknowledged before the
        # backup began reads back byte for byte.
        restored_srv = Server(restored, extra_args=["--root-key-file", str(srv.data / "root.key")])
        for (bucket, key), (data, ssec) in expected.items():
            assert read(restored_srv, bucket, key, ssec) == data, f"{bucket}/{key}"
        # Objects written during the backup are whole versions that a writer sent, or absent.
        listed = restored_srv.client().list_objects_v2(Bucket="churn").get("Contents", [])
        assert listed, "the writers had written objects before the backup began"
        for obj in listed:
            got = read(restored_srv, "churn", obj["Key"], False)
            assert got in attempted[obj["Key"]], obj["Key"]
        assert run("audit", "verify", "--data", restored).returncode in (0, 3)
    finally:
        srv.stop()
        if restored_srv:
            restored_srv.stop()


def test_without_the_root_key_nothing_is_readable(tmp_path):
    srv = Server(tmp_path / "data")
    try:
        expected = fill(srv)
    finally:
        srv.stop()
    dest = tmp_path / "backup"
    run("backup", "--data", srv.data, dest, check=0)
    # No plaintext anywhere in the backup, and no key to open it.
    for path in dest.rglob("*"):
        if path.is_file():
            assert MARKER not in path.read_bytes(), path
    assert not (dest / "root.key").exists()
    failed = run("restore", dest, "--data", tmp_path / "r1", check=1)
    assert "no root key" in failed.stderr
    assert not (tmp_path / "r1").exists()
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    wrong.chmod(0o600)
    failed = run("restore", dest, "--data", tmp_path / "r2", "--root-key-file", wrong, check=1)
    assert "root key" in failed.stderr
    assert not (tmp_path / "r2").exists()
    # Served as it is, the backup is refused: a new root key cannot open its key store.
    copy = tmp_path / "as-is"
    shutil.copytree(dest, copy)
    with pytest.raises(RuntimeError, match="right root key"):
        Server(copy)
    # With --with-root-key the backup carries its key (0600) and restores on its own.
    dest2 = tmp_path / "backup-with-key"
    run("backup", "--data", srv.data, dest2, "--with-root-key", check=0)
    assert (dest2 / "root.key").stat().st_mode & 0o777 == 0o600
    run("restore", dest2, "--data", tmp_path / "r3", check=0)
    restored = Server(tmp_path / "r3")
    try:
        for (bucket, key), (data, ssec) in list(expected.items())[:6]:
            assert read(restored, bucket, key, ssec) == data
    finally:
        restored.stop()


def test_restore_refuses_a_tampered_backup(tmp_path):
    srv = Server(tmp_path / "data")
    try:
        fill(srv)
    finally:
        srv.stop()
    key = srv.data / "root.key"
    dest = tmp_path / "backup"
    run("backup", "--data", srv.data, dest, check=0)

    def tampered(name, change):
        copy = tmp_path / f"backup-{name}"
        shutil.copytree(dest, copy)
        change(copy)
        proc = run("restore", copy, "--data", tmp_path / f"restored-{name}", "--root-key-file", key, check=1)
        assert not (tmp_path / f"restored-{name}").exists()
        return proc.stderr

    def flip_deep_byte(root):
        blob = max((p for p in (root / "blobs").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        data = bytearray(blob.read_bytes())
        data[len(data) - 1000] ^= 0x01  # far from the first segment
        blob.write_bytes(bytes(data))

    assert "failed their check" in tampered("blob", flip_deep_byte)

    def edit_audit_record(root):
        log = sorted((root / "audit").glob("*.jsonl"))[0]
        log.write_text(log.read_text().replace('"CreateBucket"', '"DeleteBucket"', 1))
        manifest = (root / "sealbox-backup.json")
        import hashlib
        import json
        doc = json.loads(manifest.read_text())
        doc["files"][str(log.relative_to(root))] = hashlib.sha256(log.read_bytes()).hexdigest()
        manifest.write_text(json.dumps(doc))

    assert "audit trail does not verify" in tampered("audit", edit_audit_record)

    def drop_blob(root):
        next(p for p in (root / "blobs").rglob("*") if p.is_file()).unlink()

    assert "failed their check" in tampered("missing", drop_blob)
    assert "do not match its manifest" in tampered(
        "manifest", lambda root: (root / "root-credentials.json").write_text("{}"))
    # The untouched backup still restores.
    run("restore", dest, "--data", tmp_path / "fine", "--root-key-file", key, check=0)
