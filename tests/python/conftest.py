"""Shared fixtures: the real sealbox binary on free ports with a temp data dir, and clients."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

import boto3
import pytest
import requests
from botocore.config import Config

# Never let a developer's own AWS configuration leak into the tests.
_EMPTY = tempfile.NamedTemporaryFile(prefix="sealbox-aws-", delete=False)
os.environ["AWS_CONFIG_FILE"] = _EMPTY.name
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = _EMPTY.name
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)

SEALBOX_BIN = os.environ.get("SEALBOX_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "/work/cache/target"), "debug", "sealbox"
)
MARKER = b"SEALBOX-PLAINTEXT-MARKER-0123456789"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A sealbox process on free ports with HTTP and HTTPS, in its own data dir."""

    def __init__(self, data, extra_env=None, extra_args=()):
        self.data = pathlib.Path(data)
        self.port = _free_port()
        self.tls_port = _free_port()
        self.log = open(self.data.parent / f"server-{self.port}.log", "wb")
        env = dict(os.environ)
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            [SEALBOX_BIN, "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}",
             "--tls", "auto", "--listen-tls", f"127.0.0.1:{self.tls_port}", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(self.logs())
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not start:\n" + self.logs())
        creds = json.loads((self.data / "root-credentials.json").read_text())
        self.access_key = creds["access_key_id"]
        self.secret_key = creds["secret_access_key"]

    def logs(self):
        self.log.flush()
        return (self.data.parent / f"server-{self.port}.log").read_text(errors="replace")

    def client(self, service="s3", tls=False, **kw):
        endpoint = f"https://127.0.0.1:{self.tls_port}" if tls else f"http://127.0.0.1:{self.port}"
        return boto3.client(
            service, endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=kw.get("access_key", self.access_key),
            aws_secret_access_key=kw.get("secret_key", self.secret_key),
            verify=str(self.data / "tls" / "ca.pem") if tls else None,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def restart(self, extra_env=None, kill=False):
        """Stops the process and starts a new one on the same data dir."""
        self.stop(kill=kill)
        fresh = Server(self.data, extra_env)
        self.__dict__.update(fresh.__dict__)

    def cli(self, *args, tls=False, check=True):
        """Runs the aws CLI against this server; returns the completed process."""
        endpoint = f"https://127.0.0.1:{self.tls_port}" if tls else f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION="us-east-1")
        cmd = ["aws", "--endpoint-url", endpoint]
        if tls:
            cmd += ["--ca-bundle", str(self.data / "tls" / "ca.pem")]
        proc = subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {proc.stderr}")
        return proc

    def stop(self, kill=False):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data")
    yield srv
    srv.stop()




@pytest.fixture
def s3(server):
    return server.client()


@pytest.fixture
def kms(server):
    return server.client("kms")


_counter = [0]


@pytest.fixture
def bucket(s3):
    _counter[0] += 1
    name = f"test-bucket-{os.getpid()}-{_counter[0]}"
    s3.create_bucket(Bucket=name)
    return name
