"""The tools users already have, unchanged: the aws CLI and rclone (issue 3)."""

import os
import shutil
import subprocess

import pytest


def test_aws_cli_cp_sync_ls_rm(server, tmp_path):
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha")
    (src / "nested" / "b.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    server.cli("s3", "mb", "s3://cli-bucket")
    server.cli("s3", "sync", "--quiet", str(src), "s3://cli-bucket/data/")
    listing = server.cli("s3", "ls", "--recursive", "s3://cli-bucket").stdout
    assert "data/a.txt" in listing and "data/nested/b.bin" in listing
    dst = tmp_path / "dst"
    server.cli("s3", "cp", "--quiet", "--recursive", "s3://cli-bucket/data/", str(dst))
    assert (dst / "nested" / "b.bin").read_bytes() == (src / "nested" / "b.bin").read_bytes()
    head = server.cli("s3api", "head-object", "--bucket", "cli-bucket", "--key", "data/a.txt").stdout
    assert '"ContentLength": 5' in head
    server.cli("s3", "rm", "--quiet", "--recursive", "s3://cli-bucket/data/")
    assert server.cli("s3", "ls", "s3://cli-bucket").stdout.strip() == ""
    server.cli("s3", "rb", "s3://cli-bucket")


def test_aws_cli_over_https(server, tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("over tls")
    server.cli("s3", "mb", "s3://tls-bucket", tls=True)
    server.cli("s3", "cp", "--quiet", str(f), "s3://tls-bucket/f.txt", tls=True)
    out = server.cli("s3", "cp", "s3://tls-bucket/f.txt", "-", tls=True).stdout
    assert out == "over tls"


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")
def test_rclone_copy_and_check(server, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}.dat").write_bytes(os.urandom(1000 + i))
    (src / "big.dat").write_bytes(os.urandom(7 * 1024 * 1024))
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)  # rclone rejects it (see the contract, section G)
    env.update({
        "RCLONE_CONFIG_SB_TYPE": "s3", "RCLONE_CONFIG_SB_PROVIDER": "Other",
        "RCLONE_CONFIG_SB_ENDPOINT": f"http://127.0.0.1:{server.port}",
        "RCLONE_CONFIG_SB_ACCESS_KEY_ID": server.access_key,
        "RCLONE_CONFIG_SB_SECRET_ACCESS_KEY": server.secret_key,
        "RCLONE_CONFIG_SB_REGION": "us-east-1",
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
    })

    def rclone(*args):
        p = subprocess.run(["rclone", *args], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout

    rclone("mkdir", "sb:rclone-bucket")
    rclone("copy", str(src), "sb:rclone-bucket/x")
    listed = rclone("lsf", "sb:rclone-bucket/x")
    assert sorted(listed.split()) == sorted(p.name for p in src.iterdir())
    rclone("check", str(src), "sb:rclone-bucket/x")
    out = tmp_path / "out"
    rclone("sync", "sb:rclone-bucket/x", str(out))
    assert (out / "big.dat").read_bytes() == (src / "big.dat").read_bytes()
