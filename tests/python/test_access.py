"""Users, least-privilege policies and encryption in transit (issue 6): IAM via boto3, the seed
bucket policies verbatim, per-category users, and KMS permissions for SSE-KMS via S3."""

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def code(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def user_client(server, service, creds, tls=False):
    return server.client(service, tls=tls, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"])


def make_user(iam, name, policy=None):
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return iam.create_access_key(UserName=name)["AccessKey"]


def test_iam_users_keys_and_policies(server):
    iam = server.client("iam")
    user = iam.create_user(UserName="alice")["User"]
    assert user["Arn"] == "arn:aws:iam::000000000000:user/alice"
    assert code(iam.create_user, UserName="alice") == "EntityAlreadyExists"
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]] == [key["AccessKeyId"]]
    alice = user_client(server, "s3", key)
    assert code(alice.list_buckets) == "AccessDenied"  # no policy yet: implicit deny
    iam.put_user_policy(UserName="alice", PolicyName="list", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))
    assert "Buckets" in alice.list_buckets()
    assert code(iam.put_user_policy, UserName="alice", PolicyName="bad", PolicyDocument='{"Statement": [{"Effect": "Maybe"}]}') == "MalformedPolicyDocument"
    assert code(iam.delete_user, UserName="alice") == "DeleteConflict"
    assert code(user_client(server, "iam", key).create_user, UserName="mallory") == "AccessDenied"
    iam.delete_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"])
    assert code(alice.list_buckets) == "InvalidAccessKeyId"
    iam.delete_user_policy(UserName="alice", PolicyName="list")
    iam.delete_user(UserName="alice")
    assert code(iam.get_user, UserName="alice") == "NoSuchEntity"


def test_seed_bucket_policies_verbatim(server):
    s3 = server.client()
    kms = server.client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="secure-bucket")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::secure-bucket", "arn:aws:s3:::secure-bucket/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "RequireSSEKMS", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::secure-bucket/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
        {"Sid": "RequireKey", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::secure-bucket/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}}]}
    s3.put_bucket_policy(Bucket="secure-bucket", Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket="secure-bucket")["Policy"]) == policy
    tls = server.client(tls=True)
    # Plain HTTP is denied for everything, even the account root.
    assert code(s3.list_objects_v2, Bucket="secure-bucket") == "AccessDenied"
    # Over TLS: only PUTs asking for SSE-KMS with that key pass.
    assert code(tls.put_object, Bucket="secure-bucket", Key="a", Body=b"x") == "AccessDenied"
    assert code(tls.put_object, Bucket="secure-bucket", Key="a", Body=b"x", ServerSideEncryption="AES256") == "AccessDenied"
    other = kms.create_key()["KeyMetadata"]["Arn"]
    assert code(tls.put_object, Bucket="secure-bucket", Key="a", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=other) == "AccessDenied"
    tls.put_object(Bucket="secure-bucket", Key="a", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    assert tls.get_object(Bucket="secure-bucket", Key="a")["Body"].read() == b"x"
    assert code(s3.put_bucket_policy, Bucket="secure-bucket", Policy='{"Statement": "nope"}') == "MalformedPolicy"


def test_per_category_buckets_and_keys(server):
    s3 = server.client()
    kms = server.client("kms")
    iam = server.client("iam")
    cats = {}
    for cat in ("db-credentials", "api-keys"):
        arn = kms.create_key(Description=cat)["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket=f"secrets-{cat}")
        s3.put_bucket_encryption(Bucket=f"secrets-{cat}", ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn}}]})
        s3.put_object(Bucket=f"secrets-{cat}", Key="secret.txt", Body=cat.encode())
        key = make_user(iam, f"app-{cat}", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::secrets-{cat}", f"arn:aws:s3:::secrets-{cat}/*"]},
            {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": arn}]})
        cats[cat] = (arn, key)
    db = user_client(server, "s3", cats["db-credentials"][1])
    api = user_client(server, "s3", cats["api-keys"][1])
    assert db.get_object(Bucket="secrets-db-credentials", Key="secret.txt")["Body"].read() == b"db-credentials"
    assert code(db.get_object, Bucket="secrets-api-keys", Key="secret.txt") == "AccessDenied"
    assert api.get_object(Bucket="secrets-api-keys", Key="secret.txt")["Body"].read() == b"api-keys"
    assert code(api.list_objects_v2, Bucket="secrets-db-credentials") == "AccessDenied"
    db.put_object(Bucket="secrets-db-credentials", Key="new.txt", Body=b"new")
    # A user allowed on the bucket but not on its key cannot read SSE-KMS objects (AWS: 403).
    reader = make_user(iam, "no-kms", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::secrets-api-keys/*"}]})
    assert code(user_client(server, "s3", reader).get_object, Bucket="secrets-api-keys", Key="secret.txt") == "AccessDenied"
    # And cannot use the key directly through KMS either.
    kms_as_db = user_client(server, "kms", cats["db-credentials"][1])
    assert code(kms_as_db.encrypt, KeyId=cats["api-keys"][0], Plaintext=b"x") == "AccessDeniedException"
    assert kms_as_db.generate_data_key(KeyId=cats["db-credentials"][0], KeySpec="AES_256")["KeyId"] == cats["db-credentials"][0]


def test_sealbox_admin_cli_manages_users(server, tmp_path):
    import os
    import subprocess
    binary = os.environ.get("SEALBOX_BIN", "/work/cache/target/debug/sealbox")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{server.port}", RUST_BACKTRACE="0")

    def admin(*args):
        p = subprocess.run([binary, "admin", *args], env=env, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout

    assert admin("create-user", "carol")[0] == 0
    code, out = admin("create-access-key", "carol")
    assert code == 0 and "<SecretAccessKey>" in out
    key_id = out.split("<AccessKeyId>")[1].split("<")[0]
    secret = out.split("<SecretAccessKey>")[1].split("<")[0]
    (tmp_path / "p.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))
    assert admin("put-user-policy", "carol", "list", str(tmp_path / "p.json"))[0] == 0
    carol = server.client(access_key=key_id, secret_key=secret)
    assert "Buckets" in carol.list_buckets()
    assert admin("create-user", "carol")[0] == 1  # EntityAlreadyExists
    assert "carol" in admin("list-users")[1]
