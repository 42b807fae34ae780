"""The built-in KMS through boto3 and the aws CLI (issue 4): lifecycle, aliases, crypto with
encryption context, every error path, rotation with a moved clock, crypto-shredding, and AWS's
own client-side encryption library against our KMS."""

import base64
import json
import os

import pytest
from botocore.exceptions import ClientError

DAY = 86400


def kms_err(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def test_lifecycle_with_the_aws_cli(server, tmp_path):
    out = json.loads(server.cli("kms", "create-key", "--description", "cli key").stdout)
    key_id = out["KeyMetadata"]["KeyId"]
    assert out["KeyMetadata"]["KeyState"] == "Enabled"
    server.cli("kms", "create-alias", "--alias-name", "alias/cli", "--target-key-id", key_id)
    aliases = json.loads(server.cli("kms", "list-aliases").stdout)["Aliases"]
    assert any(a["AliasName"] == "alias/cli" and a["TargetKeyId"] == key_id for a in aliases)
    (tmp_path / "plain").write_bytes(b"cli secret")
    enc = json.loads(server.cli("kms", "encrypt", "--key-id", "alias/cli", "--plaintext", f"fileb://{tmp_path / 'plain'}").stdout)
    (tmp_path / "blob").write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    dec = json.loads(server.cli("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob'}").stdout)
    assert base64.b64decode(dec["Plaintext"]) == b"cli secret"
    server.cli("kms", "enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "90")
    st = json.loads(server.cli("kms", "get-key-rotation-status", "--key-id", key_id).stdout)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 90
    bad = server.cli("kms", "describe-key", "--key-id", "alias/nope", check=False)
    assert bad.returncode != 0 and "NotFoundException" in bad.stderr


def test_crypto_context_and_errors(kms):
    key = kms.create_key(Description="app")["KeyMetadata"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    ctx = {"app": "billing"}
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext=ctx)
    assert enc["KeyId"] == key["Arn"]
    assert kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == b"secret"
    assert kms_err(kms.decrypt, CiphertextBlob=enc["CiphertextBlob"]) == "InvalidCiphertextException"
    assert kms_err(kms.decrypt, CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"app": "x"}) == "InvalidCiphertextException"
    assert kms_err(kms.decrypt, CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx, KeyId=other) == "IncorrectKeyException"
    assert kms_err(kms.decrypt, CiphertextBlob=b"garbage" * 10) == "InvalidCiphertextException"
    assert kms_err(kms.decrypt, CiphertextBlob=enc["CiphertextBlob"][:-3], EncryptionContext=ctx) == "InvalidCiphertextException"
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx)
    assert len(dk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
    assert "Plaintext" not in kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=16)
    re = kms.re_encrypt(CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext=ctx, DestinationKeyId=other)
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"secret"
    assert len(kms.generate_random(NumberOfBytes=40)["Plaintext"]) == 40
    assert kms_err(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x" * 4097) == "ValidationException"
    assert kms_err(kms.generate_data_key, KeyId=key["KeyId"]) == "ValidationException"
    assert kms_err(kms.schedule_key_deletion, KeyId=key["KeyId"], PendingWindowInDays=3) == "ValidationException"
    assert kms_err(kms.create_alias, AliasName="alias/aws/mine", TargetKeyId=key["KeyId"]) == "InvalidAliasNameException"
    kms.disable_key(KeyId=key["KeyId"])
    assert kms_err(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == "DisabledException"
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert kms_err(kms.decrypt, CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    assert "arn:aws:iam::000000000000:root" in policy
    assert kms_err(kms.put_key_policy, KeyId=key["KeyId"], PolicyName="default", Policy="{nope") == "MalformedPolicyDocumentException"
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "env", "TagValue": "test"}])
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "env", "TagValue": "test"}]


def test_unknown_operation_and_bad_json(server):
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def signed(target, body):
        req = AWSRequest(method="POST", url=f"http://127.0.0.1:{server.port}/", data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(server.access_key, server.secret_key), "kms", "us-east-1").add_auth(req)
        return requests.post(req.url, data=body, headers=dict(req.headers))

    r = signed("TrentService.NoSuchThing", b"{}")
    assert r.status_code == 400 and r.json()["__type"] == "UnknownOperationException"
    r = signed("TrentService.CreateKey", b"{oops")
    assert r.status_code == 400 and r.json()["__type"] == "SerializationException"
    r = requests.post(f"http://127.0.0.1:{server.port}/", data=b"{}", headers={"X-Amz-Target": "TrentService.ListKeys"})
    assert r.json()["__type"] == "MissingAuthenticationTokenException"


def test_rotation_by_moving_the_clock_and_crypto_shredding(server):
    kms = server.client("kms")
    s3 = server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    old = kms.encrypt(KeyId=key_id, Plaintext=b"written in year one")["CiphertextBlob"]
    s3.create_bucket(Bucket="rotation")
    s3.put_object(Bucket="rotation", Key="old", Body=b"object from year one", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    s3.put_object(Bucket="rotation", Key="shredded", Body=b"gone soon", ServerSideEncryption="aws:kms", SSEKMSKeyId=doomed)
    doomed_blob = kms.encrypt(KeyId=doomed, Plaintext=b"gone")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    # A year and a day later (the server was "down" meanwhile): the due key rotates at start,
    # the key past its deletion window is destroyed.
    server.restart({"SEALBOX_TEST_CLOCK_OFFSET_SECS": str(366 * DAY)})
    kms = server.client("kms")
    s3 = server.client()
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["AUTOMATIC"]
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"written in year one"
    new = kms.encrypt(KeyId=key_id, Plaintext=b"year two")
    material = kms.decrypt(CiphertextBlob=new["CiphertextBlob"])["KeyMaterialId"]
    assert material == rotations[0]["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=old)["KeyMaterialId"] != material
    assert s3.get_object(Bucket="rotation", Key="old")["Body"].read() == b"object from year one"
    assert kms_err(kms.describe_key, KeyId=doomed) == "NotFoundException"
    assert kms_err(kms.decrypt, CiphertextBlob=doomed_blob) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="rotation", Key="shredded")
    assert e.value.response["Error"]["Code"] == "KMS.NotFoundException"


def test_aws_managed_s3_key(server):
    kms = server.client("kms")
    s3 = server.client()
    s3.create_bucket(Bucket="managed-key")
    put = s3.put_object(Bucket="managed-key", Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    md = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert md["KeyManager"] == "AWS" and put["SSEKMSKeyId"] == md["Arn"]
    assert kms_err(kms.disable_key, KeyId=md["KeyId"]) == "UnsupportedOperationException"
    assert kms_err(kms.schedule_key_deletion, KeyId=md["KeyId"]) == "UnsupportedOperationException"
    assert kms.get_key_rotation_status(KeyId=md["KeyId"])["KeyRotationEnabled"] is True


def test_client_side_encryption_with_aws_encryption_sdk(server, monkeypatch):
    aws_encryption_sdk = pytest.importorskip("aws_encryption_sdk")
    kms = server.client("kms")
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = aws_encryption_sdk.EncryptionSDKClient()
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn])
    secret = os.urandom(100_000)
    ciphertext, _ = client.encrypt(source=secret, key_provider=provider, encryption_context={"purpose": "test"})
    assert secret not in ciphertext
    s3 = server.client()
    s3.create_bucket(Bucket="client-side")
    s3.put_object(Bucket="client-side", Key="blob", Body=ciphertext)
    stored = s3.get_object(Bucket="client-side", Key="blob")["Body"].read()
    plaintext, header = client.decrypt(source=stored, key_provider=provider)
    assert plaintext == secret and header.encryption_context["purpose"] == "test"


def test_root_key_in_a_pkcs11_hsm(tmp_path):
    import shutil
    import subprocess
    from conftest import Server
    module = "/usr/lib/softhsm/libsofthsm2.so"
    if not os.path.exists(module) or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed")
    conf = tmp_path / "softhsm2.conf"
    (tmp_path / "tokens").mkdir()
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    env = {"SOFTHSM2_CONF": str(conf), "SEALBOX_PKCS11_MODULE": module, "SEALBOX_PKCS11_TOKEN": "sealbox",
           "SEALBOX_PKCS11_PIN": "1234"}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "sealbox", "--pin", "1234", "--so-pin", "5678"],
                   env=dict(os.environ, SOFTHSM2_CONF=str(conf)), check=True, capture_output=True)
    server = Server(tmp_path / "data", env)
    try:
        assert not (tmp_path / "data" / "root.key").exists()  # the root key lives in the token only
        kms = server.client("kms")
        s3 = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"hsm-protected")["CiphertextBlob"]
        s3.create_bucket(Bucket="hsm")
        s3.put_object(Bucket="hsm", Key="k", Body=b"object under an HSM root", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
        server.restart(env)
        assert server.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"hsm-protected"
        assert server.client().get_object(Bucket="hsm", Key="k")["Body"].read() == b"object under an HSM root"
        # A wrong PIN is a clear start-up error, nothing is touched.
        server.stop()
        bad = subprocess.run([os.environ.get("SEALBOX_BIN", "/work/cache/target/debug/sealbox"), "serve", "--data",
                              str(tmp_path / "data"), "--listen", "127.0.0.1:0"],
                             env={**os.environ, **env, "SEALBOX_PKCS11_PIN": "0000", "RUST_BACKTRACE": "0"},
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode != 0 and "PKCS#11" in bad.stderr
    finally:
        server.stop()
