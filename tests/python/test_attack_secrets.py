"""Secrets on screen and on disk (issue 12, section 5).

An attacker who reads the server's logs (journald, `docker logs`) or a file another local user
can read gets nothing: the root secret is printed once, when it is generated, and every file
holding a secret (sealed or not) and every database is mode 0600, also when an older version or
an operator left it wider.
"""

import os
import stat

from conftest import Server


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def private_files(data):
    """The files that must be 0600 (those that exist)."""
    names = ["root-credentials.json", "sse-c-secret.sealed", "audit-signing.key.sealed", "tls/key.pem", "root.key"]
    names += [db + suffix for db in ("meta.db", "kms.db") for suffix in ("", "-wal", "-shm", "-journal")]
    return [data / n for n in names if (data / n).exists()]


def use_everything(server):
    """Writes to both databases (so their WAL files exist) and creates a blob."""
    s3 = server.client()
    s3.create_bucket(Bucket="modes")
    key = server.client("kms").create_key()["KeyMetadata"]["KeyId"]
    s3.put_object(Bucket="modes", Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)


def test_root_secret_is_printed_on_first_start_only(server):
    first = server.logs()
    assert server.secret_key in first and server.access_key in first
    server.restart()
    again = server.logs()
    assert server.secret_key not in again, "a restart printed the root secret"
    assert server.access_key in again
    assert str(server.data / "root-credentials.json") in again, "a restart says where the secret is"


def test_secret_from_the_environment_is_not_printed(tmp_path):
    env = {"SEALBOX_ROOT_ACCESS_KEY": "SBXCHOSENBYOPERATOR", "SEALBOX_ROOT_SECRET_KEY": "operator-chosen-secret-value"}
    srv = Server(tmp_path / "data", env)
    try:
        assert srv.secret_key == "operator-chosen-secret-value"
        assert "operator-chosen-secret-value" not in srv.logs()
        assert srv.client().list_buckets()["Buckets"] == []
    finally:
        srv.stop()


def test_secret_files_and_databases_are_private(server):
    use_everything(server)
    files = private_files(server.data)
    names = {str(p.relative_to(server.data)) for p in files}
    assert {"root-credentials.json", "sse-c-secret.sealed", "audit-signing.key.sealed", "meta.db", "kms.db",
            "meta.db-wal", "kms.db-wal", "tls/key.pem"} <= names, names
    assert {str(p): oct(mode(p)) for p in files if mode(p) != 0o600} == {}
    blobs = [p for p in (server.data / "blobs").rglob("*") if p.is_file()]
    assert blobs and all(mode(p) == 0o600 for p in blobs), "new files are private from birth"


def test_wider_modes_are_fixed_at_start(server):
    use_everything(server)
    server.stop()
    widened = [p for p in private_files(server.data) if p.name != "root.key"]
    for p in widened:
        os.chmod(p, 0o644)
    assert len(widened) >= 6
    server.restart()
    assert {str(p): oct(mode(p)) for p in widened if mode(p) != 0o600} == {}
    assert "made private" in server.logs()
    assert server.client().get_object(Bucket="modes", Key="k")["Body"].read() == b"x"
