"""Races between writers and readers (issue 12, section 4), as attacks a reader can rerun.

- A metadata-only update (PutObjectTagging, `sealbox rewrap`) that read the record before an
  identical re-PUT must not write the old record back: the old blobs are gone (or going), so the
  object would point at deleted data.
- A GET that started before an overwrite serves the version it started with, whole, or fails before
  its status line; never a truncated body after `200` + Content-Length, never a false
  ObjectIntegrityFailure.
- Replaced and deleted blobs are removed by the background collector after the grace period, not
  at commit; the removal is committed with the record change that caused it.
"""

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import threading
import time

import requests
from botocore.exceptions import BotoCoreError, ClientError

from conftest import SEALBOX_BIN, Server

MiB = 1024 * 1024
# SSE-KMS ETags are random, not the MD5 of the content: the server skips hashing 2 GB with MD5.
KMS = {"ServerSideEncryption": "aws:kms"}


def _metric(server, name):
    text = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")


def _referenced_blobs(data):
    """Blob ids the meta store names (objects and multipart parts), read from meta.db."""
    db = sqlite3.connect(f"file:{data / 'meta.db'}?mode=ro", uri=True)
    try:
        refs = set()
        for (doc,) in db.execute("SELECT doc FROM objects"):
            refs.update(p["blob"] for p in json.loads(doc)["parts"])
        for (doc,) in db.execute("SELECT doc FROM parts"):
            refs.add(json.loads(doc)["blob"])
        return refs
    finally:
        db.close()


def _blob_files(data):
    return {p.name for p in (data / "blobs").rglob("*") if p.is_file()}


def _integrity_failures_audited(server):
    """ObjectIntegrityFailure records on the audit trail (the server must be stopped)."""
    out = subprocess.run([SEALBOX_BIN, "audit", "lookup", "--data", str(server.data), "--event-name",
                          "ObjectIntegrityFailure"], capture_output=True, text=True,
                         env=dict(os.environ, RUST_BACKTRACE="0"), timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.count('"ObjectIntegrityFailure"')


def _assert_all_whole(server, bucket, bodies):
    s3 = server.client()
    broken = []
    for key, body in bodies.items():
        try:
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as e:
            broken.append((key, repr(e)))
            continue
        if got != body:
            broken.append((key, f"{len(got)} bytes, md5 {hashlib.md5(got).hexdigest()}"))
    assert broken == [], f"{len(broken)} of {len(bodies)} objects no longer read back whole: {broken[:5]}"
    # On disk: every blob a record names exists.
    missing = _referenced_blobs(server.data) - _blob_files(server.data)
    assert missing == set(), f"records name {len(missing)} deleted blobs"


def _tag(s3, bucket, key, i, errors):
    try:
        s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": "n", "Value": str(i)}]})
        return True
    except (ClientError, BotoCoreError) as e:
        errors.append(("tag", key, repr(e)))
        return False


def test_stale_tagging_never_resurrects_replaced_blobs(server):
    """PutObjectTagging read the record, an identical re-PUT replaced it (same ETag, new blobs),
    then the tagging update wrote the old record back: the object named deleted blobs until the
    next write. Rounds: taggers hammer each key while one identical re-PUT lands, then every key
    is read back with nothing else running."""
    s3 = server.client()
    s3.create_bucket(Bucket="tagrace")
    rnd = random.Random(12)
    bodies = {f"k{i}": rnd.randbytes(rnd.randint(1, 64 * 1024)) for i in range(4)}
    for k, b in bodies.items():
        s3.put_object(Bucket="tagrace", Key=k, Body=b)
    keys = list(bodies)
    taggers_per_key, rounds = 3, 25
    workers = len(keys) * (taggers_per_key + 1)
    start, end = threading.Barrier(workers + 1), threading.Barrier(workers + 1)
    puts_left = [0]
    lock, puts_done = threading.Lock(), threading.Event()
    errors, tagged = [], []

    def putter(key):
        c = server.client()
        for _ in range(rounds):
            start.wait()
            time.sleep(random.uniform(0, 0.005))
            try:
                c.put_object(Bucket="tagrace", Key=key, Body=bodies[key])
            except (ClientError, BotoCoreError) as e:
                errors.append(("put", key, repr(e)))
            with lock:
                puts_left[0] -= 1
                if puts_left[0] == 0:
                    puts_done.set()
            end.wait()

    def tagger(key, seed):
        c = server.client()
        i = seed * 1_000_000
        for _ in range(rounds):
            start.wait()
            while not puts_done.is_set():
                i += 1
                if _tag(c, "tagrace", key, i, errors):
                    tagged.append(1)
            end.wait()

    threads = [threading.Thread(target=putter, args=(k,)) for k in keys]
    threads += [threading.Thread(target=tagger, args=(k, n)) for k in keys for n in range(taggers_per_key)]
    for t in threads:
        t.start()
    broken = []
    for r in range(rounds):
        puts_left[0] = len(keys)
        puts_done.clear()
        start.wait()
        end.wait()
        for key, body in bodies.items():
            try:
                got = s3.get_object(Bucket="tagrace", Key=key)["Body"].read()
                if got != body:
                    broken.append((r, key, f"{len(got)} bytes"))
            except (ClientError, BotoCoreError) as e:
                broken.append((r, key, repr(e)))
    for t in threads:
        t.join(timeout=60)
    assert broken == [], f"{len(broken)} objects broken after a round: {broken[:3]}"
    assert errors == [], errors[:5]
    assert len(tagged) > rounds
    _assert_all_whole(server, "tagrace", bodies)
    assert _metric(server, "sealbox_object_integrity_failures_total") == 0


def test_stale_rewrap_never_resurrects_replaced_blobs(tmp_path):
    """`sealbox rewrap` listed a page of records, re-wrapped each data key and wrote each record
    back if its ETag still matched: an identical re-PUT in between kept the ETag, so the rewrap
    wrote back the replaced record's blob ids. Each key is re-PUT exactly once while one rewrap
    pass runs, so nothing heals the damage before the objects are read back."""
    server = Server(tmp_path / "data")
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="rewraprace")
        rnd = random.Random(7)
        bodies = {f"obj/{i:04d}": rnd.randbytes(rnd.randint(1, 4096)) for i in range(300)}
        for k, b in bodies.items():
            s3.put_object(Bucket="rewraprace", Key=k, Body=b)
        # A year and a bit later the SSE-S3 service key rotates (at start): every object is rewrappable.
        server.restart(extra_env={"SEALBOX_TEST_CLOCK_OFFSET_SECS": str(400 * 86400)})
        deadline = time.time() + 60
        while _metric(server, "sealbox_key_rotations_total") < 1:
            assert time.time() < deadline, "the SSE-S3 service key did not rotate"
            time.sleep(0.1)
        keys = list(bodies)
        rnd.shuffle(keys)
        errors, tagged, stop = [], [], threading.Event()

        def reputter(share):
            c = server.client()
            for key in share:
                try:
                    c.put_object(Bucket="rewraprace", Key=key, Body=bodies[key])
                except (ClientError, BotoCoreError) as e:
                    errors.append(("put", key, repr(e)))

        def tagger():
            c = server.client()
            i = 0
            while not stop.is_set():
                i += 1
                if _tag(c, "rewraprace", keys[i % len(keys)], i, errors):
                    tagged.append(1)

        writers = [threading.Thread(target=reputter, args=(keys[n::3],)) for n in range(3)]
        tag_thread = threading.Thread(target=tagger)
        env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
                   RUST_BACKTRACE="0")
        # Slow enough that the re-PUTs overtake it: about 2 s for the pass.
        rewrap = subprocess.Popen([SEALBOX_BIN, "rewrap", "rewraprace", "--rate", "150", "--endpoint",
                                   f"http://127.0.0.1:{server.port}"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        for t in writers + [tag_thread]:
            t.start()
        out, err = rewrap.communicate(timeout=120)
        for t in writers:
            t.join(timeout=240)
        stop.set()
        tag_thread.join(timeout=60)
        assert rewrap.returncode == 0, out + err
        report = json.loads(out)
        assert errors == [], errors[:5]
        assert report["failed"] == 0 and report["rewrapped"] + report["already_current"] + report[
            "changed_meanwhile"] == len(bodies), report
        _assert_all_whole(server, "rewraprace", bodies)
        assert _metric(server, "sealbox_object_integrity_failures_total") == 0
    finally:
        server.stop()


def _multipart_put(s3, bucket, key, parts, **sse):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **sse)
    done = []
    for n, body in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=body)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})


def test_reads_during_overwrites_serve_one_whole_version(tmp_path):
    """16 readers GET a 3-part object in a loop while writers overwrite it 200 times. The old
    code opened part blobs lazily while streaming and unlinked replaced blobs at commit: a reader
    got 200 + Content-Length, then a truncated body, and a false ObjectIntegrityFailure.

    The grace period is 1 s here, so replaced blobs really are unlinked while readers stream
    them (what keeps those reads whole is that every blob of the window is open before the status
    line); it also keeps the 2 GB written from piling up on disk."""
    server = Server(tmp_path / "data", extra_env={"SEALBOX_BLOB_GRACE_SECS": "1"})
    try:
        _race_reads_against_overwrites(server)
    finally:
        server.stop()
    assert _integrity_failures_audited(server) == 0


def _race_reads_against_overwrites(server):
    s3 = server.client()
    s3.create_bucket(Bucket="readrace")
    rnd = random.Random(3)
    # Four distinct versions; each part differs between versions, so a body spliced from two
    # versions matches none of them.
    versions = [[rnd.randbytes(5 * MiB), rnd.randbytes(5 * MiB), rnd.randbytes(64 * 1024 + v)] for v in range(4)]
    whole = {b"".join(p) for p in versions}
    _multipart_put(s3, "readrace", "obj", versions[0], **KMS)
    stop = threading.Event()
    bad, reads = [], []

    def reader():
        c = server.client()
        while not stop.is_set():
            try:
                resp = c.get_object(Bucket="readrace", Key="obj")
                body = resp["Body"].read()
            except (ClientError, BotoCoreError) as e:
                bad.append(repr(e))
                continue
            if body not in whole:
                bad.append(f"body of {len(body)} bytes (Content-Length {resp['ContentLength']}) is no written version")
            reads.append(1)
            # Leave the writers some CPU (two cores): the race needs readers mid-body, not flat out.
            stop.wait(random.uniform(0, 0.15))

    def writer(first):
        w = server.client()
        for i in range(first, 200, 4):
            _multipart_put(w, "readrace", "obj", versions[(i + 1) % len(versions)], **KMS)

    readers = [threading.Thread(target=reader) for _ in range(16)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=240)
    stop.set()
    for t in readers:
        t.join(timeout=120)
    assert bad == [], f"{len(bad)} bad reads of {len(reads) + len(bad)}: {bad[:3]}"
    assert len(reads) >= 16
    assert _metric(server, "sealbox_object_integrity_failures_total") == 0
    assert _metric(server, "sealbox_blobs_removed_total") > 0  # replaced blobs went during the reads


def test_replaced_blobs_wait_for_the_grace_period_then_go(tmp_path):
    """Deferred deletion: the replaced object's blobs are queued in the same transaction that
    replaces the record, stay on disk for the grace period, and the collector removes them."""
    server = Server(tmp_path / "data")
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="grace")
        s3.put_object(Bucket="grace", Key="k", Body=b"first")
        first = _referenced_blobs(server.data)
        s3.put_object(Bucket="grace", Key="k", Body=b"second")
        assert s3.get_object(Bucket="grace", Key="k")["Body"].read() == b"second"
        # Default grace (60 s): the old blob is still on disk, and queued in meta.db.
        assert first <= _blob_files(server.data)
        db = sqlite3.connect(f"file:{server.data / 'meta.db'}?mode=ro", uri=True)
        queued = {b for (b,) in db.execute("SELECT blob FROM blob_pending_deletion")}
        db.close()
        assert queued == first
    finally:
        server.stop()
    # Restarted with a 1 s grace (no reader survives a restart: the start-up sweep removes the
    # queued blob at once), then overwrite, delete, abort and complete with unused parts.
    server = Server(tmp_path / "data", extra_env={"SEALBOX_BLOB_GRACE_SECS": "1"})
    try:
        assert _blob_files(server.data) == _referenced_blobs(server.data)
        s3 = server.client()
        for i in range(5):
            s3.put_object(Bucket="grace", Key="k", Body=os.urandom(1000 + i))
        s3.put_object(Bucket="grace", Key="gone", Body=b"x")
        s3.delete_object(Bucket="grace", Key="gone")
        up = s3.create_multipart_upload(Bucket="grace", Key="mp")
        parts = []
        for n in (1, 2, 3):
            r = s3.upload_part(Bucket="grace", Key="mp", UploadId=up["UploadId"], PartNumber=n,
                               Body=os.urandom(5 * MiB if n < 3 else 100))
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        # Part 2 is uploaded again (replacing the first one) and part 3 is left out of the object.
        r = s3.upload_part(Bucket="grace", Key="mp", UploadId=up["UploadId"], PartNumber=2,
                           Body=os.urandom(100))
        s3.complete_multipart_upload(Bucket="grace", Key="mp", UploadId=up["UploadId"], MultipartUpload={
            "Parts": [parts[0], {"PartNumber": 2, "ETag": r["ETag"]}]})
        aborted = s3.create_multipart_upload(Bucket="grace", Key="ab")
        s3.upload_part(Bucket="grace", Key="ab", UploadId=aborted["UploadId"], PartNumber=1, Body=b"y")
        s3.abort_multipart_upload(Bucket="grace", Key="ab", UploadId=aborted["UploadId"])
        deadline = time.time() + 60
        while _blob_files(server.data) != _referenced_blobs(server.data):
            assert time.time() < deadline, (
                f"{len(_blob_files(server.data) - _referenced_blobs(server.data))} replaced blobs still on disk")
            time.sleep(0.2)
        db = sqlite3.connect(f"file:{server.data / 'meta.db'}?mode=ro", uri=True)
        assert db.execute("SELECT COUNT(*) FROM blob_pending_deletion").fetchone()[0] == 0
        db.close()
        assert len(_referenced_blobs(server.data)) == 3  # k, and mp's two parts
        assert s3.get_object(Bucket="grace", Key="mp")["ContentLength"] == 5 * MiB + 100
    finally:
        server.stop()


def test_blobs_no_record_took_are_swept_while_running(tmp_path):
    """The periodic orphan sweep: a blob whose request died between writing it and committing its
    record has a write intent; once older than the orphan age it is removed while the server runs,
    found through the intents alone. A stray file nobody recorded (only a crash makes those) is
    not looked for while running; the start-up sweep removes it."""
    server = Server(tmp_path / "data", extra_env={"SEALBOX_BLOB_GRACE_SECS": "1", "SEALBOX_ORPHAN_AGE_SECS": "1"})
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="orphans")
        s3.put_object(Bucket="orphans", Key="kept", Body=b"kept")
        kept = _referenced_blobs(server.data)
        # What an interrupted PUT leaves: a sealed blob file and its intent, no record.
        orphan, stray = "ab" + "0" * 30, "cd" + "0" * 30
        for blob in (orphan, stray):
            path = server.data / "blobs" / blob[:2] / blob
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(100))
        db = sqlite3.connect(server.data / "meta.db", timeout=30)
        with db:
            db.execute("INSERT INTO blob_write_intents (blob, created_ms) VALUES (?, ?)",
                       (orphan, int(time.time() * 1000)))
        db.close()
        deadline = time.time() + 60
        while orphan in _blob_files(server.data):
            assert time.time() < deadline, "the orphan was not swept"
            time.sleep(0.2)
        assert _metric(server, "sealbox_blob_orphans_total") == 1
        assert _blob_files(server.data) == kept | {stray}
        server.restart()
        assert _blob_files(server.data) == kept
        assert server.client().get_object(Bucket="orphans", Key="kept")["Body"].read() == b"kept"
    finally:
        server.stop()
