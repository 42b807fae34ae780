"""Imported key material and grants (issue 17) against the real server.

BYOK: key material wrapped with the `openssl` CLI exactly as AWS's "Encrypt key material" guide
does (RSAES_OAEP_SHA_256 with `openssl pkeyutl`; RSA_AES_KEY_WRAP_SHA_256 with `openssl enc
-id-aes256-wrap-pad` plus `openssl pkeyutl`), imported with the aws CLI, then shown to be the
customer's key: signatures verify with the customer's own public key, MACs equal Python's hmac,
objects sealed under an imported key become unreadable when its material is deleted or expires and
readable again after re-importing the same material.

Grants: an IAM user with no KMS permissions gets exactly what a grant gives (operations, context
constraints), also through S3's SSE-KMS calls; an explicit Deny in an IAM policy beats the grant;
retiring and revoking end it."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

BIN = os.environ.get("SEALBOX_BIN") or "/work/cache/target/debug/sealbox"
DAY = 86400


def err(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def sh(script, cwd):
    """Runs a bash script (the AWS guide's openssl steps) in `cwd`."""
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def import_parameters(server, work, key_id, algorithm, spec="RSA_4096"):
    """aws kms get-parameters-for-import, saved as PublicKey.bin and ImportToken.bin (AWS's guide)."""
    out = json.loads(server.cli("kms", "get-parameters-for-import", "--key-id", key_id, "--wrapping-algorithm",
                                algorithm, "--wrapping-key-spec", spec).stdout)
    (work / "PublicKey.bin").write_bytes(base64.b64decode(out["PublicKey"]))
    (work / "ImportToken.bin").write_bytes(base64.b64decode(out["ImportToken"]))
    assert out["ParametersValidTo"] > time.time() + DAY - 120
    return out


OAEP_WRAP = """
openssl pkeyutl -encrypt -in {material} -out EncryptedKeyMaterial.bin -inkey PublicKey.bin -keyform DER \
    -pubin -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
"""

RSA_AES_WRAP = """
openssl rand -out aes-key.bin 32
openssl enc -id-aes256-wrap-pad -K "$(xxd -p < aes-key.bin | tr -d '\\n')" -iv A65959A6 \
    -in {material} -out key-material-wrapped.bin
openssl pkeyutl -encrypt -in aes-key.bin -out aes-key-wrapped.bin -inkey PublicKey.bin -keyform DER \
    -pubin -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
cat aes-key-wrapped.bin key-material-wrapped.bin > EncryptedKeyMaterial.bin
"""


def import_with_cli(server, work, key_id, *expiry):
    return server.cli("kms", "import-key-material", "--key-id", key_id, "--encrypted-key-material",
                      f"fileb://{work / 'EncryptedKeyMaterial.bin'}", "--import-token",
                      f"fileb://{work / 'ImportToken.bin'}", *expiry, check=False)


def byok(server, work, key_id, algorithm, material, *expiry):
    """The whole BYOK procedure for `material` (a file in `work`)."""
    import_parameters(server, work, key_id, algorithm)
    sh((OAEP_WRAP if algorithm == "RSAES_OAEP_SHA_256" else RSA_AES_WRAP).format(material=material), work)
    p = import_with_cli(server, work, key_id, *(expiry or ("--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_byok_symmetric_with_openssl_oaep_and_s3_objects_follow_the_material(server, tmp_path):
    kms, s3 = server.client("kms"), server.client()
    work = tmp_path
    key = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
    assert key["KeyState"] == "PendingImport" and key["Origin"] == "EXTERNAL" and key["Enabled"] is False
    assert err(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == "KMSInvalidStateException"
    sh("openssl rand -out PlaintextKeyMaterial.bin 32", work)
    out = byok(server, work, key["KeyId"], "RSAES_OAEP_SHA_256", "PlaintextKeyMaterial.bin")
    assert out["KeyId"] == key["Arn"] and len(out["KeyMaterialId"]) == 64
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md["KeyState"] == "Enabled" and md["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"under my own key")["CiphertextBlob"]
    s3.create_bucket(Bucket="byok")
    s3.put_object(Bucket="byok", Key="doc", Body=b"object under imported material",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    # Deleting the material: the key and everything under it are unusable...
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    assert err(kms.decrypt, CiphertextBlob=blob) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="byok", Key="doc")
    assert e.value.response["Error"]["Code"] == "KMS.KMSInvalidStateException"
    # ...other material is refused...
    sh("openssl rand -out Other.bin 32", work)
    import_parameters(server, work, key["KeyId"], "RSAES_OAEP_SHA_256", "RSA_2048")
    sh(OAEP_WRAP.format(material="Other.bin"), work)
    p = import_with_cli(server, work, key["KeyId"], "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert p.returncode != 0 and "IncorrectKeyMaterialException" in p.stderr
    # ...and the same material brings it all back.
    byok(server, work, key["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "PlaintextKeyMaterial.bin")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under my own key"
    assert s3.get_object(Bucket="byok", Key="doc")["Body"].read() == b"object under imported material"
    assert err(kms.get_key_rotation_status, KeyId=key["KeyId"]) == "UnsupportedOperationException"
    assert err(kms.enable_key_rotation, KeyId=key["KeyId"]) == "UnsupportedOperationException"
    generated = kms.create_key()["KeyMetadata"]["KeyId"]
    assert err(kms.get_parameters_for_import, KeyId=generated, WrappingAlgorithm="RSAES_OAEP_SHA_256",
               WrappingKeySpec="RSA_2048") == "UnsupportedOperationException"
    assert err(kms.delete_imported_key_material, KeyId=generated) == "UnsupportedOperationException"


def test_byok_asymmetric_and_hmac_keys_are_the_customers_keys(server, tmp_path):
    kms = server.client("kms")
    work = tmp_path
    # An RSA signing key made with openssl, as the AWS guide makes it, wrapped with RSA_AES.
    sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 | openssl pkcs8 -topk8 -outform der -nocrypt > PrivateKey.der", work)
    sh("openssl pkey -inform DER -in PrivateKey.der -pubout -outform DER -out Customer.pub.der", work)
    rsa_key = kms.create_key(Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert err(kms.get_parameters_for_import, KeyId=rsa_key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
               WrappingKeySpec="RSA_4096") == "ValidationException"
    byok(server, work, rsa_key["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "PrivateKey.der",
         "--expiration-model", "KEY_MATERIAL_EXPIRES", "--valid-to", str(int(time.time()) + 30 * DAY))
    md = kms.describe_key(KeyId=rsa_key["KeyId"])["KeyMetadata"]
    assert md["ExpirationModel"] == "KEY_MATERIAL_EXPIRES" and md["ValidTo"].timestamp() > time.time() + 29 * DAY
    assert kms.get_public_key(KeyId=rsa_key["KeyId"])["PublicKey"] == (work / "Customer.pub.der").read_bytes()
    (work / "doc.txt").write_bytes(b"signed by my own imported key")
    sig = kms.sign(KeyId=rsa_key["KeyId"], Message=b"signed by my own imported key",
                   SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    (work / "doc.sig").write_bytes(sig)
    out = sh("openssl dgst -sha256 -verify <(openssl pkey -pubin -inform DER -in Customer.pub.der) -signature doc.sig doc.txt", work)
    assert "Verified OK" in out
    # An EC P-256 key from `cryptography`, same procedure.
    private = ec.generate_private_key(ec.SECP256R1())
    (work / "ec.der").write_bytes(private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    ec_key = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    byok(server, work, ec_key["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "ec.der")
    sig = kms.sign(KeyId=ec_key["KeyId"], Message=b"ec", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    private.public_key().verify(sig, b"ec", ec.ECDSA(hashes.SHA256()))
    # An HMAC key: KMS's MAC is Python's hmac under the imported bytes.
    material = os.urandom(48)
    (work / "hmac.bin").write_bytes(material)
    mac_key = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    byok(server, work, mac_key["KeyId"], "RSAES_OAEP_SHA_256", "hmac.bin")
    mac = kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"tag", MacAlgorithm="HMAC_SHA_384")["Mac"]
    assert mac == hmac.new(material, b"tag", hashlib.sha384).digest()


def test_imported_material_expires_when_its_time_comes(server, tmp_path):
    kms, s3 = server.client("kms"), server.client()
    work = tmp_path
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    sh("openssl rand -out m.bin 32", work)
    byok(server, work, key["KeyId"], "RSAES_OAEP_SHA_256", "m.bin",
         "--expiration-model", "KEY_MATERIAL_EXPIRES", "--valid-to", str(int(time.time()) + DAY))
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"until tomorrow")["CiphertextBlob"]
    s3.create_bucket(Bucket="expiring")
    s3.put_object(Bucket="expiring", Key="o", Body=b"expiring object", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"])
    doomed = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    # Eight days later the material is gone (deleted at start by the maintenance task), and so is
    # the key scheduled for deletion.
    server.restart({"SEALBOX_TEST_CLOCK_OFFSET_SECS": str(8 * DAY)})
    kms, s3 = server.client("kms"), server.client()
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    assert err(kms.decrypt, CiphertextBlob=blob) == "KMSInvalidStateException"
    with pytest.raises(ClientError):
        s3.get_object(Bucket="expiring", Key="o")
    p = subprocess.run([BIN, "audit", "lookup", "--max-results", "1000", "--data", str(server.data)],
                       capture_output=True, text=True, timeout=60)
    records = json.loads(p.stdout)["Records"]
    for name, arn in (("DeleteExpiredKeyMaterial", key["Arn"]), ("DeleteKey", doomed["Arn"])):
        events = [r for r in records if r["eventName"] == name]
        assert len(events) == 1 and events[0]["eventType"] == "AwsServiceEvent", name
        assert events[0]["resources"][0]["ARN"] == arn and events[0]["serviceEventDetails"]["keyId"] in arn
    assert err(kms.describe_key, KeyId=doomed["KeyId"]) == "NotFoundException"
    # Re-importing the same material (fresh parameters; the old token is eight days old).
    byok(server, work, key["KeyId"], "RSAES_OAEP_SHA_256", "m.bin")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"until tomorrow"
    assert s3.get_object(Bucket="expiring", Key="o")["Body"].read() == b"expiring object"


def user(server, name, policy=None):
    iam = server.client("iam")
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    creds = iam.create_access_key(UserName=name)["AccessKey"]
    arn = f"arn:aws:iam::000000000000:user/{name}"
    return arn, lambda service: server.client(service, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"])


def test_grants_give_a_user_exactly_what_they_say(server):
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]
    app_arn, app = user(server, "app", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    akms, as3 = app("kms"), app("s3")
    ctx = {"team": "blue", "env": "prod"}
    assert err(akms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx) == "AccessDeniedException"
    g = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=app_arn, RetiringPrincipal="arn:aws:iam::000000000000:root",
                         Operations=["GenerateDataKey", "Decrypt", "DescribeKey", "RetireGrant"],
                         Constraints={"EncryptionContextSubset": {"team": "blue"}})
    token = g["GrantToken"]
    dk = akms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx, GrantTokens=[token])
    assert akms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
    assert akms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"] == key["Arn"]
    assert err(akms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"team": "red"}) == "AccessDeniedException"
    assert err(akms.encrypt, KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext=ctx) == "AccessDeniedException"
    assert err(akms.list_grants, KeyId=key["KeyId"]) == "AccessDeniedException"
    assert err(akms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx,
               GrantTokens=["not a token"]) == "InvalidGrantTokenException"
    # S3's SSE-KMS calls on the user's behalf are authorised by a grant too (the S3 context is
    # the object's ARN, so this grant has no constraint).
    s3grant = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=app_arn, Operations=["GenerateDataKey", "Decrypt"])
    as3.create_bucket(Bucket="granted")
    as3.put_object(Bucket="granted", Key="o", Body=b"sealed via a grant", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"])
    assert as3.get_object(Bucket="granted", Key="o")["Body"].read() == b"sealed via a grant"
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=s3grant["GrantId"])
    with pytest.raises(ClientError) as e:
        as3.get_object(Bucket="granted", Key="o")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    # An explicit Deny in the user's IAM policy beats the grant.
    server.client("iam").put_user_policy(UserName="app", PolicyName="deny", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]}))
    assert err(akms.decrypt, CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx) == "AccessDeniedException"
    assert akms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx)["KeyId"] == key["Arn"]
    # The grantee retires its own grant (it includes RetireGrant); then nothing is left.
    akms.retire_grant(GrantToken=token)
    assert err(akms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx) == "AccessDeniedException"
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []
    assert err(kms.retire_grant, GrantToken=token) == "NotFoundException"
