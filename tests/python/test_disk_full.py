"""A full data volume (issue 8): writes fail with a clear 507 InsufficientStorage, nothing half
written is visible, everything stored keeps reading, and writes work again once space returns."""

import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import Server


@pytest.fixture
def small_volume(tmp_path):
    mnt = tmp_path / "vol"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_gives_507_and_recovers(small_volume):
    server = Server(small_volume / "data")
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="full")
        stored = {}
        error = None
        for i in range(200):
            body = os.urandom(1024 * 1024)
            try:
                s3.put_object(Bucket="full", Key=f"o{i}", Body=body)
                stored[f"o{i}"] = body
            except ClientError as e:
                error = e
                break
        assert error is not None, "the volume never filled"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 507
        assert error.response["Error"]["Code"] == "InsufficientStorage"
        failed_key = f"o{len(stored)}"
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="full").get("Contents", [])]
        assert failed_key not in listed and sorted(listed) == sorted(stored)
        for k in list(stored)[:3] + list(stored)[-2:]:
            assert s3.get_object(Bucket="full", Key=k)["Body"].read() == stored[k]
        assert list((server.data / "tmp").iterdir()) == []
        # Space returns: writes work again.
        for k in list(stored)[:10]:
            s3.delete_object(Bucket="full", Key=k)
        s3.put_object(Bucket="full", Key="after", Body=b"space is back")
        assert s3.get_object(Bucket="full", Key="after")["Body"].read() == b"space is back"
    finally:
        server.stop()
