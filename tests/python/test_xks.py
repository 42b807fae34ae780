"""sealbox as an AWS KMS External Key Store (XKS) proxy, driven by a client written from the XKS
proxy API specification (shared/reference/xks-proxy-api-spec.md) against the real binary:

- the four APIs with the spec's JSON, Base64 and error names, over HTTPS (HTTP/1.1 and, with
  curl as in the spec's Appendix D, HTTP/2); the CDIV computed here as Appendix C says;
- SigV4 for `kms-xks-proxy` with XKS credentials that are not IAM users (and the other way
  round), dated within 5 minutes, two credentials at once and a rotation by SIGHUP;
- only keys tagged `sealbox:xks` = `true` are served; wrong AAD, tampering, disabled keys;
- mutual TLS: without a client certificate XKS refuses (S3 still works), other CAs and other
  subject names fail the handshake;
- every call on the audit trail with the requestMetadata KMS sent (kmsRequestId ...), refusals too,
  never the plaintext; calls refused while the trail cannot be written.
"""

import base64
import datetime
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import uuid
from unittest import mock

import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import SEALBOX_BIN, Server
from test_attack_audit import mount_or_skip, read_only_switch, wait_until  # noqa: F401 (fixture)

SERVICE = "kms-xks-proxy"
# Appendix A: access key ids are 20-30 of A-Z2-7, secrets 43-64 of Base64 characters.
CRED_A = ("MUBSXM6K3KMXHN6RRCXI7TWQ", "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE=")
CRED_B = ("HGIE2BUAFNDMBCMSQVWLGCEX", "VU6W2byoiBrhDqNGbx703oL0syCAmhlQgwNUT1234567")
PLAINTEXT = b"XKS-DATA-KEY-PLAINTEXT-MARKER-0123456789"
AAD = b"project=nile,department=marketing"
CN = "cks.kms.eu-west-1.amazonaws.com"


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text, validate=True)


def write_credentials(path, *creds):
    text = "".join(f'[[credential]]\naccess_key_id = "{a}"\nsecret_access_key = "{s}"\n' for a, s in creds)
    path.write_text(text)
    path.chmod(0o600)
    return path


def request_metadata(operation, request_id=None):
    return {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": operation,
        "kmsRequestId": request_id or str(uuid.uuid4()),
        "kmsViaService": "ebs",
    }


class XksClient:
    """What AWS KMS's XKS proxy management fleet sends, per the spec: JSON POSTs under
    `<endpoint><XksProxyUriPath>`, signed with SigV4 for `kms-xks-proxy` (botocore's signer)."""

    def __init__(self, endpoint, uri_path="/kms/xks/v1", cred=CRED_A, verify=None, cert=None):
        self.endpoint, self.uri_path, self.cred = endpoint, uri_path, cred
        self.session = requests.Session()
        # Passed on every call: a session's own `verify` loses to REQUESTS_CA_BUNDLE & co.
        self.verify, self.cert = (verify if verify is not None else True), cert

    def post(self, path, body, cred=None, when=None, raw=None, method="POST"):
        url = f"{self.endpoint}{self.uri_path}{path}"
        data = raw if raw is not None else json.dumps(body).encode()
        req = AWSRequest(method=method, url=url, data=data, headers={"Content-Type": "application/json"})
        access_key, secret = cred or self.cred
        signer = SigV4Auth(Credentials(access_key, secret), SERVICE, "us-east-1")
        if when is None:
            signer.add_auth(req)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
                signer.add_auth(req)
        r = self.session.request(method, url, data=data, headers=dict(req.headers.items()), timeout=60,
                                 verify=self.verify, cert=self.cert)
        return r.status_code, (r.json() if r.content and r.headers.get("content-type") == "application/json" else r)

    def metadata(self, key, **kw):
        return self.post(f"/keys/{key}/metadata", {"requestMetadata": request_metadata("CreateKey")}, **kw)

    def encrypt(self, key, plaintext, aad=None, cdiv=False, request_id=None, **kw):
        body = {
            "requestMetadata": request_metadata("GenerateDataKey", request_id),
            "plaintext": b64(plaintext),
            "encryptionAlgorithm": "AES_GCM",
        }
        if aad is not None:
            body["additionalAuthenticatedData"] = b64(aad)
        if cdiv:
            body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
        return self.post(f"/keys/{key}/encrypt", body, **kw)

    def decrypt(self, key, sealed, aad=None, request_id=None, **kw):
        body = {
            "requestMetadata": request_metadata("Decrypt", request_id),
            "ciphertext": sealed["ciphertext"],
            "initializationVector": sealed["initializationVector"],
            "authenticationTag": sealed["authenticationTag"],
            "encryptionAlgorithm": "AES_GCM",
        }
        if "ciphertextMetadata" in sealed:
            body["ciphertextMetadata"] = sealed["ciphertextMetadata"]
        if aad is not None:
            body["additionalAuthenticatedData"] = b64(aad)
        return self.post(f"/keys/{key}/decrypt", body, **kw)

    def health(self, **kw):
        return self.post("/health", {"requestMetadata": {"kmsRequestId": str(uuid.uuid4()),
                                                         "kmsOperation": "KmsHealthCheck"}}, **kw)


def https(server):
    return f"https://127.0.0.1:{server.tls_port}"


def ca_bundle(server):
    return str(server.data / "tls" / "ca.pem")


def start(tmp_path, name, *extra, creds=(CRED_A,)):
    cred_file = write_credentials(tmp_path / f"{name}-xks.toml", *creds)
    server = Server(tmp_path / name, extra_args=("--xks-credentials", str(cred_file), *extra))
    server.cred_file = cred_file
    return server


def new_key(server, tagged=True):
    kms = server.client("kms")
    key = kms.create_key(Description="AWS data keys")["KeyMetadata"]["KeyId"]
    if tagged:
        kms.tag_resource(KeyId=key, Tags=[{"TagKey": "sealbox:xks", "TagValue": "true"}])
    return key


def audit_records(server, **flt):
    args = [SEALBOX_BIN, "audit", "lookup", "--data", str(server.data), "--max-results", "100000",
            "--event-source", "kms-xks-proxy.sealbox.local"]
    for k, v in flt.items():
        args += [f"--{k.replace('_', '-')}", v]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["Records"]


@pytest.fixture(scope="module")
def xks_server(tmp_path_factory):
    srv = start(tmp_path_factory.mktemp("xks"), "data")
    yield srv
    srv.stop()


@pytest.fixture
def client(xks_server):
    return XksClient(https(xks_server), verify=ca_bundle(xks_server))


def assert_error(result, status, name):
    got_status, body = result
    assert (got_status, body["errorName"] if isinstance(body, dict) else body) == (status, name), body
    assert isinstance(body["errorMessage"], str) and len(body["errorMessage"]) < 512


# --- the four APIs -------------------------------------------------------------------------------

def test_metadata_encrypt_decrypt_round_trip(xks_server, client):
    key = new_key(xks_server)
    assert client.metadata(key) == (200, {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"],
                                          "keyStatus": "ENABLED"})
    status, sealed = client.encrypt(key, PLAINTEXT, aad=AAD)
    assert status == 200, sealed
    assert set(sealed) == {"ciphertext", "ciphertextMetadata", "initializationVector", "authenticationTag"}
    assert len(unb64(sealed["ciphertext"])) == len(PLAINTEXT)
    assert len(unb64(sealed["initializationVector"])) in (12, 16)
    assert len(unb64(sealed["authenticationTag"])) == 16
    assert len(unb64(sealed["ciphertextMetadata"])) <= 20
    assert PLAINTEXT not in unb64(sealed["ciphertext"])
    assert client.decrypt(key, sealed, aad=AAD) == (200, {"plaintext": b64(PLAINTEXT)})
    # No AAD; and the sizes the spec requires a proxy to take (4300 bytes, 8192 bytes of AAD).
    status, sealed = client.encrypt(key, b"k" * 32)
    assert client.decrypt(key, sealed) == (200, {"plaintext": b64(b"k" * 32)})
    big, big_aad = os.urandom(4300), os.urandom(8192)
    status, sealed = client.encrypt(key, big, aad=big_aad)
    assert status == 200, sealed
    assert client.decrypt(key, sealed, aad=big_aad) == (200, {"plaintext": b64(big)})


def test_cdiv_is_appendix_c(xks_server, client):
    key = new_key(xks_server)
    status, sealed = client.encrypt(key, PLAINTEXT, aad=AAD, cdiv=True)
    assert status == 200, sealed
    parts = [AAD] + [unb64(sealed[f]) for f in ("ciphertextMetadata", "initializationVector", "ciphertext",
                                                 "authenticationTag")]
    assert unb64(sealed["ciphertextDataIntegrityValue"]) == hashlib.sha256(b"".join(parts)).digest()
    # Without AAD the hash simply leaves it out.
    status, sealed = client.encrypt(key, PLAINTEXT, cdiv=True)
    parts = [unb64(sealed[f]) for f in ("ciphertextMetadata", "initializationVector", "ciphertext",
                                        "authenticationTag")]
    assert unb64(sealed["ciphertextDataIntegrityValue"]) == hashlib.sha256(b"".join(parts)).digest()
    assert "ciphertextDataIntegrityValue" not in client.encrypt(key, PLAINTEXT)[1], "only when asked"


def test_health(client):
    status, body = client.health()
    assert status == 200, body
    assert isinstance(body["xksProxyFleetSize"], int) and body["xksProxyFleetSize"] > 0
    for field in ("xksProxyVendor", "xksProxyModel", "ekmVendor"):
        assert isinstance(body[field], str) and body[field]
    assert 1 <= len(body["ekmFleetDetails"]) <= 10
    assert body["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
    assert {"id", "model", "healthStatus"} <= set(body["ekmFleetDetails"][0])


def test_get_and_other_methods_are_405(xks_server, client):
    key = new_key(xks_server)
    for path in (f"/keys/{key}/metadata", f"/keys/{key}/encrypt", f"/keys/{key}/decrypt", "/health"):
        for method in ("GET", "PUT", "DELETE"):
            status, r = client.post(path, None, raw=b"", method=method)
            assert status == 405, (method, path, r.text)
            assert r.headers["Allow"] == "POST"
        # Unsigned GETs too (a load balancer, a browser).
        r = requests.get(f"{https(xks_server)}/kms/xks/v1{path}", verify=ca_bundle(xks_server), timeout=30)
        assert r.status_code == 405


def test_other_paths_are_invalid_uri_path(xks_server, client):
    for path in ("/keys", "/keys/k/sign", "/healthz", "", "/keys/k/encrypt/extra"):
        assert_error(client.post(path, {}), 404, "InvalidUriPathException")
    # A request signed for XKS at another prefix: KMS learns its URI path is wrong.
    wrong = XksClient(https(xks_server), uri_path="/other/kms/xks/v1", verify=ca_bundle(xks_server))
    assert_error(wrong.health(), 404, "InvalidUriPathException")


def test_curl_as_in_appendix_d_over_http2(xks_server):
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is not installed")
    key = new_key(xks_server)
    body = json.dumps({"requestMetadata": request_metadata("GenerateDataKey"), "plaintext": b64(PLAINTEXT),
                       "encryptionAlgorithm": "AES_GCM"})
    for version in ("--http2", "--http1.1"):
        p = subprocess.run([curl, "-s", version, "--cacert", ca_bundle(xks_server),
                            "--aws-sigv4", f"aws:amz:us-east-1:{SERVICE}", "--user", f"{CRED_A[0]}:{CRED_A[1]}",
                            "-X", "POST", "-H", "Content-Type:application/json", "--data", body,
                            "-w", "\n%{http_version} %{http_code}",
                            f"{https(xks_server)}/kms/xks/v1/keys/{key}/encrypt"],
                           capture_output=True, text=True, timeout=60)
        out, _, tail = p.stdout.rpartition("\n")
        assert tail == ("2 200" if version == "--http2" else "1.1 200"), (tail, out, p.stderr)
        sealed = json.loads(out)
        client = XksClient(https(xks_server), verify=ca_bundle(xks_server))
        assert client.decrypt(key, sealed) == (200, {"plaintext": b64(PLAINTEXT)})


# --- keys -----------------------------------------------------------------------------------------

def test_unknown_and_untagged_keys_are_not_found(xks_server, client):
    assert_error(client.metadata(str(uuid.uuid4())), 404, "KeyNotFoundException")
    untagged = new_key(xks_server, tagged=False)
    assert_error(client.metadata(untagged), 404, "KeyNotFoundException")
    assert_error(client.encrypt(untagged, PLAINTEXT), 404, "KeyNotFoundException")
    kms = xks_server.client("kms")
    kms.tag_resource(KeyId=untagged, Tags=[{"TagKey": "sealbox:xks", "TagValue": "yes"}])
    assert_error(client.metadata(untagged), 404, "KeyNotFoundException")
    kms.tag_resource(KeyId=untagged, Tags=[{"TagKey": "sealbox:xks", "TagValue": "true"}])
    assert client.metadata(untagged)[0] == 200
    kms.untag_resource(KeyId=untagged, TagKeys=["sealbox:xks"])
    assert_error(client.encrypt(untagged, PLAINTEXT), 404, "KeyNotFoundException")
    # Aliases and ARNs are not external key ids.
    kms.create_alias(AliasName="alias/xks-test", TargetKeyId=new_key(xks_server))
    assert_error(client.metadata("alias%2Fxks-test"), 400, "ValidationException")


def test_wrong_aad_and_tampering_are_invalid_ciphertext(xks_server, client):
    key, other = new_key(xks_server), new_key(xks_server)
    status, sealed = client.encrypt(key, PLAINTEXT, aad=AAD)
    assert status == 200
    assert_error(client.decrypt(key, sealed, aad=AAD + b"!"), 400, "InvalidCiphertextException")
    assert_error(client.decrypt(key, sealed), 400, "InvalidCiphertextException")
    assert_error(client.decrypt(other, sealed, aad=AAD), 400, "InvalidCiphertextException")
    for field in ("ciphertext", "initializationVector", "authenticationTag", "ciphertextMetadata"):
        raw = bytearray(unb64(sealed[field]))
        raw[len(raw) // 2] ^= 0x10
        tampered = dict(sealed, **{field: b64(bytes(raw))})
        status, body = client.decrypt(key, tampered, aad=AAD)
        assert (status, body["errorName"]) == (400, "InvalidCiphertextException"), field
        assert "plaintext" not in body
    # Metadata dropped, or passed off as AAD (the spec's own example): refused.
    no_meta = {k: v for k, v in sealed.items() if k != "ciphertextMetadata"}
    assert_error(client.decrypt(key, no_meta, aad=AAD), 400, "InvalidCiphertextException")
    status, plain_sealed = client.encrypt(key, PLAINTEXT)
    as_aad = {k: v for k, v in plain_sealed.items() if k != "ciphertextMetadata"}
    assert_error(client.decrypt(key, as_aad, aad=unb64(plain_sealed["ciphertextMetadata"])), 400,
                 "InvalidCiphertextException")


def test_disabled_and_pending_deletion_keys_are_invalid_state(xks_server, client):
    kms = xks_server.client("kms")
    key = new_key(xks_server)
    status, sealed = client.encrypt(key, PLAINTEXT)
    kms.disable_key(KeyId=key)
    assert client.metadata(key)[1]["keyStatus"] == "DISABLED"
    assert_error(client.encrypt(key, PLAINTEXT), 400, "InvalidStateException")
    assert_error(client.decrypt(key, sealed), 400, "InvalidStateException")
    kms.enable_key(KeyId=key)
    assert client.decrypt(key, sealed) == (200, {"plaintext": b64(PLAINTEXT)})
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert client.metadata(key)[1]["keyStatus"] == "DISABLED"
    assert_error(client.decrypt(key, sealed), 400, "InvalidStateException")


def test_rotation_old_ciphertexts_still_decrypt(xks_server, client):
    kms = xks_server.client("kms")
    key = new_key(xks_server)
    status, before = client.encrypt(key, b"before rotation")
    kms.rotate_key_on_demand(KeyId=key)
    status, after = client.encrypt(key, b"after rotation")
    assert unb64(before["ciphertextMetadata"])[1:5] != unb64(after["ciphertextMetadata"])[1:5], "new material"
    assert client.decrypt(key, before) == (200, {"plaintext": b64(b"before rotation")})
    assert client.decrypt(key, after) == (200, {"plaintext": b64(b"after rotation")})


def test_malformed_bodies_are_validation_errors(xks_server, client):
    key = new_key(xks_server)
    path = f"/keys/{key}/encrypt"
    good = {"requestMetadata": request_metadata("Encrypt"), "plaintext": b64(b"x"), "encryptionAlgorithm": "AES_GCM"}
    for bad in (
        {k: v for k, v in good.items() if k != "requestMetadata"},
        {k: v for k, v in good.items() if k != "plaintext"},
        dict(good, encryptionAlgorithm="AES_256_CBC"),
        dict(good, plaintext="***"),
        dict(good, requestMetadata={"kmsOperation": "Encrypt"}),
    ):
        assert_error(client.post(path, bad), 400, "ValidationException")
    assert_error(client.post(path, None, raw=b"{not json"), 400, "ValidationException")
    assert_error(client.post(path, dict(good, plaintext=b64(b"x" * 20000))), 501, "UnsupportedOperationException")


# --- authentication -------------------------------------------------------------------------------

def test_wrong_credentials_and_iam_keys_are_refused(xks_server, client):
    key = new_key(xks_server)
    assert_error(client.encrypt(key, PLAINTEXT, cred=(CRED_A[0], CRED_B[1])), 401, "AuthenticationFailedException")
    assert_error(client.encrypt(key, PLAINTEXT, cred=CRED_B), 401, "AuthenticationFailedException")
    # The server's own (IAM root) credentials do not open XKS ...
    root = (xks_server.access_key, xks_server.secret_key)
    assert_error(client.metadata(key, cred=root), 401, "AuthenticationFailedException")
    # ... and the XKS credential opens nothing but XKS.
    kms = xks_server.client("kms", access_key=CRED_A[0], secret_key=CRED_A[1])
    with pytest.raises(Exception) as e:
        kms.list_keys()
    assert "UnrecognizedClient" in str(e.value)
    s3 = xks_server.client("s3", access_key=CRED_A[0], secret_key=CRED_A[1])
    with pytest.raises(Exception) as e:
        s3.list_buckets()
    assert "InvalidAccessKeyId" in str(e.value)
    # Unsigned, and a body changed after signing.
    r = requests.post(f"{https(xks_server)}/kms/xks/v1/keys/{key}/metadata", verify=ca_bundle(xks_server),
                      json={"requestMetadata": request_metadata("CreateKey")}, timeout=30)
    assert (r.status_code, r.json()["errorName"]) == (401, "AuthenticationFailedException")
    url = f"{https(xks_server)}/kms/xks/v1/keys/{key}/encrypt"
    body = json.dumps({"requestMetadata": request_metadata("Encrypt"), "plaintext": b64(b"a"),
                       "encryptionAlgorithm": "AES_GCM"}).encode()
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*CRED_A), SERVICE, "us-east-1").add_auth(req)
    r = requests.post(url, data=body.replace(b'"a', b'"b'), headers=dict(req.headers.items()),
                      verify=ca_bundle(xks_server), timeout=30)
    assert (r.status_code, r.json()["errorName"]) == (401, "AuthenticationFailedException")
    # Signed for another service.
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*CRED_A), "kms", "us-east-1").add_auth(req)
    r = requests.post(url, data=body, headers=dict(req.headers.items()), verify=ca_bundle(xks_server), timeout=30)
    assert (r.status_code, r.json()["errorName"]) == (401, "AuthenticationFailedException")


def test_requests_older_or_newer_than_5_minutes_are_refused(xks_server, client):
    key = new_key(xks_server)
    now = datetime.datetime.now(datetime.timezone.utc)
    for minutes in (-6, 6, -30):
        assert_error(client.metadata(key, when=now + datetime.timedelta(minutes=minutes)), 401,
                     "AuthenticationFailedException")
    for minutes in (-4, 4):
        assert client.metadata(key, when=now + datetime.timedelta(minutes=minutes))[0] == 200


def test_https_only_unless_the_insecure_flag(xks_server):
    plain = XksClient(f"http://127.0.0.1:{xks_server.port}")
    assert_error(plain.health(), 401, "AuthenticationFailedException")


def test_two_credentials_at_once_and_rotation_by_sighup(tmp_path):
    server = start(tmp_path, "data")
    try:
        client = XksClient(https(server), verify=ca_bundle(server))
        assert client.health()[0] == 200
        assert_error(client.health(cred=CRED_B), 401, "AuthenticationFailedException")
        # Step 1 of the spec's rotation: add the new credential, both work.
        write_credentials(server.cred_file, CRED_A, CRED_B)
        server.proc.send_signal(signal.SIGHUP)
        wait_until("B accepted", lambda: client.health(cred=CRED_B)[0] == 200)
        assert client.health(cred=CRED_A)[0] == 200
        # A broken file is refused and changes nothing.
        server.cred_file.write_text("[[credential]]\naccess_key_id = 1\n")
        server.proc.send_signal(signal.SIGHUP)
        wait_until("reload refused", lambda: "XKS credentials reload failed" in server.logs())
        assert client.health(cred=CRED_A)[0] == 200 and client.health(cred=CRED_B)[0] == 200
        # Step 4: remove the old one.
        write_credentials(server.cred_file, CRED_B)
        server.proc.send_signal(signal.SIGHUP)
        wait_until("A refused", lambda: client.health(cred=CRED_A)[0] == 401)
        assert client.health(cred=CRED_B)[0] == 200
        assert "FYtE5EFA5FT0mCc3" not in server.logs() and "VU6W2byoiBrhDqNG" not in server.logs()
    finally:
        server.stop()


def test_path_prefix(tmp_path):
    server = start(tmp_path, "data", "--xks-path-prefix", "keystores/team-a")
    try:
        key = new_key(server)
        client = XksClient(https(server), uri_path="/keystores/team-a/kms/xks/v1", verify=ca_bundle(server))
        assert client.health()[0] == 200
        assert client.metadata(key)[0] == 200
        bare = XksClient(https(server), verify=ca_bundle(server))
        assert_error(bare.health(), 404, "InvalidUriPathException")
        assert "XksProxyUriPath /keystores/team-a/kms/xks/v1" in server.logs()
    finally:
        server.stop()


def test_off_without_credentials(server):
    client = XksClient(f"https://127.0.0.1:{server.tls_port}", verify=ca_bundle(server))
    status, r = client.health()
    assert status == 404 and "errorName" not in r.text
    # The same paths stay S3's: a bucket named kms works as before.
    s3 = server.client()
    s3.create_bucket(Bucket="kms")
    s3.put_object(Bucket="kms", Key="xks/v1/health", Body=b"an object")
    assert s3.get_object(Bucket="kms", Key="xks/v1/health")["Body"].read() == b"an object"


# --- mutual TLS -----------------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA, a client certificate with KMS's subject name, one with another name, and one from a
    rogue CA with KMS's name (openssl, as an operator would)."""
    ext = d / "client.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
    for ca in ("ca", "rogue"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", f"/CN={ca} test CA", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    for name, ca, cn in (("kms", "ca", CN), ("other", "ca", "cks.kms.us-east-1.amazonaws.com"), ("forged", "rogue", CN)):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                f"/O=Amazon/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
                "-days", "2", "-extfile", "client.ext", "-out", f"{name}.pem", cwd=d)
    return {n: (str(d / f"{n}.pem"), str(d / f"{n}.key")) for n in ("kms", "other", "forged")}


def test_mutual_tls(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    pki = tmp_path / "pki"
    pki.mkdir()
    certs = make_pki(pki)
    server = start(tmp_path, "data", "--xks-client-ca", str(pki / "ca.pem"), "--xks-client-cn", CN)
    try:
        key = new_key(server)
        with_cert = XksClient(https(server), verify=ca_bundle(server), cert=certs["kms"])
        assert with_cert.health()[0] == 200
        status, sealed = with_cert.encrypt(key, PLAINTEXT)
        assert status == 200
        without = XksClient(https(server), verify=ca_bundle(server))
        assert_error(without.health(), 401, "AuthenticationFailedException")
        assert_error(without.decrypt(key, sealed), 401, "AuthenticationFailedException")
        # S3 and KMS clients present no certificate and are unaffected.
        assert server.client("s3", tls=True).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
        # Another subject name, or KMS's name from another CA: the handshake fails.
        for name in ("other", "forged"):
            client = XksClient(https(server), verify=ca_bundle(server), cert=certs[name])
            with pytest.raises(requests.exceptions.SSLError):
                client.health()
        # Plain HTTP has no certificate at all.
        assert_error(XksClient(f"http://127.0.0.1:{server.port}").health(), 401, "AuthenticationFailedException")
    finally:
        server.stop()


# --- the audit trail ------------------------------------------------------------------------------

def test_every_call_is_audited_with_its_request_metadata(tmp_path):
    server = start(tmp_path, "data")
    try:
        client = XksClient(https(server), verify=ca_bundle(server))
        key = new_key(server)
        status, sealed = client.encrypt(key, PLAINTEXT, aad=AAD, request_id="req-encrypt-1")
        assert status == 200
        assert client.decrypt(key, sealed, aad=AAD, request_id="req-decrypt-1")[0] == 200
        assert_error(client.decrypt(key, sealed, request_id="req-bad-aad"), 400, "InvalidCiphertextException")
        assert_error(client.health(cred=(CRED_A[0], CRED_B[1])), 401, "AuthenticationFailedException")
    finally:
        server.stop()
    by_request = {r["requestParameters"]["requestMetadata"]["kmsRequestId"]: r
                  for r in audit_records(server) if (r.get("requestParameters") or {}).get("requestMetadata")}
    enc = by_request["req-encrypt-1"]
    assert enc["eventName"] == "Encrypt" and "errorCode" not in enc
    meta = enc["requestParameters"]["requestMetadata"]
    assert meta["awsPrincipalArn"] == "arn:aws:iam::123456789012:user/Alice"
    assert meta["kmsOperation"] == "GenerateDataKey" and meta["kmsViaService"] == "ebs"
    assert meta["kmsKeyArn"].startswith("arn:aws:kms:us-east-2:123456789012:key/")
    assert enc["requestParameters"]["externalKeyId"] == key
    assert enc["requestParameters"]["additionalAuthenticatedDataLength"] == len(AAD)
    assert enc["userIdentity"]["accessKeyId"] == CRED_A[0]
    assert enc["userIdentity"]["type"] == "XksCredential"
    assert enc["resources"][0]["ARN"].endswith(f":key/{key}")
    assert len(enc["additionalEventData"]["keyMaterialId"]) == 64
    assert by_request["req-decrypt-1"]["eventName"] == "Decrypt"
    bad = by_request["req-bad-aad"]
    assert bad["errorCode"] == "InvalidCiphertextException"
    refused = [r for r in audit_records(server, event_name="GetHealthStatus")
               if r.get("errorCode") == "AuthenticationFailedException"]
    assert refused and refused[0]["userIdentity"]["accessKeyId"] == CRED_A[0], refused
    # Never the plaintext, raw or Base64, anywhere on the trail.
    for f in (server.data / "audit").rglob("*"):
        data = f.read_bytes() if f.is_file() else b""
        assert PLAINTEXT not in data and b64(PLAINTEXT).encode() not in data, f


def test_xks_calls_are_refused_while_the_audit_trail_cannot_be_written(tmp_path, read_only_switch):
    make_read_only, make_writable = read_only_switch
    server = start(tmp_path, "data", "--audit-digest-interval-secs", "1")
    try:
        client = XksClient(https(server), verify=ca_bundle(server))
        key = new_key(server)
        status, sealed = client.encrypt(key, PLAINTEXT)
        assert status == 200
        make_read_only(server.data / "audit")
        wait_until("XKS refused", lambda: client.decrypt(key, sealed)[0] == 500)
        status, body = client.decrypt(key, sealed)
        assert (status, body["errorName"]) == (500, "InternalException") and "plaintext" not in body
        assert client.encrypt(key, PLAINTEXT)[1]["errorName"] == "InternalException"
        assert client.health()[1]["errorName"] == "InternalException"
        make_writable()
        wait_until("XKS back", lambda: client.decrypt(key, sealed)[0] == 200)
    finally:
        server.stop()
