"""Bounded fuzzing of the S3 XML body parsers over HTTP (issue 8). Every answer must be a client error (or success), never a 5xx, a hang or a
crash; the server keeps serving. Longer runs: raise ROUNDS."""

import hashlib
import random

import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROUNDS = 60 * max(1, int(__import__('os').environ.get('SEALBOX_HARNESS_SCALE', '1')))

XML_TARGETS = [
    ("POST", "/fuzz?delete", "DeleteObjects"),
    ("PUT", "/fuzz?encryption", "PutBucketEncryption"),
    ("PUT", "/fuzz?versioning", "PutBucketVersioning"),
    ("PUT", "/fuzz?policy", "PutBucketPolicy"),
    ("PUT", "/fuzz/obj?tagging", "PutObjectTagging"),
]
FRAGMENTS = [b"<Delete>", b"</Delete>", b"<Object><Key>", b"</Key></Object>", b"<Quiet>true</Quiet>",
             b"<ServerSideEncryptionConfiguration>", b"<Rule>", b"<ApplyServerSideEncryptionByDefault>",
             b"<SSEAlgorithm>aws:kms</SSEAlgorithm>", b"<KMSMasterKeyID>", b"</Rule>", b"<Tagging><TagSet>",
             b"<Tag><Key>a</Key><Value>b</Value></Tag>", b"<VersioningConfiguration><Status>", b"&amp;", b"&#0;",
             b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"\xff\xfe", b"{\"Statement\": [", b"]]>", b"<?xml version='1.0'?>"]


def signed(server, method, path, body, extra=None):
    url = f"http://127.0.0.1:{server.port}{path}"
    headers = {"Content-MD5": __import__("base64").b64encode(hashlib.md5(body).digest()).decode()}
    headers.update(extra or {})
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    S3SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", "us-east-1").add_auth(req)
    return requests.request(method, url, data=body, headers=dict(req.headers), timeout=30)


def test_random_xml_bodies_get_client_errors(server):
    s3 = server.client()
    s3.create_bucket(Bucket="fuzz")
    s3.put_object(Bucket="fuzz", Key="obj", Body=b"x")
    rnd = random.Random(1234)
    statuses = {}
    for _ in range(ROUNDS):
        method, path, name = rnd.choice(XML_TARGETS)
        body = b"".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randrange(0, 12)))
        if rnd.random() < 0.3:
            body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300)))
        r = signed(server, method, path, body)
        statuses.setdefault(name, set()).add(r.status_code)
        assert r.status_code < 500, (name, body[:200], r.status_code, r.text[:300])
    assert s3.get_object(Bucket="fuzz", Key="obj")["Body"].read() == b"x"
