"""Asymmetric and HMAC KMS keys (issue 17) through boto3 and the aws CLI against the real server:
every signing algorithm of every key spec, RAW and DIGEST, verified outside sealbox with the
`cryptography` package and the `openssl` CLI; RSAES-OAEP ciphertexts made outside with the exported
public key and decrypted by KMS; data key pairs; HMAC; GenerateRandom; AWS's errors for keys used
the wrong way; and an audit record for every call, without messages or signatures in it."""

import base64
import hashlib
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

BIN = os.environ.get("SEALBOX_BIN") or "/work/cache/target/debug/sealbox"

RSA_ALGS = ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
            "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"]
# AWS's key spec reference: the signing algorithms of each spec.
SIGNING = {
    "RSA_2048": RSA_ALGS, "RSA_3072": RSA_ALGS, "RSA_4096": RSA_ALGS,
    "ECC_NIST_P256": ["ECDSA_SHA_256"], "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"], "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
}
HASHES = {"256": (hashes.SHA256, hashlib.sha256, "sha256"), "384": (hashes.SHA384, hashlib.sha384, "sha384"),
          "512": (hashes.SHA512, hashlib.sha512, "sha512")}


def err(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=60)


def pem_of(tmp_path, name, spki_der):
    der = tmp_path / f"{name}.der"
    der.write_bytes(spki_der)
    pem = tmp_path / f"{name}.pem"
    p = openssl("pkey", "-pubin", "-inform", "DER", "-in", str(der), "-out", str(pem))
    assert p.returncode == 0, p.stderr
    return pem


def crypto_verify(public, alg, signature, message):
    """Raises InvalidSignature unless `signature` is `alg` over `message` (cryptography)."""
    h = HASHES[alg[-3:]][0]()
    if alg.startswith("ECDSA"):
        public.verify(signature, message, ec.ECDSA(h))
    elif alg.startswith("RSASSA_PSS"):
        public.verify(signature, message, padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH), h)
    else:
        public.verify(signature, message, padding.PKCS1v15(), h)


def openssl_verify(tmp_path, pem, alg, signature, message):
    sig = tmp_path / "sig.bin"
    sig.write_bytes(signature)
    msg = tmp_path / "msg.bin"
    msg.write_bytes(message)
    opts = []
    if alg.startswith("RSASSA_PSS"):
        opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
    p = openssl("dgst", "-" + HASHES[alg[-3:]][2], *opts, "-verify", str(pem), "-signature", str(sig), str(msg))
    return p.returncode == 0 and b"Verified OK" in p.stdout


def test_every_signing_algorithm_verifies_with_cryptography_and_openssl(server, tmp_path):
    kms = server.client("kms")
    message = b"sealbox signs what AWS KMS signs"
    for spec, algs in SIGNING.items():
        md = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY", Description=spec)["KeyMetadata"]
        assert md["KeySpec"] == spec and md["KeyUsage"] == "SIGN_VERIFY"
        assert md["SigningAlgorithms"] == algs
        assert "EncryptionAlgorithms" not in md and "CurrentKeyMaterialId" not in md
        pub = kms.get_public_key(KeyId=md["Arn"])
        assert pub["KeySpec"] == spec and pub["KeyUsage"] == "SIGN_VERIFY" and pub["SigningAlgorithms"] == algs
        public = serialization.load_der_public_key(pub["PublicKey"])
        if spec.startswith("RSA"):
            assert isinstance(public, rsa.RSAPublicKey) and public.key_size == int(spec[4:])
        else:
            curve = {"ECC_NIST_P256": "secp256r1", "ECC_NIST_P384": "secp384r1",
                     "ECC_NIST_P521": "secp521r1", "ECC_SECG_P256K1": "secp256k1"}[spec]
            assert public.curve.name == curve
        pem = pem_of(tmp_path, spec, pub["PublicKey"])
        for alg in algs:
            digest = HASHES[alg[-3:]][1](message).digest()
            for kind, msg in (("RAW", message), ("DIGEST", digest)):
                s = kms.sign(KeyId=md["KeyId"], Message=msg, MessageType=kind, SigningAlgorithm=alg)
                assert s["KeyId"] == md["Arn"] and s["SigningAlgorithm"] == alg
                sig = s["Signature"]
                crypto_verify(public, alg, sig, message)
                assert openssl_verify(tmp_path, pem, alg, sig, message), f"openssl rejects {spec} {alg} {kind}"
                # KMS verifies it too, given the message either way.
                other = "DIGEST" if kind == "RAW" else "RAW"
                v = kms.verify(KeyId=md["KeyId"], Message=digest if other == "DIGEST" else message,
                               MessageType=other, Signature=sig, SigningAlgorithm=alg)
                assert v["SignatureValid"] is True
            if alg.startswith("ECDSA"):
                # A DIGEST signature checked by `cryptography` as a pre-hashed ECDSA signature.
                sig = kms.sign(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm=alg)["Signature"]
                public.verify(sig, digest, ec.ECDSA(utils.Prehashed(HASHES[alg[-3:]][0]())))
        bad = bytearray(sig)
        bad[-1] ^= 1
        assert err(kms.verify, KeyId=md["KeyId"], Message=message, Signature=bytes(bad),
                   SigningAlgorithm=algs[-1]) == "KMSInvalidSignatureException"


def test_rsa_encryption_with_the_exported_public_key(server, tmp_path):
    kms = server.client("kms")
    key = kms.create_key(KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert key["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    pub = kms.get_public_key(KeyId=key["KeyId"])
    assert pub["EncryptionAlgorithms"] == key["EncryptionAlgorithms"] and "SigningAlgorithms" not in pub
    public = serialization.load_der_public_key(pub["PublicKey"])
    for alg, h in (("RSAES_OAEP_SHA_1", hashes.SHA1), ("RSAES_OAEP_SHA_256", hashes.SHA256)):
        ct = public.encrypt(b"made by cryptography", padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None))
        out = kms.decrypt(KeyId=key["Arn"], CiphertextBlob=ct, EncryptionAlgorithm=alg)
        assert out["Plaintext"] == b"made by cryptography" and out["EncryptionAlgorithm"] == alg
        assert "KeyMaterialId" not in out
    # openssl, as the AWS docs show for offline encryption with a KMS public key.
    der = tmp_path / "pub.der"
    der.write_bytes(pub["PublicKey"])
    (tmp_path / "pt").write_bytes(b"made by openssl")
    p = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(der), "-keyform", "DER", "-in", str(tmp_path / "pt"),
                "-out", str(tmp_path / "ct"), "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                "-pkeyopt", "rsa_mgf1_md:sha256")
    assert p.returncode == 0, p.stderr
    out = kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=(tmp_path / "ct").read_bytes(), EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert out["Plaintext"] == b"made by openssl"
    # KMS's own Encrypt: 318 bytes is the SHA-256 limit of RSA_3072, one more is refused.
    e = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"\x01" * 318, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert len(e["CiphertextBlob"]) == 384 and e["EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=e["CiphertextBlob"],
                       EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"\x01" * 318
    assert err(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"\x01" * 319, EncryptionAlgorithm="RSAES_OAEP_SHA_256") == "ValidationException"
    assert err(kms.decrypt, KeyId=key["KeyId"], CiphertextBlob=e["CiphertextBlob"],
               EncryptionAlgorithm="RSAES_OAEP_SHA_1") == "InvalidCiphertextException"


def test_data_key_pairs_hmac_and_random(server, tmp_path):
    kms = server.client("kms")
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    for spec in ("RSA_2048", "ECC_NIST_P256", "ECC_NIST_P521", "ECC_SECG_P256K1"):
        p = kms.generate_data_key_pair(KeyId=sym, KeyPairSpec=spec, EncryptionContext={"use": "pair"})
        private = serialization.load_der_private_key(p["PrivateKeyPlaintext"], password=None)
        public = serialization.load_der_public_key(p["PublicKey"])
        assert private.public_key().public_numbers() == public.public_numbers()
        opened = kms.decrypt(CiphertextBlob=p["PrivateKeyCiphertextBlob"], EncryptionContext={"use": "pair"})
        assert opened["Plaintext"] == p["PrivateKeyPlaintext"]
        (tmp_path / "pk.der").write_bytes(p["PrivateKeyPlaintext"])
        assert openssl("pkey", "-inform", "DER", "-in", str(tmp_path / "pk.der"), "-noout").returncode == 0
        w = kms.generate_data_key_pair_without_plaintext(KeyId=sym, KeyPairSpec=spec)
        assert "PrivateKeyPlaintext" not in w and w["KeyPairSpec"] == spec
    for spec, alg, size in (("HMAC_224", "HMAC_SHA_224", 28), ("HMAC_256", "HMAC_SHA_256", 32),
                            ("HMAC_384", "HMAC_SHA_384", 48), ("HMAC_512", "HMAC_SHA_512", 64)):
        md = kms.create_key(KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
        assert md["MacAlgorithms"] == [alg] and "EncryptionAlgorithms" not in md
        mac = kms.generate_mac(KeyId=md["KeyId"], Message=b"tag me", MacAlgorithm=alg)
        assert len(mac["Mac"]) == size and mac["MacAlgorithm"] == alg and mac["KeyId"] == md["Arn"]
        assert kms.generate_mac(KeyId=md["KeyId"], Message=b"tag me", MacAlgorithm=alg)["Mac"] == mac["Mac"]
        ok = kms.verify_mac(KeyId=md["KeyId"], Message=b"tag me", Mac=mac["Mac"], MacAlgorithm=alg)
        assert ok["MacValid"] is True
        assert err(kms.verify_mac, KeyId=md["KeyId"], Message=b"tag me!", Mac=mac["Mac"], MacAlgorithm=alg) == "KMSInvalidMacException"
        assert kms.get_key_rotation_status(KeyId=md["KeyId"])["KeyRotationEnabled"] is False
    sizes = {len(kms.generate_random(NumberOfBytes=n)["Plaintext"]) for n in (1, 32, 1024)}
    assert sizes == {1, 32, 1024}
    assert len({kms.generate_random(NumberOfBytes=32)["Plaintext"] for _ in range(5)}) == 5


def test_wrong_usage_answers_aws_errors(server):
    kms = server.client("kms")
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    enc = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    sign = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    mac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    assert err(kms.sign, KeyId=enc, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256") == "InvalidKeyUsageException"
    assert err(kms.sign, KeyId=sym, Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == "InvalidKeyUsageException"
    assert err(kms.sign, KeyId=sign, Message=b"m", SigningAlgorithm="ECDSA_SHA_384") == "InvalidKeyUsageException"
    assert err(kms.sign, KeyId=sign, Message=b"short digest", MessageType="DIGEST",
               SigningAlgorithm="ECDSA_SHA_256") == "ValidationException"
    assert err(kms.generate_mac, KeyId=sym, Message=b"m", MacAlgorithm="HMAC_SHA_256") == "InvalidKeyUsageException"
    assert err(kms.generate_mac, KeyId=mac, Message=b"m", MacAlgorithm="HMAC_SHA_512") == "InvalidKeyUsageException"
    assert err(kms.encrypt, KeyId=sign, Plaintext=b"m", EncryptionAlgorithm="RSAES_OAEP_SHA_256") == "InvalidKeyUsageException"
    assert err(kms.encrypt, KeyId=enc, Plaintext=b"m") == "InvalidKeyUsageException"
    assert err(kms.encrypt, KeyId=sym, Plaintext=b"m", EncryptionAlgorithm="RSAES_OAEP_SHA_256") == "InvalidKeyUsageException"
    assert err(kms.encrypt, KeyId=mac, Plaintext=b"m") == "InvalidKeyUsageException"
    assert err(kms.generate_data_key, KeyId=enc, KeySpec="AES_256") == "InvalidKeyUsageException"
    assert err(kms.generate_data_key_pair, KeyId=sign, KeyPairSpec="ECC_NIST_P256") == "InvalidKeyUsageException"
    assert err(kms.get_public_key, KeyId=sym) == "UnsupportedOperationException"
    assert err(kms.get_public_key, KeyId=mac) == "UnsupportedOperationException"
    assert err(kms.enable_key_rotation, KeyId=sign) == "UnsupportedOperationException"
    assert err(kms.rotate_key_on_demand, KeyId=enc) == "UnsupportedOperationException"
    assert kms.get_key_rotation_status(KeyId=enc)["KeyRotationEnabled"] is False
    assert err(kms.create_key, KeySpec="ECC_NIST_P256", KeyUsage="ENCRYPT_DECRYPT") == "ValidationException"
    assert err(kms.create_key, KeySpec="RSA_2048") == "ValidationException"
    assert err(kms.create_key, KeySpec="ML_DSA_44", KeyUsage="SIGN_VERIFY") == "UnsupportedOperationException"
    assert err(kms.create_key, KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT") == "UnsupportedOperationException"
    # S3 cannot seal objects under an asymmetric or HMAC key (AWS: symmetric keys only).
    s3 = server.client()
    s3.create_bucket(Bucket="not-asymmetric")
    for k in (enc, mac):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket="not-asymmetric", Key="o", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=k)
        assert e.value.response["Error"]["Code"] == "KMS.InvalidKeyUsageException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    kms.disable_key(KeyId=sign)
    assert err(kms.sign, KeyId=sign, Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == "DisabledException"
    kms.schedule_key_deletion(KeyId=mac, PendingWindowInDays=7)
    assert err(kms.generate_mac, KeyId=mac, Message=b"m", MacAlgorithm="HMAC_SHA_256") == "KMSInvalidStateException"


def test_every_new_operation_with_the_aws_cli_is_audited(server, tmp_path):
    """The aws CLI drives each new operation; each leaves one KMS audit record naming the key and
    carrying none of the message, signature, MAC, wrapped material or tokens."""
    def cli(*args):
        return json.loads(server.cli("kms", *args).stdout or "{}")

    (tmp_path / "msg").write_bytes(b"SECRET-MESSAGE-NOT-FOR-THE-TRAIL")
    signer = cli("create-key", "--key-spec", "ECC_NIST_P384", "--key-usage", "SIGN_VERIFY")["KeyMetadata"]
    sig = cli("sign", "--key-id", signer["KeyId"], "--message", f"fileb://{tmp_path / 'msg'}",
              "--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_384")["Signature"]
    (tmp_path / "sig").write_bytes(base64.b64decode(sig))
    assert cli("verify", "--key-id", signer["KeyId"], "--message", f"fileb://{tmp_path / 'msg'}", "--signature",
               f"fileb://{tmp_path / 'sig'}", "--signing-algorithm", "ECDSA_SHA_384")["SignatureValid"] is True
    pub = cli("get-public-key", "--key-id", signer["KeyId"])
    (tmp_path / "pub.der").write_bytes(base64.b64decode(pub["PublicKey"]))
    p = openssl("dgst", "-sha384", "-verify", str(pem_of(tmp_path, "cli", base64.b64decode(pub["PublicKey"]))),
                "-signature", str(tmp_path / "sig"), str(tmp_path / "msg"))
    assert b"Verified OK" in p.stdout, p.stderr
    hmac = cli("create-key", "--key-spec", "HMAC_512", "--key-usage", "GENERATE_VERIFY_MAC")["KeyMetadata"]
    mac = cli("generate-mac", "--key-id", hmac["KeyId"], "--message", f"fileb://{tmp_path / 'msg'}",
              "--mac-algorithm", "HMAC_SHA_512")["Mac"]
    (tmp_path / "mac").write_bytes(base64.b64decode(mac))
    assert cli("verify-mac", "--key-id", hmac["KeyId"], "--message", f"fileb://{tmp_path / 'msg'}", "--mac",
               f"fileb://{tmp_path / 'mac'}", "--mac-algorithm", "HMAC_SHA_512")["MacValid"] is True
    sym = cli("create-key")["KeyMetadata"]
    pair = cli("generate-data-key-pair", "--key-id", sym["KeyId"], "--key-pair-spec", "RSA_2048")
    assert pair["KeyPairSpec"] == "RSA_2048" and pair["PrivateKeyPlaintext"]
    cli("generate-data-key-pair-without-plaintext", "--key-id", sym["KeyId"], "--key-pair-spec", "ECC_NIST_P256")
    assert len(base64.b64decode(cli("generate-random", "--number-of-bytes", "64")["Plaintext"])) == 64
    grant = cli("create-grant", "--key-id", sym["KeyId"], "--grantee-principal", "arn:aws:iam::000000000000:user/app",
                "--operations", "Decrypt", "GenerateDataKey", "--retiring-principal", "arn:aws:iam::000000000000:root",
                "--constraints", "EncryptionContextSubset={team=blue}")
    listed = cli("list-grants", "--key-id", sym["KeyId"])["Grants"]
    assert [g["GrantId"] for g in listed] == [grant["GrantId"]]
    assert listed[0]["Constraints"] == {"EncryptionContextSubset": {"team": "blue"}}
    assert cli("list-retirable-grants", "--retiring-principal", "arn:aws:iam::000000000000:root")["Grants"][0]["GrantId"] == grant["GrantId"]
    cli("retire-grant", "--grant-token", grant["GrantToken"])
    second = cli("create-grant", "--key-id", sym["KeyId"], "--grantee-principal", "arn:aws:iam::000000000000:user/app",
                 "--operations", "Encrypt")
    cli("revoke-grant", "--key-id", sym["KeyId"], "--grant-id", second["GrantId"])
    assert cli("list-grants", "--key-id", sym["KeyId"])["Grants"] == []
    enc = cli("create-key", "--key-spec", "RSA_2048", "--key-usage", "ENCRYPT_DECRYPT")["KeyMetadata"]
    ct = cli("encrypt", "--key-id", enc["KeyId"], "--plaintext", f"fileb://{tmp_path / 'msg'}",
             "--encryption-algorithm", "RSAES_OAEP_SHA_1")["CiphertextBlob"]
    (tmp_path / "ct").write_bytes(base64.b64decode(ct))
    pt = cli("decrypt", "--key-id", enc["KeyId"], "--ciphertext-blob", f"fileb://{tmp_path / 'ct'}",
             "--encryption-algorithm", "RSAES_OAEP_SHA_1")["Plaintext"]
    assert base64.b64decode(pt) == b"SECRET-MESSAGE-NOT-FOR-THE-TRAIL"
    cli("create-alias", "--alias-name", "alias/cli-signer", "--target-key-id", signer["KeyId"])
    other = cli("create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY")["KeyMetadata"]
    cli("update-alias", "--alias-name", "alias/cli-signer", "--target-key-id", other["KeyId"])
    bad = server.cli("kms", "update-alias", "--alias-name", "alias/cli-signer", "--target-key-id", hmac["KeyId"], check=False)
    assert bad.returncode != 0 and "ValidationException" in bad.stderr
    bad = server.cli("kms", "sign", "--key-id", enc["KeyId"], "--message", f"fileb://{tmp_path / 'msg'}",
                     "--signing-algorithm", "RSASSA_PSS_SHA_256", check=False)
    assert bad.returncode != 0 and "InvalidKeyUsageException" in bad.stderr

    p = subprocess.run([BIN, "audit", "lookup", "--max-results", "1000", "--data", str(server.data)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    records = [r for r in json.loads(p.stdout)["Records"] if r["eventSource"] == "kms.amazonaws.com"]
    by_name = {}
    for r in records:
        by_name.setdefault(r["eventName"], []).append(r)
    for op, key in [("Sign", signer), ("Verify", signer), ("GetPublicKey", signer), ("GenerateMac", hmac),
                    ("VerifyMac", hmac), ("GenerateDataKeyPair", sym), ("GenerateDataKeyPairWithoutPlaintext", sym),
                    ("CreateGrant", sym), ("ListGrants", sym), ("RetireGrant", sym), ("RevokeGrant", sym),
                    ("Encrypt", enc), ("Decrypt", enc), ("UpdateAlias", other)]:
        assert op in by_name, f"no audit record for {op}"
        assert any(r.get("resources") and r["resources"][0]["ARN"] == key["Arn"] for r in by_name[op]), op
    assert "GenerateRandom" in by_name and "ListRetirableGrants" in by_name
    sign_rec = next(r for r in by_name["Sign"] if not r.get("errorCode"))
    assert sign_rec["requestParameters"]["signingAlgorithm"] == "ECDSA_SHA_384"
    assert sign_rec["requestParameters"]["messageType"] == "RAW"
    failed = [r for r in by_name["Sign"] if r.get("errorCode")]
    assert failed and failed[0]["errorCode"] == "InvalidKeyUsageException"
    trail = b"".join(p.read_bytes() for p in (server.data / "audit").glob("*.jsonl"))
    for secret in (b"SECRET-MESSAGE", sig.encode(), mac.encode(), grant["GrantToken"].encode(),
                   pair["PrivateKeyPlaintext"].encode()[:40]):
        assert secret not in trail, secret[:20]
