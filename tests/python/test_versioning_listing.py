"""Versioning API on unversioned buckets, as cleanup tools and Terraform use it (issue 9)."""

import pytest
from botocore.exceptions import ClientError


def test_unversioned_bucket_answers_like_aws(s3, bucket):
    v = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in v
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="d/b", Body=b"2")
    r = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [(x["Key"], x["VersionId"], x["IsLatest"]) for x in r["Versions"]] == [("a", "null", True)]
    assert r["CommonPrefixes"] == [{"Prefix": "d/"}]
    assert s3.get_object(Bucket=bucket, Key="a", VersionId="null")["Body"].read() == b"1"
    assert s3.head_object(Bucket=bucket, Key="a", VersionId="null")["ContentLength"] == 1
    s3.delete_object(Bucket=bucket, Key="a", VersionId="null")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="a")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert e.value.response["Error"]["Code"] == "NotImplemented"


def test_empty_a_bucket_of_1200_objects_through_the_versions_api(server, s3, bucket):
    keys = [f"obj/{i:05d}" for i in range(1200)]
    server.cli("s3", "sync", "--quiet", _make_tree(server.data.parent / "tree", keys), f"s3://{bucket}/obj/")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1000
    pages = 0
    marker = {}
    while True:
        r = s3.list_object_versions(Bucket=bucket, **marker)
        pages += 1
        versions = r.get("Versions", [])
        if versions:
            s3.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions], "Quiet": True})
        if not r["IsTruncated"]:
            break
        marker = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
    assert pages == 2
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)


def _make_tree(root, keys):
    root.mkdir(parents=True, exist_ok=True)
    for k in keys:
        (root / k.split("/", 1)[1]).write_bytes(b"x")
    return str(root)
