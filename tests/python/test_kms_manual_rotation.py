"""Manual rotation (issue 17), the pattern AWS documents for keys that do not rotate by
themselves: make a new key, move the alias to it with UpdateAlias, re-encrypt what the old key
protects (ReEncrypt for KMS ciphertexts, `sealbox migrate reencrypt` for S3 objects), disable the
old key — and nothing is lost: every ciphertext and object reads back, under the new key."""

import os
import subprocess

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

BIN = os.environ.get("SEALBOX_BIN") or "/work/cache/target/debug/sealbox"
OAEP = "RSAES_OAEP_SHA_256"


def err(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def test_new_key_alias_moved_data_reencrypted_old_key_disabled(server, tmp_path):
    kms, s3 = server.client("kms"), server.client()

    # Year one: an RSA encryption key and a symmetric object key, both used through aliases.
    old_rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT", Description="app 2025")["KeyMetadata"]
    kms.create_alias(AliasName="alias/app-enc", TargetKeyId=old_rsa["KeyId"])
    secrets = [f"secret number {i}".encode() for i in range(5)]
    rsa_blobs = [kms.encrypt(KeyId="alias/app-enc", Plaintext=p, EncryptionAlgorithm=OAEP)["CiphertextBlob"] for p in secrets]
    # Some were encrypted outside KMS with the public key, as clients of an RSA key do.
    public = serialization.load_der_public_key(kms.get_public_key(KeyId="alias/app-enc")["PublicKey"])
    rsa_blobs.append(public.encrypt(b"encrypted offline", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                                      algorithm=hashes.SHA256(), label=None)))
    secrets.append(b"encrypted offline")
    old_sym = kms.create_key(Description="objects 2025")["KeyMetadata"]
    kms.create_alias(AliasName="alias/objects", TargetKeyId=old_sym["KeyId"])
    sym_blob = kms.encrypt(KeyId="alias/objects", Plaintext=b"small secret", EncryptionContext={"app": "x"})["CiphertextBlob"]
    s3.create_bucket(Bucket="vault")
    bodies = {f"doc/{i}": os.urandom(1000 + i * 300) for i in range(6)}
    for k, body in bodies.items():
        s3.put_object(Bucket="vault", Key=k, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/objects",
                      Metadata={"n": k})

    # Rotation: new keys of the same type and usage; the aliases move (and only to such keys).
    new_rsa = kms.create_key(KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT", Description="app 2026")["KeyMetadata"]
    new_sym = kms.create_key(Description="objects 2026")["KeyMetadata"]
    assert err(kms.update_alias, AliasName="alias/app-enc", TargetKeyId=new_sym["KeyId"]) == "ValidationException"
    kms.update_alias(AliasName="alias/app-enc", TargetKeyId=new_rsa["KeyId"])
    kms.update_alias(AliasName="alias/objects", TargetKeyId=new_sym["KeyId"])
    aliases = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/app-enc"] == new_rsa["KeyId"] and aliases["alias/objects"] == new_sym["KeyId"]
    assert kms.get_public_key(KeyId="alias/app-enc")["KeySpec"] == "RSA_3072"

    # Re-encrypt the KMS ciphertexts: an RSA ciphertext names no key, so the old key is given.
    moved = []
    for blob in rsa_blobs:
        r = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=old_rsa["KeyId"], SourceEncryptionAlgorithm=OAEP,
                           DestinationKeyId="alias/app-enc", DestinationEncryptionAlgorithm=OAEP)
        assert r["SourceKeyId"] == old_rsa["Arn"] and r["KeyId"] == new_rsa["Arn"]
        moved.append(r["CiphertextBlob"])
    r = kms.re_encrypt(CiphertextBlob=sym_blob, SourceEncryptionContext={"app": "x"},
                       DestinationKeyId="alias/objects", DestinationEncryptionContext={"app": "x"})
    assert r["SourceKeyId"] == old_sym["Arn"] and r["KeyId"] == new_sym["Arn"]
    moved_sym = r["CiphertextBlob"]

    # Re-encrypt the objects in place under the alias's new key.
    creds = tmp_path / "credentials"
    creds.write_text(f"[sb]\naws_access_key_id = {server.access_key}\naws_secret_access_key = {server.secret_key}\n")
    p = subprocess.run([BIN, "migrate", "reencrypt", "s3://vault/doc", "--sse", "aws:kms", "--kms-key", "alias/objects",
                        "--endpoint", f"http://127.0.0.1:{server.port}", "--profile", "sb", "--region", "us-east-1",
                        "--credentials-file", str(creds), "--checkpoint", str(tmp_path / "re.sqlite")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr

    # Retire the old keys.
    kms.disable_key(KeyId=old_rsa["KeyId"])
    kms.disable_key(KeyId=old_sym["KeyId"])

    # Nothing lost: every ciphertext and object reads back, under the new keys only.
    for blob, plain in zip(moved, secrets):
        out = kms.decrypt(KeyId="alias/app-enc", CiphertextBlob=blob, EncryptionAlgorithm=OAEP)
        assert out["Plaintext"] == plain and out["KeyId"] == new_rsa["Arn"]
    assert kms.decrypt(CiphertextBlob=moved_sym, EncryptionContext={"app": "x"})["Plaintext"] == b"small secret"
    for k, body in bodies.items():
        head = s3.head_object(Bucket="vault", Key=k)
        assert head["SSEKMSKeyId"] == new_sym["Arn"], k
        assert head["Metadata"] == {"n": k}
        assert s3.get_object(Bucket="vault", Key=k)["Body"].read() == body
    # And the old keys really are out of use: what was not moved would now be refused.
    assert err(kms.decrypt, KeyId=old_rsa["KeyId"], CiphertextBlob=rsa_blobs[0], EncryptionAlgorithm=OAEP) == "DisabledException"
    assert err(kms.decrypt, CiphertextBlob=sym_blob, EncryptionContext={"app": "x"}) == "DisabledException"
