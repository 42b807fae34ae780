"""The web console at /console: a real browser (Debian's Chromium driven by Selenium through
chromedriver) for the user's path, plain `requests` for the attacks (CSRF, cross-site, expired or
revoked sessions, brute force). Every console action is a signed API call through the router, so
the assertions look at the API's own effects (boto3) and at the audit trail."""

import json
import os
import pathlib
import shutil
import tempfile
import time

import pytest
import requests

from conftest import Server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

ADMIN_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
READ_ONLY_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow",
    "Action": ["s3:Get*", "s3:List*", "kms:List*", "kms:Describe*", "kms:Get*", "iam:Get*", "iam:List*",
               "cloudtrail:LookupEvents"],
    "Resource": "*",
}]})


def make_user(srv, name, policy):
    iam = srv.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def console_url(srv, tls=False):
    return f"https://127.0.0.1:{srv.tls_port}/console" if tls else f"http://127.0.0.1:{srv.port}/console"


def sign_in(srv, access_key, secret, tls=False):
    """A requests session signed in to the console; returns (session, csrf token, response)."""
    s = requests.Session()
    if tls:
        s.trust_env = False  # a CA bundle named in the environment would override ours
        s.verify = str(srv.data / "tls" / "ca.pem")
    r = s.post(console_url(srv, tls) + "/api/signin", json={"accessKeyId": access_key, "secretAccessKey": secret})
    assert r.status_code == 200, r.text
    return s, r.json()["csrfToken"], r


def audit_text(srv):
    return "\n".join(p.read_text() for p in sorted((srv.data / "audit").glob("*.jsonl")))


def audit_events(srv):
    out = []
    for line in audit_text(srv).splitlines():
        doc = json.loads(line)
        out.append(doc.get("record", doc))
    return out


# ---------- attacks with plain requests ----------


def test_cross_site_post_without_csrf_token_is_refused(server):
    kms = server.client("kms")
    before = len(kms.list_keys()["Keys"])
    s, csrf, _ = sign_in(server, server.access_key, server.secret_key)
    base = console_url(server)
    headers = {"X-Amz-Target": "TrentService.CreateKey", "Content-Type": "application/x-amz-json-1.1"}
    # What a forged form or fetch from another site could send: the cookie, but no token.
    r = s.post(base + "/api/kms", data="{}", headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "InvalidCsrfToken", r.text
    r = s.post(base + "/api/kms", data="{}", headers=dict(headers, **{"X-CSRF-Token": csrf[:-1] + "x"}))
    assert r.status_code == 403 and r.json()["error"] == "InvalidCsrfToken"
    r = s.put(base + "/api/s3/forged-bucket")
    assert r.status_code == 403 and r.json()["error"] == "InvalidCsrfToken"
    # Even with the token, a request a browser marks as coming from another site is refused.
    r = s.post(base + "/api/kms", data="{}", headers=dict(headers, **{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}))
    assert r.status_code == 403 and r.json()["error"] == "CrossSiteRequest"
    r = s.post(base + "/api/kms", data="{}", headers=dict(headers, **{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}))
    assert r.status_code == 403 and r.json()["error"] == "CrossSiteRequest"
    r = s.get(base + "/api/s3/", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert len(kms.list_keys()["Keys"]) == before, "no refused request created a key"
    assert "forged-bucket" not in [b["Name"] for b in server.client().list_buckets()["Buckets"]]
    # The page's own request (same origin, with the token) works.
    r = s.post(base + "/api/kms", data="{}", headers=dict(headers, **{"X-CSRF-Token": csrf, "Origin": f"http://127.0.0.1:{server.port}"}))
    assert r.status_code == 200, r.text
    assert len(kms.list_keys()["Keys"]) == before + 1
    # Sign-in itself only takes JSON (a cross-site HTML form cannot send it without a preflight).
    r = requests.post(base + "/api/signin", data={"accessKeyId": server.access_key, "secretAccessKey": server.secret_key})
    assert r.status_code == 415


def test_session_cookie_attributes_and_https(server):
    _, _, r = sign_in(server, server.access_key, server.secret_key)
    cookie = r.headers["Set-Cookie"]
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="):
        assert attr in cookie, cookie
    assert "Secure" not in cookie
    s, _, r = sign_in(server, server.access_key, server.secret_key, tls=True)
    assert "Secure" in r.headers["Set-Cookie"]
    assert s.get(console_url(server, True) + "/api/session").status_code == 200
    page = requests.get(console_url(server) + "/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"


def test_session_expiry_idle_and_absolute(tmp_path):
    srv = Server(tmp_path / "data", extra_args=["--console-idle-timeout-secs", "2", "--console-session-max-secs", "4"])
    try:
        base = console_url(srv)
        idle, _, _ = sign_in(srv, srv.access_key, srv.secret_key)
        assert idle.get(base + "/api/s3/").status_code == 200
        time.sleep(2.5)
        r = idle.get(base + "/api/s3/")
        assert r.status_code == 401 and r.json()["error"] == "SessionExpired"
        assert "Max-Age=0" in r.headers["Set-Cookie"]
        busy, _, _ = sign_in(srv, srv.access_key, srv.secret_key)
        started = time.monotonic()
        statuses = []
        while time.monotonic() - started < 5.5:
            statuses.append(busy.get(base + "/api/session").status_code)
            time.sleep(0.5)
        # Used every half second (never idle), yet it ends at the absolute limit and stays ended.
        assert statuses[0] == 200 and statuses[-1] == 401, statuses
        assert statuses == sorted(statuses), statuses
    finally:
        srv.stop()


def test_signout_and_revoked_key_end_sessions(server):
    key_id, secret = make_user(server, "revoked", ADMIN_POLICY)
    base = console_url(server)
    s, csrf, _ = sign_in(server, key_id, secret)
    assert s.get(base + "/api/s3/").status_code == 200
    server.client("iam").delete_access_key(UserName="revoked", AccessKeyId=key_id)
    r = s.get(base + "/api/s3/")
    assert r.status_code == 401, "a deleted access key ends its console sessions"
    s, csrf, _ = sign_in(server, server.access_key, server.secret_key)
    cookie = s.cookies.get("sealbox_console")
    assert s.post(base + "/api/signout", headers={"X-CSRF-Token": csrf}).status_code == 200
    replay = requests.get(base + "/api/s3/", cookies={"sealbox_console": cookie})
    assert replay.status_code == 401, "a signed-out session token is dead"


def test_signin_failures_are_throttled_and_audited(server):
    base = console_url(server)
    for _ in range(10):
        r = requests.post(base + "/api/signin", json={"accessKeyId": server.access_key, "secretAccessKey": "wrong"})
        assert r.status_code == 401 and r.json()["error"] == "SignInFailed"
    r = requests.post(base + "/api/signin", json={"accessKeyId": server.access_key, "secretAccessKey": server.secret_key})
    assert r.status_code == 429, "the right secret is not even checked once an address is throttled"
    failures = [e for e in audit_events(server) if e.get("eventName") == "ConsoleLogin"]
    assert failures and all(e["responseElements"]["ConsoleLogin"] == "Failure" for e in failures)
    assert failures[0]["eventSource"] == "signin.amazonaws.com"
    assert failures[0]["userIdentity"]["accessKeyId"] == server.access_key


def test_console_actions_run_as_the_user_through_policy_and_audit(server):
    key_id, secret = make_user(server, "reader", READ_ONLY_POLICY)
    server.client().create_bucket(Bucket="shared")
    s, csrf, _ = sign_in(server, key_id, secret)
    base = console_url(server)
    assert s.get(base + "/api/s3/").status_code == 200
    r = s.put(base + "/api/s3/not-allowed", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    r = s.post(base + "/api/kms", data="{}", headers={"X-CSRF-Token": csrf, "X-Amz-Target": "TrentService.CreateKey"})
    assert r.status_code == 400 and "AccessDeniedException" in r.text
    denied = [e for e in audit_events(server) if e.get("errorCode", "").startswith("AccessDenied")]
    assert {e["eventName"] for e in denied} >= {"CreateBucket", "CreateKey"}
    for e in denied:
        assert e["userIdentity"]["userName"] == "reader"
        assert e["userAgent"].startswith("sealbox-console/")
    # Object bytes come back as a sandboxed download, never as a page of the console's origin.
    server.client().put_object(Bucket="shared", Key="x.html", Body=b"<script>alert(1)</script>", ContentType="text/html")
    r = s.get(base + "/api/s3/shared/x.html")
    assert r.status_code == 200 and r.content == b"<script>alert(1)</script>"
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # A path-style request to a bucket named "console" is signed: it is S3's, not the console's.
    s3 = server.client()
    s3.create_bucket(Bucket="console")
    s3.put_object(Bucket="console", Key="api/signin", Body=b"object, not a sign-in")
    assert s3.get_object(Bucket="console", Key="api/signin")["Body"].read() == b"object, not a sign-in"


def test_material_version_and_bucket_usage_headers(server):
    s3, kms = server.client(), server.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="versions")
    s3.put_object(Bucket="versions", Key="old", Body=b"a" * 10, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    kms.rotate_key_on_demand(KeyId=key)
    s3.put_object(Bucket="versions", Key="new", Body=b"b" * 5, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    s3.put_object(Bucket="versions", Key="s3", Body=b"c")
    version = lambda k: s3.head_object(Bucket="versions", Key=k)["ResponseMetadata"]["HTTPHeaders"]["x-sealbox-kms-key-version"]
    assert (version("old"), version("new"), version("s3")) == ("1", "2", "1")
    assert s3.get_object(Bucket="versions", Key="new")["ResponseMetadata"]["HTTPHeaders"]["x-sealbox-kms-key-version"] == "2"
    rotations = kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert len(rotations) == 2
    head = s3.head_bucket(Bucket="versions")["ResponseMetadata"]["HTTPHeaders"]
    assert (head["x-sealbox-object-count"], head["x-sealbox-bytes-used"]) == ("3", "16")


# ---------- the browser ----------


def _browser(download_dir):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="sealbox-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver, profile


class Page:
    """Small helpers over a Selenium driver for the console's pages."""

    def __init__(self, driver, base, shots):
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        self.d, self.base, self.shots, self.By = driver, base, shots, By
        # Pages re-render after changes: an element found a moment ago may be gone; look again.
        self.wait = WebDriverWait(driver, 20, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
        self.sources = []

    def find(self, css):
        return self.wait.until(lambda d: d.find_element(self.By.CSS_SELECTOR, css))

    def until_text(self, css, fragment):
        self.wait.until(lambda d: any(fragment in e.text for e in d.find_elements(self.By.CSS_SELECTOR, css)),
                        f"{fragment!r} in {css}")
        return self.d.find_element(self.By.CSS_SELECTOR, css).text

    def go(self, hash_path, page):
        self.d.get(self.base + "/#/" + hash_path)
        self.find(f"#page-{page}[data-loaded]")

    def shot(self, name):
        time.sleep(0.3)  # let late cells settle for the picture (not an assertion)
        self.d.save_screenshot(str(self.shots / f"{name}.png"))
        self.sources.append(self.d.page_source)

    def select(self, css, value):
        from selenium.webdriver.support.ui import Select
        Select(self.find(css)).select_by_value(value)

    def sign_in(self, key_id, secret):
        self.d.get(self.base + "/")
        self.find("#signin-access-key").send_keys(key_id)
        self.find("#signin-secret").send_keys(secret)
        self.find("#signin-submit").click()
        self.find("#page-buckets[data-loaded]")


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver, profile = _browser(downloads)
    yield driver, downloads
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_console_in_a_real_browser(server, browser, tmp_path):
    driver, downloads = browser
    shots = pathlib.Path(os.environ.get("SEALBOX_CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    admin_key, admin_secret = make_user(server, "console-admin", ADMIN_POLICY)
    reader_key, reader_secret = make_user(server, "console-reader", READ_ONLY_POLICY)
    p = Page(driver, console_url(server), shots)

    # Sign in (an IAM user with an admin policy: its secret must appear nowhere below).
    p.sign_in(admin_key, admin_secret)
    assert "console-admin" in p.find("#who").text

    # A bucket with an SSE-KMS default under a new key.
    p.find("#bucket-create-open").click()
    p.find("#new-bucket-name").send_keys("photos")
    p.select("#new-bucket-sse", "aws:kms")
    p.select("#new-bucket-key", "__new__")
    p.find("#new-bucket-key-alias").send_keys("photos")
    p.find("#new-bucket-bucket-key").click()
    p.find("#new-bucket-submit").click()
    p.until_text("tr[data-bucket=photos] td.enc-mode", "SSE-KMS")
    assert p.until_text("tr[data-bucket=photos] td.enc-key", "alias/photos") == "alias/photos"
    assert p.find("tr[data-bucket=photos] td.enc-bucket-key").text == "on"
    enc = server.client().get_bucket_encryption(Bucket="photos")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and enc["BucketKeyEnabled"]

    # Upload a file (the bucket default applies), and see how it is sealed.
    upload = tmp_path / "holiday.txt"
    body = b"sealed by the console\n" * 5000
    upload.write_bytes(body)
    p.go("objects/photos", "objects")
    p.find("#upload-file").send_keys(str(upload))
    p.find("#upload-submit").click()
    p.until_text("#objects-message", "Uploaded holiday.txt")
    p.until_text("tr[data-object='holiday.txt'] td.sse", "SSE-KMS")
    p.until_text("tr[data-object='holiday.txt'] td.kms-key", "alias/photos")
    assert p.find("tr[data-object='holiday.txt'] td.key-version").text == "1"
    assert server.client().get_object(Bucket="photos", Key="holiday.txt")["Body"].read() == body
    p.shot("objects")

    # Download works while the key is enabled...
    p.find("tr[data-object='holiday.txt'] button.download").click()
    p.until_text("#objects-message", "Downloading holiday.txt")
    p.wait.until(lambda d: (downloads / "holiday.txt").exists() and (downloads / "holiday.txt").stat().st_size == len(body))
    assert (downloads / "holiday.txt").read_bytes() == body

    # ...then disable the key on the Keys page and see the download refused.
    p.go("keys", "keys")
    p.shot("keys")
    key_id = server.client("kms").describe_key(KeyId="alias/photos")["KeyMetadata"]["KeyId"]
    p.find(f"tr[data-key-id='{key_id}']").click()
    p.find("#page-key[data-loaded]")
    assert p.find("#key-materials tr[data-version='1']")
    p.find("#key-disable").click()
    p.until_text("#key-facts .key-state", "Disabled")
    p.shot("key")
    p.go("objects/photos", "objects")
    p.find("tr[data-object='holiday.txt'] button.download").click()
    refused = p.until_text("#objects-message", "Download refused")
    assert "KMS.DisabledException" in refused, refused

    # The audit trail shows all of it, as this user.
    p.go("audit", "audit")
    p.find("#audit-user").send_keys("console-admin")
    p.find("#audit-search").click()
    p.until_text("#audit-table", "DisableKey")
    names = {e.text for e in driver.find_elements(p.By.CSS_SELECTOR, "#audit-table td.event-name")}
    assert {"ConsoleLogin", "CreateBucket", "CreateKey", "CreateAlias", "PutBucketEncryption", "GenerateDataKey",
            "DisableKey"} <= names, names
    mine = [e for e in audit_events(server) if e.get("eventName") in ("CreateBucket", "DisableKey", "CreateKey")]
    assert mine and all(e["userIdentity"]["userName"] == "console-admin" for e in mine)
    assert all(e["userAgent"].startswith("sealbox-console/") for e in mine if e.get("eventType") != "ApiCallIntent")
    driver.find_elements(p.By.CSS_SELECTOR, "#audit-table tr.audit-event")[0].click()
    assert '"eventName"' in p.find("#audit-detail").text
    p.find("#audit-verify").click()
    p.until_text("#audit-verify-status", "verified")
    p.shot("audit")

    # Users: a new access key's secret is shown once.
    p.go("users", "users")
    p.find("tr[data-user='console-reader'] button.create-access-key").click()
    shown_secret = p.find("#new-secret-value").text
    assert len(shown_secret) >= 30
    p.shot("users")
    p.find("#new-secret-done").click()
    assert not driver.find_elements(p.By.ID, "new-secret")

    p.go("health", "health")
    p.until_text("#health-requests", "s3")
    assert p.find("#health-version").text
    p.shot("health")
    p.go("buckets", "buckets")
    p.until_text("tr[data-bucket=photos] td.obj-count", "1")
    p.shot("buckets")

    # The signed-in user's secret is in no page, cookie, browser storage, server log or audit record.
    cookies = json.dumps(driver.get_cookies())
    storage = driver.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert all(c["httpOnly"] for c in driver.get_cookies() if c["name"] == "sealbox_console")
    for where, text in [("pages", "\n".join(p.sources)), ("cookies", cookies), ("storage", storage),
                        ("server log", server.logs()), ("audit trail", audit_text(server))]:
        assert admin_secret not in text, f"the secret leaked into the {where}"

    # Sign out: back to the sign-in form, and the old session is gone.
    p.find("#signout").click()
    p.find("#signin-form")
    assert driver.execute_script("return fetch('/console/api/session').then(r => r.status)") == 401

    # A read-only user sees the buckets but cannot create or delete.
    p.sign_in(reader_key, reader_secret)
    p.find("tr[data-bucket=photos]")
    p.find("#bucket-create-open").click()
    p.find("#new-bucket-name").send_keys("forbidden")
    p.find("#new-bucket-submit").click()
    assert "AccessDenied" in p.until_text("#new-bucket-error", "AccessDenied")
    p.go("objects/photos", "objects")
    delete = p.find("tr[data-object='holiday.txt'] button.delete")
    delete.click()
    delete.click()
    assert "AccessDenied" in p.until_text("#objects-message", "AccessDenied")
    buckets = [b["Name"] for b in server.client().list_buckets()["Buckets"]]
    assert "forbidden" not in buckets
    assert server.client().head_object(Bucket="photos", Key="holiday.txt")["ContentLength"] == len(body)
    p.shot("read-only")


def _peak_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_uploads_and_downloads_stream_through_the_console(server):
    """256 MiB up and down through /console/api/s3 while the server's peak memory stays far below
    the object's size: nothing buffers the whole body."""
    size, chunk = 256 * 1024 * 1024, b"\xa5" * (1024 * 1024)
    server.client().create_bucket(Bucket="big")
    s, csrf, _ = sign_in(server, server.access_key, server.secret_key)
    url = console_url(server) + "/api/s3/big/blob.bin"
    baseline = _peak_rss_mib(server.proc.pid)

    class Body:
        """A streamed body of known length (as a browser sends a File: Content-Length, not chunked)."""

        def __len__(self):
            return size

        def __iter__(self):
            for _ in range(size // len(chunk)):
                yield chunk

    r = s.put(url, data=Body(), headers={"X-CSRF-Token": csrf, "x-amz-server-side-encryption": "aws:kms"})
    assert r.status_code == 200, r.text
    got = 0
    with s.get(url, stream=True) as r:
        assert r.status_code == 200
        for part in r.iter_content(1024 * 1024):
            assert part == chunk[:len(part)]
            got += len(part)
    assert got == size
    assert server.client().head_object(Bucket="big", Key="blob.bin")["ContentLength"] == size
    peak = _peak_rss_mib(server.proc.pid)
    assert peak - baseline < 96, f"server peak RSS grew by {peak - baseline:.0f} MiB for a 256 MiB object"
