"""Attacks on the audit trail (issue 12, section 3), each against the real binary:

- the audit disk fills up or turns read-only: no KMS/IAM/admin call, and no S3 read or write of an
  SSE-KMS object, is answered with key material, plaintext or a new secret unless its record is
  durable; /health/ready says why it is not ready; everything works again once the disk does, and
  the trail still verifies as one chain;
- anonymous denied requests and requests with a bad signature are on the trail, with the claimed
  access key; a flood of 2,000 of them costs a bounded number of records whose counts add up;
- a forger who can write the data directory rewrites the chain, re-signs it with a key of their own
  and replaces the public key copy: verification against the key (or fingerprint) the verifier
  kept fails, and the server refuses to start instead of silently accepting the replaced key.
"""

import base64
import hashlib
import json
import os
import subprocess
import time

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import SEALBOX_BIN, Server

SECRET_BODY = b"SEALBOX-AUDIT-ATTACK-PLAINTEXT-0123456789"
NOT_READY = "audit trail cannot be written"


# --- helpers -------------------------------------------------------------------------------------

def cli(*args):
    p = subprocess.run([SEALBOX_BIN, *args], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, RUST_BACKTRACE="0"))
    return p.returncode, p.stdout + p.stderr


def first_start_fingerprint(server):
    log = (server.data.parent / f"server-{server.port}.log").read_text(errors="replace")
    return log.split("audit key fingerprint: ")[1].split()[0]


def lookup(server, **flt):
    args = ["audit", "lookup", "--data", str(server.data), "--max-results", "100000"]
    for k, v in flt.items():
        args += [f"--{k.replace('_', '-')}", v]
    code, out = cli(*args)
    assert code == 0, out
    return json.loads(out)["Records"]


def signed(server, method, path, service, body=b"", headers=None, query="", secret=None, access_key=None):
    """A raw request signed with SigV4 (botocore's signer), so the test sees the exact bytes."""
    url = f"http://127.0.0.1:{server.port}{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    creds = Credentials(access_key or server.access_key, secret or server.secret_key)
    (S3SigV4Auth if service == "s3" else SigV4Auth)(creds, service, "us-east-1").add_auth(req)
    return requests.request(method, url, data=body, headers=dict(req.headers.items()), timeout=60)


def kms_call(server, op, payload):
    return signed(server, "POST", "/", "kms", json.dumps(payload).encode(),
                  {"X-Amz-Target": f"TrentService.{op}", "Content-Type": "application/x-amz-json-1.1"})


def iam_call(server, form):
    return signed(server, "POST", "/", "iam", form.encode(),
                  {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def ready(server):
    return requests.get(f"http://127.0.0.1:{server.port}/health/ready", timeout=5)


def wait_until(what, cond, timeout=60):
    """Polls an outcome (the writer retries on its own timer); asserts the outcome, not the time."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def mount_or_skip(args, what):
    p = subprocess.run(["mount", *args], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot {what} here ({p.stderr.strip()}): needs root and mount permission")


@pytest.fixture
def audit_on_tmpfs(tmp_path):
    """A data dir whose audit/ directory is a small tmpfs of its own (so only the trail fills up)."""
    data = tmp_path / "data"
    (data / "audit").mkdir(parents=True)
    mount_or_skip(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(data / "audit")], "mount a tmpfs")
    yield data
    subprocess.run(["umount", "-l", str(data / "audit")], capture_output=True)


@pytest.fixture
def read_only_switch(tmp_path):
    """Turns a directory read-only for new lookups (a read-only bind mount stacked on it; files
    the server already has open stay writable through their descriptors, as on a real remount)
    and back (unmounting it)."""
    mounted = []

    def make_read_only(directory):
        mount_or_skip(["--bind", str(directory), str(directory)], "bind-mount a directory")
        mounted.append(directory)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)

    def make_writable():
        subprocess.run(["umount", str(mounted.pop())], check=True)

    yield make_read_only, make_writable
    for directory in mounted:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def fill(directory):
    """Writes until the volume is full (to the last page); returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * size) > 0:
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def assert_refused_kms(resp, *secrets):
    assert resp.status_code == 500, resp.text
    assert resp.json()["__type"] == "KMSInternalException"
    for s in secrets:
        assert s not in resp.content
    assert b"Plaintext" not in resp.content


def key_use_is_refused(server, key_id, blob):
    """One Decrypt; True if refused (and then with nothing of the key in it)."""
    r = kms_call(server, "Decrypt", {"CiphertextBlob": base64.b64encode(blob).decode()})
    if r.status_code == 200:
        return False
    assert_refused_kms(r, base64.b64encode(b"launch codes"))
    return True


# --- 1. the trail fails closed --------------------------------------------------------------------

def test_full_audit_disk_refuses_every_audited_call_and_recovers(audit_on_tmpfs):
    data = audit_on_tmpfs
    server = Server(data)
    try:
        fingerprint = first_start_fingerprint(server)
        kms, s3, iam = server.client("kms"), server.client(), server.client("iam")
        key = kms.create_key(Description="vault")["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"launch codes")["CiphertextBlob"]
        s3.create_bucket(Bucket="vault")
        s3.put_object(Bucket="vault", Key="doc", Body=SECRET_BODY, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
        iam.create_user(UserName="bob")
        keys_before = len(kms.list_keys()["Keys"])

        filler = fill(data / "audit")
        # The first records may still fit the last page of the log file; once a write fails,
        # every Decrypt is refused, without plaintext.
        refused = False
        for _ in range(200):
            if key_use_is_refused(server, key, blob):
                refused = True
                break
        assert refused, "the audit disk never filled"
        assert key_use_is_refused(server, key, blob)
        r = ready(server)
        assert r.status_code == 503 and NOT_READY in r.text, r.text

        gdk = kms_call(server, "GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})
        assert_refused_kms(gdk)
        assert_refused_kms(kms_call(server, "CreateKey", {"Description": "while blind"}))
        assert_refused_kms(kms_call(server, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7}))

        created = iam_call(server, "Action=CreateAccessKey&UserName=bob&Version=2010-05-08")
        assert created.status_code == 500, created.text
        assert "<Code>ServiceFailure</Code>" in created.text and "<Type>Receiver</Type>" in created.text
        assert "SecretAccessKey" not in created.text

        get = signed(server, "GET", "/vault/doc", "s3")
        assert get.status_code == 500, get.text
        assert "KMS.KMSInternalException" in get.text and SECRET_BODY not in get.content
        put = signed(server, "PUT", "/vault/new", "s3", b"never stored",
                     {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": key})
        assert put.status_code == 500, put.text
        rewrap = signed(server, "POST", "/_sealbox/rewrap", "s3", query="bucket=vault")
        assert rewrap.status_code == 503, rewrap.text
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*"}]})
        pol = signed(server, "PUT", "/vault", "s3", policy.encode(), query="policy=")
        assert pol.status_code == 503 and "<Code>ServiceUnavailable</Code>" in pol.text, pol.text

        # Space returns: the writer recovers by itself.
        filler.unlink()
        wait_until("ready again", lambda: ready(server).status_code == 200)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"launch codes"
        assert s3.get_object(Bucket="vault", Key="doc")["Body"].read() == SECRET_BODY
        # Nothing that was refused happened.
        assert len(kms.list_keys()["Keys"]) == keys_before
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
        assert iam.list_access_keys(UserName="bob")["AccessKeyMetadata"] == []
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="vault", Key="new")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        with pytest.raises(ClientError):  # the bucket policy was never applied
            s3.get_bucket_policy(Bucket="vault")
    finally:
        server.stop()
    # One chain across the failure, every record signed by the shutdown digest.
    code, out = cli("audit", "verify", "--data", str(data), "--fingerprint", fingerprint)
    assert code == 0 and "0 newer" in out, out
    recovered = lookup(server, event_name="AuditWriterRecovered")
    assert recovered and "No space left" in recovered[0]["serviceEventDetails"]["error"]


def test_read_only_audit_dir_refuses_and_recovers(tmp_path, read_only_switch):
    make_read_only, make_writable = read_only_switch
    audit = tmp_path / "data" / "audit"
    server = Server(tmp_path / "data", extra_args=("--audit-digest-interval-secs", "1", "--audit-data-events"))
    try:
        fingerprint = first_start_fingerprint(server)
        kms, s3 = server.client("kms"), server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"launch codes")["CiphertextBlob"]
        s3.create_bucket(Bucket="logged")
        s3.put_object(Bucket="logged", Key="doc", Body=SECRET_BODY)
        make_read_only(audit)
        # The open log file stays writable through its descriptor; the next file (after the
        # digest that seals it, every second) cannot be created.
        wait_until("a refusal", lambda: key_use_is_refused(server, key, blob))
        r = ready(server)
        assert r.status_code == 503 and "Read-only file system" in r.text, r.text
        assert_refused_kms(kms_call(server, "CreateKey", {}))
        # With data events on, object reads must be recorded too: refused before they run.
        get = signed(server, "GET", "/logged/doc", "s3")
        assert get.status_code == 503 and "<Code>ServiceUnavailable</Code>" in get.text, get.text
        assert SECRET_BODY not in get.content
        make_writable()
        wait_until("ready again", lambda: ready(server).status_code == 200)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"launch codes"
        assert s3.get_object(Bucket="logged", Key="doc")["Body"].read() == SECRET_BODY
    finally:
        server.stop()
    code, out = cli("audit", "verify", "--data", str(audit.parent), "--fingerprint", fingerprint)
    assert code == 0, out
    assert lookup(server, event_name="AuditWriterRecovered")


# --- 2. refused requests are on the trail ---------------------------------------------------------

def test_anonymous_denied_get_is_audited(server):
    s3 = server.client()
    s3.create_bucket(Bucket="private")
    s3.put_object(Bucket="private", Key="doc", Body=b"x")
    r = requests.get(f"http://127.0.0.1:{server.port}/private/doc", headers={"User-Agent": "anon-prober/1.0"})
    assert r.status_code == 403
    server.stop()
    recs = [r for r in lookup(server, event_name="GetObject") if r.get("errorCode") == "AccessDenied"]
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["userIdentity"] == {"type": "AWSAccount", "principalId": "", "accountId": "anonymous"}
    assert rec["sourceIPAddress"] == "127.0.0.1" and rec["userAgent"] == "anon-prober/1.0"
    assert rec["requestParameters"]["bucketName"] == "private" and rec["requestParameters"]["key"] == "doc"
    assert rec["recipientAccountId"] == "000000000000"


def test_bad_signature_with_a_real_access_key_is_audited_on_every_api(server):
    def client(service, tag, access_key, secret_key):
        return boto3.client(
            service, endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, user_agent_extra=tag))

    server.client().create_bucket(Bucket="target")
    expect = {
        "s3.amazonaws.com": ("SignatureDoesNotMatch", "s3-forger",
                             lambda c: c.get_object(Bucket="target", Key="doc")),
        "kms.amazonaws.com": ("InvalidSignatureException", "kms-forger", lambda c: c.list_keys()),
        "iam.amazonaws.com": ("SignatureDoesNotMatch", "iam-forger", lambda c: c.list_users()),
        "cloudtrail.amazonaws.com": ("InvalidSignatureException", "trail-forger", lambda c: c.lookup_events()),
    }
    for source, (code, tag, call) in expect.items():
        service = source.split(".")[0]
        with pytest.raises(ClientError) as e:
            call(client(service, tag, server.access_key, "not-the-secret"))
        assert e.value.response["Error"]["Code"] == code, (source, e.value.response)
    # An access key the server does not know is recorded too, with the id it claimed.
    with pytest.raises(ClientError):
        client("s3", "ghost", "AKIANOSUCHKEY0000000", "x").list_buckets()
    server.stop()
    recs = lookup(server, access_key_id=server.access_key)
    for source, (code, tag, _) in expect.items():
        found = [r for r in recs if r["eventSource"] == source and r.get("errorCode") == code]
        assert len(found) == 1, (source, found)
        rec = found[0]
        assert rec["userIdentity"]["type"] == "Unknown"
        assert rec["userIdentity"]["accessKeyId"] == server.access_key
        assert "userName" not in rec["userIdentity"], "an unproven identity is not attributed to a user"
        assert rec["sourceIPAddress"] == "127.0.0.1" and tag in rec["userAgent"]
    kms_rec = [r for r in recs if r["eventSource"] == "kms.amazonaws.com"][0]
    assert kms_rec["eventName"] == "ListKeys"
    ghost = lookup(server, access_key_id="AKIANOSUCHKEY0000000")
    assert [r["errorCode"] for r in ghost] == ["InvalidAccessKeyId"]


def test_a_flood_of_bad_signatures_is_bounded_and_counted(server):
    server.client().create_bucket(Bucket="flooded")
    url = f"http://127.0.0.1:{server.port}/flooded/doc"
    req = AWSRequest(method="GET", url=url, headers={"User-Agent": "flood/1.0"})
    S3SigV4Auth(Credentials(server.access_key, "wrong-secret"), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    n = 2000
    with requests.Session() as session:
        for _ in range(n):
            assert session.get(url, headers=headers, timeout=30).status_code == 403
    server.stop()  # shutdown writes every pending count
    recs = [r for r in lookup(server, access_key_id=server.access_key) if "errorCode" in r]
    individual = [r for r in recs if r["eventName"] != "RequestsSuppressed"]
    summaries = [r for r in recs if r["eventName"] == "RequestsSuppressed"]
    assert all(r["errorCode"] == "SignatureDoesNotMatch" for r in recs)
    assert 1 <= len(individual) <= 10, len(individual)
    assert 1 <= len(summaries) <= 5, summaries
    for s in summaries:
        d = s["serviceEventDetails"]
        assert d["sourceIPAddress"] == "127.0.0.1" and d["accessKeyId"] == server.access_key
    assert len(individual) + sum(s["serviceEventDetails"]["suppressedCount"] for s in summaries) == n
    assert len(lookup(server)) < 50, "the flood did not fill the trail"


# --- 3. a trail re-signed by whoever holds the disk ------------------------------------------------

def _sha256(b):
    return hashlib.sha256(b).hexdigest()


def forge_trail(data, drop_event):
    """What a forger with write access to the data dir does: rewrite the chain without the records
    they want gone, sign a fresh digest with their own Ed25519 key, replace the public key copy."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    audit = data / "audit"
    files = sorted(audit.glob("audit-*.jsonl"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    kept = [json.loads(line)["record"] for f in files for line in f.read_bytes().splitlines()]
    kept = [r for r in kept if r["eventName"] != drop_event]
    for f in files:
        f.unlink()
    for d in (audit / "digests").iterdir():
        d.unlink()
    prev, lines = "0" * 64, []
    for seq, rec in enumerate(kept, 1):
        body = json.dumps(rec, separators=(",", ":"))
        h = _sha256(b"sealbox-audit-v1\n%d\n%s\n%s" % (seq, prev.encode(), body.encode()))
        lines.append(f'{{"seq":{seq},"prev":"{prev}","hash":"{h}","record":{body}}}\n')
        prev = h
    log_name = "audit-20260101T000000Z-000000000001.jsonl"
    content = "".join(lines).encode()
    (audit / log_name).write_bytes(content)
    key = Ed25519PrivateKey.generate()
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    times = [r["eventTime"] for r in kept]
    end, digest_name = "2026-01-01T00:00:01Z", "digest-20260101T000001Z-000001.json"
    doc = {
        "awsAccountId": "000000000000", "digestStartTime": "2026-01-01T00:00:00Z", "digestEndTime": end,
        "digestFile": digest_name, "digestNumber": 1, "digestPublicKeyFingerprint": _sha256(spki),
        "digestSignatureAlgorithm": "Ed25519", "newestEventTime": max(times), "oldestEventTime": min(times),
        "previousDigestFile": None, "previousDigestHashValue": None, "previousDigestHashAlgorithm": "SHA-256",
        "previousDigestSignature": None, "chainHeadSeq": len(kept), "chainHeadHash": prev,
        "logFiles": [{"path": log_name, "hashValue": _sha256(content), "hashAlgorithm": "SHA-256",
                      "bytes": len(content), "firstSeq": 1, "lastSeq": len(kept),
                      "newestEventTime": max(times), "oldestEventTime": min(times)}],
    }
    doc_bytes = json.dumps(doc, indent=2).encode()
    signature = key.sign(f"{end}\n{digest_name}\n{_sha256(doc_bytes)}\nnull".encode()).hex()
    (audit / "digests" / digest_name).write_bytes(doc_bytes)
    (audit / "digests" / f"{digest_name}.sig").write_text(signature + "\n")
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (data / "audit-public-key.pem").write_bytes(pem)
    return _sha256(spki)


def test_a_re_signed_trail_fails_against_the_verifiers_key_and_the_server_refuses_to_start(server, tmp_path):
    fingerprint = first_start_fingerprint(server)
    code, out = cli("audit", "export-key", "--data", str(server.data))
    assert code == 0 and fingerprint in out
    kept_pem = tmp_path / "kept-audit-public.pem"
    kept_pem.write_text(out[out.index("-----BEGIN"):out.index("-----END PUBLIC KEY-----") + 24] + "\n")
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"exfiltrated")["CiphertextBlob"])
    server.stop()
    assert cli("audit", "verify", "--data", str(server.data), "--fingerprint", fingerprint)[0] == 0

    forged_fp = forge_trail(server.data, drop_event="Decrypt")
    assert not [r for r in lookup(server) if r["eventName"] == "Decrypt"], "the forgery hides the Decrypt"

    # Against the data dir's own copy the forgery "verifies": said loudly, with its own exit code.
    code, out = cli("audit", "verify", "--data", str(server.data))
    assert code == 3 and "audit trail OK" in out and "proves NOTHING" in out, out
    # Against what the verifier kept, it fails.
    code, out = cli("audit", "verify", "--data", str(server.data), "--fingerprint", fingerprint)
    assert code == 1 and "FAILED" in out and forged_fp in out, out
    code, out = cli("audit", "verify", "--data", str(server.data), "--public-key", str(kept_pem))
    assert code == 1 and "FAILED" in out and "not the key given" in out, out

    # The server does not "repair" the replaced key copy: it refuses to start, and says why.
    pem_before = (server.data / "audit-public-key.pem").read_bytes()
    with pytest.raises(RuntimeError) as e:
        Server(server.data)
    assert "audit-public-key.pem" in str(e.value) and "replaced" in str(e.value), str(e.value)
    assert fingerprint in str(e.value)
    assert (server.data / "audit-public-key.pem").read_bytes() == pem_before
