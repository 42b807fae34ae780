"""Command-line additions: `sealbox migrate SRC DST` (the short form of `migrate copy`), shell
completions and the man page generated from the same definitions as `--help`."""

import os
import shutil
import subprocess

import pytest

from conftest import SEALBOX_BIN


def sealbox(*args, env=None):
    return subprocess.run([SEALBOX_BIN, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_migrate_short_form_is_copy(server, tmp_path):
    src = tmp_path / "folder"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"first file")
    (src / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    s3 = server.client()
    s3.create_bucket(Bucket="short-form")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    proc = sealbox("migrate", src, "s3://short-form/in", "--dst-endpoint", f"http://127.0.0.1:{server.port}",
                   "--sse", "aws:kms", "--checkpoint", tmp_path / "cp.db", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert s3.get_object(Bucket="short-form", Key="in/a.txt")["Body"].read() == b"first file"
    head = s3.head_object(Bucket="short-form", Key="in/sub/b.bin")
    assert head["ContentLength"] == 70_000 and head["ServerSideEncryption"] == "aws:kms"
    missing = sealbox("migrate", src)
    assert missing.returncode == 2 and "<DST>" in missing.stderr


@pytest.mark.parametrize("shell,checker", [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_completions_parse_and_name_every_command(tmp_path, shell, checker):
    proc = sealbox("completions", shell)
    assert proc.returncode == 0, proc.stderr
    for command in ("serve", "migrate", "backup", "restore", "completions", "audit"):
        assert command in proc.stdout, (shell, command)
    if shutil.which(checker[0]) is None:
        pytest.skip(f"{checker[0]} is not installed")
    script = tmp_path / f"sealbox.{shell}"
    script.write_text(proc.stdout)
    check = subprocess.run([*checker, str(script)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_man_page(tmp_path):
    proc = sealbox("man")
    assert proc.returncode == 0
    assert proc.stdout.startswith(".ie") or ".TH sealbox 1" in proc.stdout
    for command in ("backup", "restore", "completions"):
        assert command in proc.stdout
    if shutil.which("man"):
        page = tmp_path / "sealbox.1"
        page.write_text(proc.stdout)
        shown = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, MANPAGER="cat", PAGER="cat"))
        assert shown.returncode == 0 and "sealbox" in shown.stdout
