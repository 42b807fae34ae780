"""Slow and abusive clients, load, operability (issue 8), bounded in count and time, 127.0.0.1 only."""

import hashlib
import os
import random
import socket
import threading
import time

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import Server

# SEALBOX_HARNESS_SCALE=N loads N times longer (the long version of the load harness).
SCALE = max(1, int(os.environ.get("SEALBOX_HARNESS_SCALE", "1")))


@pytest.fixture
def strict_server(tmp_path):
    srv = Server(tmp_path / "data", extra_args=("--header-timeout-secs", "2", "--body-idle-timeout-secs", "2"))
    yield srv
    srv.stop()


def test_slow_loris_connection_is_closed(strict_server):
    s = socket.create_connection(("127.0.0.1", strict_server.port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    s.settimeout(10)
    started = time.time()
    data = s.recv(1024)
    assert time.time() - started < 8
    assert data == b"" or data.startswith(b"HTTP/1.1 408")
    s.close()


def test_stalled_upload_times_out_and_leaves_nothing(strict_server):
    s3 = strict_server.client()
    s3.create_bucket(Bucket="stall")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "stall", "Key": "k"})
    # Presigned URLs from this client are SigV2; the body stalls after 10 of 1000 bytes.
    host, rest = url.split("://", 1)[1].split("/", 1)
    s = socket.create_connection(("127.0.0.1", strict_server.port))
    s.sendall(f"PUT /{rest} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n".encode() + b"0123456789")
    s.settimeout(15)
    reply = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
            if b"</Error>" in reply:
                break
    except socket.timeout:
        pass
    s.close()
    assert reply == b"" or b"RequestTimeout" in reply or b"IncompleteBody" in reply, reply[:300]
    time.sleep(0.5)
    assert list((strict_server.data / "tmp").iterdir()) == []
    with pytest.raises(ClientError):
        s3.head_object(Bucket="stall", Key="k")


def test_mixed_load_every_get_verified(server):
    s3 = server.client()
    s3.create_bucket(Bucket="load")
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    expected = {}
    lock = threading.Lock()
    errors = []
    counts = {"put": 0, "get": 0, "list": 0, "delete": 0}
    deadline = time.time() + 8 * SCALE

    def worker(seed):
        client = server.client()
        rnd = random.Random(seed)
        while time.time() < deadline:
            op = rnd.random()
            k = f"o{rnd.randrange(200)}"
            try:
                if op < 0.4:
                    body = os.urandom(rnd.choice([10, 5000, 150_000]))
                    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key} if rnd.random() < 0.5 else {}
                    with lock:
                        client.put_object(Bucket="load", Key=k, Body=body, **extra)
                        expected[k] = hashlib.md5(body).hexdigest()
                        counts["put"] += 1
                elif op < 0.8:
                    with lock:
                        want = expected.get(k)
                        if want is None:
                            continue
                        got = client.get_object(Bucket="load", Key=k)["Body"].read()
                        counts["get"] += 1
                    if hashlib.md5(got).hexdigest() != want:
                        errors.append(f"{k}: wrong bytes")
                elif op < 0.9:
                    client.list_objects_v2(Bucket="load", MaxKeys=50)
                    with lock:
                        counts["list"] += 1
                else:
                    with lock:
                        client.delete_object(Bucket="load", Key=k)
                        expected.pop(k, None)
                        counts["delete"] += 1
            except ClientError as e:
                errors.append(str(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32 if SCALE == 1 else 64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60 * SCALE)
    print(f"\nload: {counts}, errors: {len(errors)}")
    assert errors == []
    assert counts["get"] > 0 and counts["put"] > 0


def test_health_and_metrics(server):
    base = f"http://127.0.0.1:{server.port}"
    assert requests.get(f"{base}/health/live").status_code == 200
    assert requests.get(f"{base}/health/ready").status_code == 200
    server.client().list_buckets()
    text = requests.get(f"{base}/metrics").text
    assert 'sealbox_requests_total{api="s3",operation="ListBuckets",status="200"}' in text
    assert "sealbox_request_duration_seconds_bucket" in text
    assert "sealbox_kms_s3_calls_total" in text
