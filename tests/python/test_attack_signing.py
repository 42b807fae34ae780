"""Attacks on request signing (issue 12, section 1), each a hand-made request a reader can rerun.

A signature covers only what it names. Every request below carries a valid signature by the
root user for *something*, and tries to make the server do something else: act on an unsigned
x-amz-* header (copy another object into a presigned upload, change encryption, metadata, tags,
the KMS operation), keep an unsigned body (IAM), outlive AWS's 7-day presign limit, or mix two
auth mechanisms. Each test asserts the status, the AWS error code and that nothing changed.
"""

import json
import re

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

NOT_SIGNED = "There were headers present in the request which were not signed"
ONE_MECHANISM = ("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
                 "string parameter or the Authorization header should be specified")
SECRET = b"the contents of beta/secret, which the holder of an upload URL must never read"


def creds(server):
    return Credentials(server.access_key, server.secret_key)


def url(server, path, query=""):
    return f"http://127.0.0.1:{server.port}{path}" + (f"?{query}" if query else "")


def s3_header_signed(server, method, path, body=b"", headers=None, query=""):
    """The headers botocore signs for an S3 request (all of them, as every SDK does)."""
    req = AWSRequest(method=method, url=url(server, path, query), data=body, headers=dict(headers or {}))
    S3SigV4Auth(creds(server), "s3", "us-east-1").add_auth(req)
    return dict(req.headers)


def presigned_v4(server, method, path, expires=300):
    req = AWSRequest(method=method, url=url(server, path))
    S3SigV4QueryAuth(creds(server), "s3", "us-east-1", expires=expires).add_auth(req)
    return req.url


def xml_field(text, name):
    m = re.search(f"<{name}>(.*?)</{name}>", text, re.S)
    return m.group(1) if m else None


def assert_s3_error(r, status, code, message=None):
    assert r.status_code == status, (r.status_code, r.text)
    assert xml_field(r.text, "Code") == code, r.text
    if message is not None:
        assert xml_field(r.text, "Message") == message, r.text


def assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.fixture
def secret_source(server, s3):
    """beta/secret (SSE-S3) and beta/secret-kms (SSE-KMS), gamma empty: the copy attack's stage."""
    s3.create_bucket(Bucket="beta")
    s3.create_bucket(Bucket="gamma")
    s3.put_object(Bucket="beta", Key="secret", Body=SECRET)
    key = server.client("kms").create_key()["KeyMetadata"]["KeyId"]
    s3.put_object(Bucket="beta", Key="secret-kms", Body=SECRET, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    return key


@pytest.mark.parametrize("source", ["/beta/secret", "/beta/secret-kms", "beta/secret"])
def test_presigned_put_with_unsigned_copy_source_copies_nothing(server, s3, secret_source, source):
    """The issue's reproduction: a presigned PUT URL for gamma/upload.txt plus an unsigned
    x-amz-copy-source header used to answer CopyObjectResult with beta/secret's plaintext."""
    put_url = presigned_v4(server, "PUT", "/gamma/upload.txt")
    r = requests.put(put_url, data=b"", headers={"x-amz-copy-source": source})
    assert_s3_error(r, 403, "AccessDenied", NOT_SIGNED)
    assert xml_field(r.text, "HeadersNotSigned") == "x-amz-copy-source"
    assert b"CopyObjectResult" not in r.content
    assert_absent(s3, "gamma", "upload.txt")
    assert s3.get_object(Bucket="beta", Key="secret")["Body"].read() == SECRET
    # The URL itself still does what it was signed for.
    assert requests.put(put_url, data=b"my upload").status_code == 200
    assert s3.get_object(Bucket="gamma", Key="upload.txt")["Body"].read() == b"my upload"


def test_header_signed_put_replayed_with_copy_source_copies_nothing(server, s3, secret_source):
    headers = s3_header_signed(server, "PUT", "/gamma/upload.txt", body=b"mine")
    r = requests.put(url(server, "/gamma/upload.txt"), data=b"mine",
                     headers={**headers, "x-amz-copy-source": "/beta/secret-kms"})
    assert_s3_error(r, 403, "AccessDenied", NOT_SIGNED)
    assert xml_field(r.text, "HeadersNotSigned") == "x-amz-copy-source"
    assert_absent(s3, "gamma", "upload.txt")


@pytest.mark.parametrize("name,value", [
    ("x-amz-server-side-encryption", "aws:kms"),
    ("x-amz-meta-owner", "mallory"),
    ("x-amz-tagging", "exfiltrate=yes"),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    ("X-Amz-Website-Redirect-Location", "/elsewhere"),
])
def test_unsigned_amz_header_on_header_signed_put_is_refused(server, s3, bucket, name, value):
    headers = s3_header_signed(server, "PUT", f"/{bucket}/k", body=b"data")
    r = requests.put(url(server, f"/{bucket}/k"), data=b"data", headers={**headers, name: value})
    assert_s3_error(r, 403, "AccessDenied", NOT_SIGNED)
    assert xml_field(r.text, "HeadersNotSigned") == name.lower()
    assert_absent(s3, bucket, "k")
    # Signed, the same header is fine.
    signed = s3_header_signed(server, "PUT", f"/{bucket}/k", body=b"data", headers={name: value})
    assert requests.put(url(server, f"/{bucket}/k"), data=b"data", headers=signed).status_code == 200


def test_several_unsigned_headers_are_all_named(server, s3, bucket):
    headers = s3_header_signed(server, "PUT", f"/{bucket}/k", body=b"data")
    extra = {"x-amz-tagging": "a=b", "x-amz-meta-one": "1", "x-amz-server-side-encryption": "aws:kms"}
    r = requests.put(url(server, f"/{bucket}/k"), data=b"data", headers={**headers, **extra})
    assert_s3_error(r, 403, "AccessDenied", NOT_SIGNED)
    assert xml_field(r.text, "HeadersNotSigned") == "x-amz-meta-one, x-amz-server-side-encryption, x-amz-tagging"
    assert_absent(s3, bucket, "k")


def test_unsigned_header_on_get_and_head(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    for method in ("GET", "HEAD"):
        headers = s3_header_signed(server, method, f"/{bucket}/k")
        r = requests.request(method, url(server, f"/{bucket}/k"),
                             headers={**headers, "x-amz-checksum-mode": "ENABLED"})
        assert r.status_code == 403, (method, r.status_code)
        if method == "GET":
            assert_s3_error(r, 403, "AccessDenied", NOT_SIGNED)
        else:
            assert r.content == b""


def test_sdk_headers_that_aws_leaves_unsigned_still_work(server, s3, bucket):
    """User-Agent, amz-sdk-*, X-Amzn-Trace-Id are not x-amz-* headers: AWS ignores them unsigned,
    and so do we. x-amz-content-sha256 may stay unsigned too. x-amz-user-agent is an x-amz-*
    header like any other (the SDKs that send it sign it)."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    headers = s3_header_signed(server, "GET", f"/{bucket}/k")
    sdk = {"User-Agent": "aws-sdk-go/1.44 (go1.20; linux; amd64)", "amz-sdk-invocation-id": "1f2c3d4e",
           "amz-sdk-request": "attempt=1; max=3", "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"}
    r = requests.get(url(server, f"/{bucket}/k"), headers={**headers, **sdk})
    assert r.status_code == 200 and r.content == b"data"
    get_url = presigned_v4(server, "GET", f"/{bucket}/k")
    r = requests.get(get_url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **sdk})
    assert r.status_code == 200 and r.content == b"data"
    r = requests.get(url(server, f"/{bucket}/k"), headers={**headers, "x-amz-user-agent": "aws-sdk-js/3.0"})
    assert_s3_error(r, 403, "AccessDenied", NOT_SIGNED)


def test_a_foreign_algorithm_token_is_not_verified_as_sigv4(server, s3, secret_source):
    """s3s verifies the signature of any `<token> Credential=..., SignedHeaders=...` as SigV4;
    renaming the algorithm must not be a way around the signed-header check."""
    headers = s3_header_signed(server, "PUT", "/gamma/upload.txt", body=b"mine")
    headers["Authorization"] = headers["Authorization"].replace("AWS4-HMAC-SHA256", "OTHER", 1)
    for extra in ({}, {"x-amz-copy-source": "/beta/secret"}):
        r = requests.put(url(server, "/gamma/upload.txt"), data=b"mine", headers={**headers, **extra})
        assert_s3_error(r, 400, "InvalidArgument", "Unsupported Authorization Type")
    assert_absent(s3, "gamma", "upload.txt")


def test_sigv2_presigned_url_signs_every_amz_header(server, s3, secret_source):
    """SigV2's string to sign holds every x-amz-* header: adding one breaks the signature."""
    v2_url = s3.generate_presigned_url("put_object", Params={"Bucket": "gamma", "Key": "upload.txt"})
    assert "Signature=" in v2_url and "X-Amz-Signature" not in v2_url
    r = requests.put(v2_url, data=b"", headers={"x-amz-copy-source": "/beta/secret"})
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    assert_absent(s3, "gamma", "upload.txt")


def test_ten_year_presigned_url_is_refused(server, s3, bucket):
    decade = 10 * 365 * 24 * 3600
    r = requests.put(presigned_v4(server, "PUT", f"/{bucket}/decade", expires=decade), data=b"x")
    assert_s3_error(r, 400, "AuthorizationQueryParametersError",
                    "X-Amz-Expires must be less than a week (in seconds) that is; the maximum expires is 604800 seconds")
    assert_absent(s3, bucket, "decade")
    r = requests.put(presigned_v4(server, "PUT", f"/{bucket}/decade", expires=604801), data=b"x")
    assert_s3_error(r, 400, "AuthorizationQueryParametersError")
    assert_absent(s3, bucket, "decade")
    # Exactly a week is AWS's limit and works; so does boto3's own presigner.
    assert requests.put(presigned_v4(server, "PUT", f"/{bucket}/week", expires=604800), data=b"x").status_code == 200
    v4 = boto3.client("s3", endpoint_url=url(server, ""), region_name="us-east-1",
                      aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    assert requests.get(v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "week"},
                                                  ExpiresIn=604800)).content == b"x"


def test_presigned_query_and_authorization_header_together_are_refused(server, s3, bucket):
    path = f"/{bucket}/both"
    put_url = presigned_v4(server, "PUT", path)
    query = put_url.split("?", 1)[1]
    headers = s3_header_signed(server, "PUT", path, body=b"x", query=query)
    r = requests.put(put_url, data=b"x", headers=headers)
    assert_s3_error(r, 400, "InvalidArgument", ONE_MECHANISM)
    assert xml_field(r.text, "ArgumentName") == "Authorization"
    assert_absent(s3, bucket, "both")
    # Either alone works.
    assert requests.put(put_url, data=b"x").status_code == 200


# --- KMS, IAM, CloudTrail, the admin endpoint: sealbox-auth verifies them -----------------------

def kms_post(server, body, target, signed_target=True, extra=None):
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if signed_target:
        headers["X-Amz-Target"] = target
    req = AWSRequest(method="POST", url=url(server, "/"), data=body, headers=headers)
    SigV4Auth(creds(server), "kms", "us-east-1").add_auth(req)
    sent = dict(req.headers)
    sent["X-Amz-Target"] = target
    sent.update(extra or {})
    return requests.post(url(server, "/"), data=body, headers=sent)


def test_describe_key_signature_replayed_as_schedule_key_deletion(server, kms):
    """The issue's reproduction: a DescribeKey signed without x-amz-target, sent with
    `x-amz-target: TrentService.ScheduleKeyDeletion`, used to put the key in PendingDeletion."""
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    body = json.dumps({"KeyId": key}).encode()
    r = kms_post(server, body, "TrentService.DescribeKey", signed_target=False)
    assert r.status_code == 403 and r.json()["__type"] == "AccessDeniedException", r.text
    assert r.json()["message"] == NOT_SIGNED
    r = kms_post(server, body, "TrentService.ScheduleKeyDeletion", signed_target=False)
    assert r.status_code == 403 and r.json()["__type"] == "AccessDeniedException", r.text
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    # Signed, DescribeKey works; any other unsigned x-amz-* header is refused the same way.
    assert kms_post(server, body, "TrentService.DescribeKey").status_code == 200
    r = kms_post(server, body, "TrentService.DescribeKey", extra={"X-Amz-Security-Token": "x"})
    assert r.status_code == 403 and r.json()["__type"] == "AccessDeniedException"


def test_kms_body_must_match_the_signature(server, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    body = json.dumps({"KeyId": key}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ScheduleKeyDeletion",
               "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    req = AWSRequest(method="POST", url=url(server, "/"), data=b"{}", headers=headers)
    SigV4Auth(creds(server), "kms", "us-east-1").add_auth(req)
    r = requests.post(url(server, "/"), data=body, headers=dict(req.headers))
    assert r.status_code == 400 and r.json()["__type"] == "InvalidSignatureException", r.text
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_iam_unsigned_payload_replayed_with_create_access_key(server):
    """The issue's reproduction: IAM ListUsers signed with UNSIGNED-PAYLOAD, sent with a
    CreateAccessKey body and the same headers, used to return a new secret."""
    iam = server.client("iam")
    iam.create_user(UserName="victim")
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    req = AWSRequest(method="POST", url=url(server, "/"), data=b"Action=ListUsers&Version=2010-05-08",
                     headers=headers)
    SigV4Auth(creds(server), "iam", "us-east-1").add_auth(req)
    assert "x-amz-content-sha256" in req.headers["Authorization"]
    for body in (b"Action=CreateAccessKey&UserName=victim&Version=2010-05-08",
                 b"Action=ListUsers&Version=2010-05-08"):
        r = requests.post(url(server, "/"), data=body, headers=dict(req.headers))
        assert r.status_code == 403, r.text
        assert xml_field(r.text, "Code") == "SignatureDoesNotMatch"
        assert b"SecretAccessKey" not in r.content
    assert iam.list_access_keys(UserName="victim")["AccessKeyMetadata"] == []


def test_iam_unsigned_amz_header_is_refused(server):
    iam = server.client("iam")
    body = b"Action=CreateUser&UserName=mallory&Version=2010-05-08"
    req = AWSRequest(method="POST", url=url(server, "/"), data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(creds(server), "iam", "us-east-1").add_auth(req)
    r = requests.post(url(server, "/"), data=body, headers={**req.headers, "x-amz-meta-a": "1"})
    assert r.status_code == 403 and xml_field(r.text, "Code") == "AccessDenied", r.text
    assert xml_field(r.text, "Message") == NOT_SIGNED
    assert [u["UserName"] for u in iam.list_users()["Users"]] == []


def test_cloudtrail_lookup_with_unsigned_header_is_refused(server):
    body = b"{}"
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"}
    req = AWSRequest(method="POST", url=url(server, "/"), data=body, headers=headers)
    SigV4Auth(creds(server), "cloudtrail", "us-east-1").add_auth(req)
    assert requests.post(url(server, "/"), data=body, headers=dict(req.headers)).status_code == 200
    r = requests.post(url(server, "/"), data=body, headers={**req.headers, "x-amz-meta-a": "1"})
    assert r.status_code == 403 and r.json()["__type"] == "AccessDeniedException", r.text


def rewrap_events(server):
    events = server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "RewrapBucket"}])["Events"]
    return [e for e in events if "errorCode" not in json.loads(e["CloudTrailEvent"])]


def test_rewrap_endpoint_signs_headers_and_body(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    path, query = "/_sealbox/rewrap", f"bucket={bucket}"
    headers = s3_header_signed(server, "POST", path, query=query)
    r = requests.post(url(server, path, query), headers={**headers, "x-amz-meta-a": "1"})
    assert r.status_code == 403 and r.json()["__type"] == "AccessDenied", r.text
    assert r.json()["message"] == NOT_SIGNED
    unsigned = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    req = AWSRequest(method="POST", url=url(server, path, query), data=b"", headers=unsigned)
    SigV4Auth(creds(server), "s3", "us-east-1").add_auth(req)
    r = requests.post(url(server, path, query), data=b"", headers=dict(req.headers))
    assert r.status_code == 400 and r.json()["__type"] == "XAmzContentSHA256Mismatch", r.text
    assert rewrap_events(server) == []
    # Signed as a whole, it runs.
    r = requests.post(url(server, path, query), headers=headers)
    assert r.status_code == 200 and r.json()["examined"] == 1, r.text
    assert len(rewrap_events(server)) == 1
