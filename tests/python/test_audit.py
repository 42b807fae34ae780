"""The audit trail (issue 6): a scripted session is recorded as it happened, and tampering with
the trail in each of the five ways (edit, delete, insert, reorder, truncate) is detected."""

import json
import os
import pathlib
import subprocess

import pytest
from botocore.exceptions import ClientError

BIN = os.environ.get("SEALBOX_BIN") or "/work/cache/target/debug/sealbox"


def audit(server, *args):
    p = subprocess.run([BIN, "audit", *args, "--data", str(server.data)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, RUST_BACKTRACE="0"))
    return p.returncode, p.stdout + p.stderr


def first_start_fingerprint(server):
    """The audit key fingerprint the server printed at first start (what an operator keeps)."""
    log = (server.data.parent / f"server-{server.port}.log").read_text(errors="replace")
    return log.split("audit key fingerprint: ")[1].split()[0]


def verify(server):
    """`sealbox audit verify` anchored to the key printed at first start."""
    return audit(server, "verify", "--fingerprint", server.audit_fingerprint)


def records(server, **flt):
    args = ["lookup", "--max-results", "1000"]
    for k, v in flt.items():
        args += [f"--{k.replace('_', '-')}", v]
    code, out = audit(server, *args)
    assert code == 0, out
    return json.loads(out)["Records"]


def scripted_session(server):
    server.audit_fingerprint = first_start_fingerprint(server)
    s3, kms, iam = server.client(), server.client("kms"), server.client("iam")
    key = kms.create_key(Description="audited")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key)
    s3.create_bucket(Bucket="audited")
    s3.put_bucket_encryption(Bucket="audited", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
    s3.put_object(Bucket="audited", Key="doc", Body=b"secret payload")
    s3.get_object(Bucket="audited", Key="doc")["Body"].read()
    iam.create_user(UserName="intruder")
    creds = iam.create_access_key(UserName="intruder")["AccessKey"]
    with pytest.raises(ClientError):
        server.client(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"]).get_object(Bucket="audited", Key="doc")
    return key


def test_session_is_recorded_as_it_happened(server):
    key = scripted_session(server)
    recs = records(server)
    names = [(r["eventSource"], r["eventName"]) for r in reversed(recs)]
    for expected in [("kms.amazonaws.com", "CreateKey"), ("kms.amazonaws.com", "EnableKeyRotation"),
                     ("s3.amazonaws.com", "CreateBucket"), ("s3.amazonaws.com", "PutBucketEncryption"),
                     ("kms.amazonaws.com", "GenerateDataKey"), ("kms.amazonaws.com", "Decrypt"),
                     ("iam.amazonaws.com", "CreateUser"), ("iam.amazonaws.com", "CreateAccessKey"),
                     ("s3.amazonaws.com", "GetObject")]:
        assert expected in names, expected
    via_s3 = [r for r in recs if r["eventName"] == "GenerateDataKey"][0]
    assert via_s3["userIdentity"]["invokedBy"] == "s3.amazonaws.com"
    assert via_s3["requestParameters"]["encryptionContext"]["aws:s3:arn"] == "arn:aws:s3:::audited/doc"
    assert via_s3["resources"][0]["ARN"] == key
    denied = [r for r in recs if r["eventName"] == "GetObject"][0]
    assert denied["errorCode"] == "AccessDenied" and denied["userIdentity"]["userName"] == "intruder"
    trail = b"".join(p.read_bytes() for p in (server.data / "audit").glob("*.jsonl"))
    assert b"secret payload" not in trail and b"SecretAccessKey" not in trail
    assert records(server, event_name="CreateKey")[0]["eventName"] == "CreateKey"
    assert all(r["userIdentity"].get("userName") == "intruder" for r in records(server, user="intruder"))


def test_rotation_is_a_service_event(server):
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    server.restart({"SEALBOX_TEST_CLOCK_OFFSET_SECS": str(366 * 86400)})
    kms = server.client("kms")
    for _ in range(100):
        if kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]:
            break
        import time
        time.sleep(0.1)
    server.stop()
    rot = records(server, event_name="RotateKey")
    assert rot and rot[0]["eventType"] == "AwsServiceEvent"
    assert rot[0]["userIdentity"]["invokedBy"] == "AWS Internal"
    assert rot[0]["serviceEventDetails"]["keyId"] == key["KeyId"]


def _sealed_trail(server):
    scripted_session(server)
    server.stop()  # shutdown writes a final signed digest
    code, out = verify(server)
    assert code == 0, out
    return sorted((server.data / "audit").glob("*.jsonl"))


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("kind", ["edit", "delete", "insert", "reorder", "truncate"])
def test_tampering_is_detected(server, kind):
    files = _sealed_trail(server)
    target = files[-1]
    lines = _lines(target)
    assert len(lines) > 4
    if kind == "edit":
        lines[2] = lines[2].replace(b'"eventName":"', b'"eventName":"X', 1)
    elif kind == "delete":
        del lines[2]
    elif kind == "insert":
        lines.insert(2, lines[1])
    elif kind == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    elif kind == "truncate":
        lines = lines[:-2]
    target.write_bytes(b"".join(lines))
    code, out = verify(server)
    assert code != 0, f"{kind} went unnoticed: {out}"
    assert "FAILED" in out


def test_deleted_digest_is_detected(server):
    _sealed_trail(server)
    digests = sorted((server.data / "audit" / "digests").glob("*.json"))
    digests[0].unlink()
    code, out = verify(server)
    assert code != 0 and "FAILED" in out


def test_data_events_when_enabled(tmp_path):
    from conftest import Server
    server = Server(tmp_path / "data", extra_args=("--audit-data-events",))
    server.audit_fingerprint = first_start_fingerprint(server)
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="data-events")
        s3.put_object(Bucket="data-events", Key="obj", Body=b"12345")
        s3.get_object(Bucket="data-events", Key="obj")["Body"].read()
        server.stop()
        put = records(server, event_name="PutObject")
        get = records(server, event_name="GetObject")
        assert put[0]["eventCategory"] == "Data" and put[0]["managementEvent"] is False
        assert put[0]["requestParameters"] == {"bucketName": "data-events", "key": "obj"}
        assert get[0]["additionalEventData"]["bytesTransferredOut"] == 5
        assert verify(server)[0] == 0
    finally:
        server.stop()


def test_cloudtrail_lookup_events_api(server):
    server.client("kms").create_key(Description="trail")
    server.client().create_bucket(Bucket="trail-bucket")
    out = server.cli("cloudtrail", "lookup-events", "--lookup-attributes",
                     "AttributeKey=EventName,AttributeValue=CreateBucket", "--output", "json").stdout
    events = json.loads(out)["Events"]
    assert [e["EventName"] for e in events] == ["CreateBucket"]
    assert json.loads(events[0]["CloudTrailEvent"])["requestParameters"]["bucketName"] == "trail-bucket"
    ct = server.client("cloudtrail")
    names = [e["EventName"] for e in ct.lookup_events(MaxResults=10)["Events"]]
    assert "CreateKey" in names and "CreateBucket" in names
