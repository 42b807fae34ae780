// sealbox console. Plain JavaScript, no dependencies, no build step.
//
// Every action is a real AWS API call (S3 REST, KMS JSON, IAM query, CloudTrail LookupEvents)
// sent to /console/api/<api>; the server signs it with the signed-in user's key and runs it
// through the same router as any client, so policies and the audit trail apply unchanged. This
// page never holds a secret: only the session cookie (HttpOnly, invisible here) and the CSRF
// token that must accompany every change.
//
// All text from the server is inserted with textContent (never innerHTML): object keys, policy
// documents and audit records are data, not markup.
"use strict";

const state = { session: null, keyNames: new Map(), healthTimer: null, lastTotals: null, flash: null };

// ---------- DOM helpers ----------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (name === "class") node.className = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const $ = (sel) => document.querySelector(sel);

function table(id, headers) {
  const body = el("tbody");
  const t = el("table", { id }, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))), body);
  return { table: t, body };
}

function fmtBytes(n) {
  if (n === null || n === undefined || n === "") return "";
  n = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function fmtTime(t) {
  if (t === null || t === undefined || t === "") return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function fmtDuration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

const SSE_NAMES = { "AES256": "SSE-S3", "aws:kms": "SSE-KMS", "aws:kms:dsse": "DSSE-KMS" };

function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" }[c]));
}

function showError(node, err) {
  node.className = "error";
  node.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err && err.message || err);
}
function showOk(node, text) {
  node.className = "success";
  node.textContent = text;
}

// A button that asks "really?" on the first click and acts on the second (no modal dialogs).
function confirmButton(label, confirmLabel, action, attrs) {
  let armed = false, timer = null;
  const b = el("button", Object.assign({ type: "button", class: "danger", text: label }, attrs || {}));
  b.addEventListener("click", async () => {
    if (!armed) {
      armed = true; b.textContent = confirmLabel;
      timer = setTimeout(() => { armed = false; b.textContent = label; }, 5000);
      return;
    }
    clearTimeout(timer); armed = false; b.textContent = label; b.disabled = true;
    try { await action(); } finally { b.disabled = false; }
  });
  return b;
}

// ---------- API calls ----------

class ApiError extends Error {
  constructor(status, code, message) { super(message || code); this.status = status; this.code = code || String(status); }
}

async function send(method, url, opts) {
  const o = opts || {};
  const headers = new Headers(o.headers || {});
  if (method !== "GET" && method !== "HEAD" && state.session) headers.set("X-CSRF-Token", state.session.csrfToken);
  const resp = await fetch(url, { method, headers, body: o.body, credentials: "same-origin", cache: "no-store" });
  if (resp.status === 401 && (resp.headers.get("content-type") || "").startsWith("application/json")) {
    const j = await resp.clone().json().catch(() => ({}));
    if (j.error === "SessionExpired") {
      showSignin("Your session has ended. Sign in again.");
      throw new ApiError(401, "SessionExpired", j.message);
    }
  }
  return resp;
}

function xmlDoc(text) { return new DOMParser().parseFromString(text, "application/xml"); }
function xmlText(node, tag) { const n = node && node.getElementsByTagName(tag)[0]; return n ? n.textContent : null; }
function xmlAll(node, tag) { return node ? Array.from(node.getElementsByTagName(tag)) : []; }

function objectPath(bucket, key) {
  let p = "/" + encodeURIComponent(bucket);
  if (key !== undefined) p += "/" + key.split("/").map(encodeURIComponent).join("/");
  return p;
}

async function s3(method, path, opts) {
  const o = opts || {};
  const resp = await send(method, "/console/api/s3" + path + (o.query ? "?" + o.query : ""), o);
  const text = method === "HEAD" ? "" : await resp.text();
  if (!resp.ok) {
    const doc = text ? xmlDoc(text) : null;
    const code = xmlText(doc, "Code") || (resp.status === 404 ? "NotFound" : resp.status === 403 ? "AccessDenied" : String(resp.status));
    throw new ApiError(resp.status, code, xmlText(doc, "Message") || resp.statusText);
  }
  return { resp, text, xml: text ? xmlDoc(text) : null };
}

async function kms(op, payload) {
  const resp = await send("POST", "/console/api/kms", {
    headers: { "X-Amz-Target": "TrentService." + op, "Content-Type": "application/x-amz-json-1.1" },
    body: JSON.stringify(payload || {}),
  });
  const j = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, String(j.__type || j.error || resp.status).split("#").pop(), j.message || j.Message || "");
  return j;
}

async function iam(action, params) {
  const body = new URLSearchParams(Object.assign({ Action: action, Version: "2010-05-08" }, params || {}));
  const resp = await send("POST", "/console/api/iam", {
    headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: body.toString(),
  });
  const doc = xmlDoc(await resp.text());
  if (!resp.ok) throw new ApiError(resp.status, xmlText(doc, "Code"), xmlText(doc, "Message"));
  return doc;
}

async function lookupEvents(payload) {
  const resp = await send("POST", "/console/api/cloudtrail", {
    headers: { "Content-Type": "application/x-amz-json-1.1" },
    body: JSON.stringify(payload),
  });
  const j = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, String(j.__type || j.error || resp.status).split("#").pop(), j.message || "");
  return j;
}

async function consoleJson(path) {
  const resp = await send("GET", "/console/api/" + path);
  const j = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, j.error, j.message);
  return j;
}

// Runs `fn` over `items` with at most `limit` calls in flight.
async function eachLimited(items, limit, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) { const i = next++; await fn(items[i], i); }
  });
  await Promise.all(workers);
}

// ---------- KMS key names (aliases), used on several pages ----------

async function listAllKeys() {
  const keys = [];
  let marker;
  do {
    const page = await kms("ListKeys", marker ? { Marker: marker } : {});
    keys.push(...(page.Keys || []));
    marker = page.Truncated ? page.NextMarker : null;
  } while (marker);
  return keys;
}

async function listAllAliases() {
  const aliases = [];
  let marker;
  do {
    const page = await kms("ListAliases", marker ? { Marker: marker } : {});
    aliases.push(...(page.Aliases || []));
    marker = page.Truncated ? page.NextMarker : null;
  } while (marker);
  return aliases;
}

async function loadKeyNames() {
  state.keyNames = new Map();
  try {
    for (const a of await listAllAliases()) {
      if (!a.TargetKeyId) continue;
      const list = state.keyNames.get(a.TargetKeyId) || [];
      list.push(a.AliasName);
      state.keyNames.set(a.TargetKeyId, list);
    }
  } catch (e) {
    // A user without kms:ListAliases still sees key ids.
  }
}

function keyIdOf(ref) {
  if (!ref) return "";
  const m = /:key\/(.+)$/.exec(ref);
  return m ? m[1] : ref;
}

function keyLabel(ref) {
  if (!ref) return "";
  if (ref.startsWith("alias/")) return ref;
  const aliasArn = /:(alias\/.+)$/.exec(ref);
  if (aliasArn) return aliasArn[1];
  const names = state.keyNames.get(keyIdOf(ref));
  return names && names.length ? names.join(", ") : keyIdOf(ref);
}

// A <select> of the keys the user may pick for SSE-KMS.
async function keySelect(id, withNew, current) {
  const select = el("select", { id });
  select.append(el("option", { value: "", text: "AWS managed key (aws/s3)" }));
  try {
    const keys = await listAllKeys();
    await eachLimited(keys, 4, async (k) => {
      try {
        const d = (await kms("DescribeKey", { KeyId: k.KeyId })).KeyMetadata;
        if (d.KeyManager === "AWS" || d.KeyState === "PendingDeletion") return;
        const label = keyLabel(k.KeyId);
        select.append(el("option", { value: d.Arn, text: label === k.KeyId ? k.KeyId : `${label} (${k.KeyId.slice(0, 8)})` }));
      } catch (e) { /* not allowed to describe: not offered */ }
    });
  } catch (e) { /* not allowed to list keys */ }
  if (withNew) select.append(el("option", { value: "__new__", text: "Create a new key…" }));
  if (current) {
    const match = Array.from(select.options).find((o) => o.value === current || keyIdOf(o.value) === keyIdOf(current));
    if (match) select.value = match.value;
    else { select.append(el("option", { value: current, text: keyLabel(current) })); select.value = current; }
  }
  return select;
}

// ---------- sign-in ----------

function showSignin(message) {
  state.session = null;
  clearInterval(state.healthTimer);
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#who").textContent = "";
  const main = $("#main");
  const keyInput = el("input", { id: "signin-access-key", autocomplete: "username", spellcheck: "false", required: true });
  const secretInput = el("input", { id: "signin-secret", type: "password", autocomplete: "current-password", required: true });
  const error = el("p", { id: "signin-error", class: "error" });
  const insecure = location.protocol === "http:" && !["localhost", "127.0.0.1", "[::1]"].includes(location.hostname);
  const form = el("form", { class: "panel signin", id: "signin-form" },
    el("h1", { text: "Sign in to sealbox" }),
    message ? el("p", { id: "signin-message", class: "muted", text: message }) : null,
    insecure ? el("p", { class: "warning", text: "This page is not served over HTTPS: the secret would cross the network in the clear. Use the HTTPS listener." }) : null,
    el("label", {}, "Access key ID", keyInput),
    el("label", {}, "Secret access key", secretInput),
    el("button", { type: "submit", class: "primary", id: "signin-submit", text: "Sign in" }),
    error,
    el("p", { class: "muted", text: "The secret is checked by the server and exchanged for a session; it is never stored in this browser." }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const body = JSON.stringify({ accessKeyId: keyInput.value.trim(), secretAccessKey: secretInput.value });
    secretInput.value = "";
    const resp = await fetch("/console/api/signin", {
      method: "POST", headers: { "Content-Type": "application/json" }, body, credentials: "same-origin", cache: "no-store",
    });
    const j = await resp.json().catch(() => ({}));
    if (!resp.ok) { error.textContent = j.message || "Sign-in failed."; return; }
    startSession(j);
    if (!location.hash || location.hash === "#/") location.hash = "#/buckets";
    else render();
  });
  main.replaceChildren(form);
  keyInput.focus();
}

function startSession(session) {
  state.session = session;
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  $("#who").textContent = session.userName ? `${session.userName} (${session.accessKeyId})` : `root (${session.accessKeyId})`;
}

async function signOut() {
  try { await send("POST", "/console/api/signout"); } catch (e) { /* ended anyway */ }
  location.hash = "";
  showSignin("You are signed out.");
}

// ---------- Buckets ----------

function encryptionXml(mode, keyArn, bucketKey) {
  const key = mode !== "AES256" && keyArn ? `<KMSMasterKeyID>${xmlEscape(keyArn)}</KMSMasterKeyID>` : "";
  return `<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule>` +
    `<ApplyServerSideEncryptionByDefault><SSEAlgorithm>${xmlEscape(mode)}</SSEAlgorithm>${key}</ApplyServerSideEncryptionByDefault>` +
    `<BucketKeyEnabled>${bucketKey ? "true" : "false"}</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`;
}

// Mode / key / bucket-key fields; `save(mode, keyArn, bucketKey)` applies them.
async function encryptionFields(prefix, current, withNewKey) {
  const mode = el("select", { id: prefix + "-sse" },
    el("option", { value: "AES256", text: "SSE-S3 (sealbox-managed key)" }),
    el("option", { value: "aws:kms", text: "SSE-KMS" }),
    el("option", { value: "aws:kms:dsse", text: "DSSE-KMS (two layers)" }));
  mode.value = current.mode || "AES256";
  const key = await keySelect(prefix + "-key", withNewKey, current.key);
  const alias = el("input", { id: prefix + "-key-alias", placeholder: "alias for the new key (optional)" });
  const bucketKey = el("input", { type: "checkbox", id: prefix + "-bucket-key", checked: !!current.bucketKey });
  const keyLabelNode = el("label", {}, "KMS key", key);
  const aliasLabel = el("label", {}, "New key alias", alias);
  const bkLabel = el("label", { class: "check" }, bucketKey, " S3 Bucket Key");
  const sync = () => {
    const kmsMode = mode.value !== "AES256";
    keyLabelNode.hidden = !kmsMode;
    bkLabel.hidden = mode.value !== "aws:kms";
    aliasLabel.hidden = !(kmsMode && key.value === "__new__");
  };
  mode.addEventListener("change", sync);
  key.addEventListener("change", sync);
  sync();
  // Resolves the chosen key (creating it when asked) to an ARN, or "" for the default.
  async function chosenKey(bucket) {
    if (mode.value === "AES256") return "";
    if (key.value !== "__new__") return key.value;
    const created = (await kms("CreateKey", { Description: `Default key of bucket ${bucket}` })).KeyMetadata;
    const name = alias.value.trim();
    if (name) await kms("CreateAlias", { AliasName: name.startsWith("alias/") ? name : "alias/" + name, TargetKeyId: created.KeyId });
    await loadKeyNames();
    return created.Arn;
  }
  return {
    nodes: [el("label", {}, "Default encryption", mode), keyLabelNode, aliasLabel, bkLabel],
    async values(bucket) { return { mode: mode.value, key: await chosenKey(bucket), bucketKey: mode.value === "aws:kms" && bucketKey.checked }; },
  };
}

async function bucketEncryption(name) {
  try {
    const { xml } = await s3("GET", objectPath(name), { query: "encryption" });
    return {
      mode: xmlText(xml, "SSEAlgorithm") || "AES256",
      key: xmlText(xml, "KMSMasterKeyID") || "",
      bucketKey: xmlText(xml, "BucketKeyEnabled") === "true",
    };
  } catch (e) {
    if (e.code === "ServerSideEncryptionConfigurationNotFoundError") return { mode: "AES256", key: "", bucketKey: false };
    throw e;
  }
}

async function pageBuckets(main) {
  const message = el("p", { id: "buckets-message" });
  const createPanel = el("div", { class: "panel", id: "bucket-create", hidden: true });
  main.append(el("h1", { text: "Buckets" }),
    el("div", { class: "actions" }, el("button", { type: "button", class: "primary", id: "bucket-create-open", text: "Create bucket", on: { click: () => openCreate() } })),
    createPanel, message);
  await loadKeyNames();
  async function openCreate() {
    const nameInput = el("input", { id: "new-bucket-name", placeholder: "bucket-name", spellcheck: "false" });
    const enc = await encryptionFields("new-bucket", { mode: "AES256" }, true);
    const error = el("p", { id: "new-bucket-error" });
    const submit = el("button", { type: "button", class: "primary", id: "new-bucket-submit", text: "Create" });
    submit.addEventListener("click", async () => {
      submit.disabled = true; error.textContent = "";
      const name = nameInput.value.trim();
      try {
        await s3("PUT", objectPath(name));
        const v = await enc.values(name);
        if (v.mode !== "AES256" || v.bucketKey) {
          await s3("PUT", objectPath(name), { query: "encryption", headers: { "Content-Type": "application/xml" }, body: encryptionXml(v.mode, v.key, v.bucketKey) });
        }
        createPanel.hidden = true;
        render();
      } catch (e) { showError(error, e); } finally { submit.disabled = false; }
    });
    createPanel.replaceChildren(el("h2", { text: "New bucket" }), el("div", { class: "row" }, el("label", {}, "Name", nameInput), enc.nodes, submit), error);
    createPanel.hidden = false;
    nameInput.focus();
  }
  const { xml } = await s3("GET", "/");
  const buckets = xmlAll(xml, "Bucket").map((b) => ({ name: xmlText(b, "Name"), created: xmlText(b, "CreationDate") }));
  const { table: t, body } = table("buckets-table", ["Name", "Default encryption", "KMS key", "Bucket key", "Objects", "Size", "Created", ""]);
  main.append(t);
  if (!buckets.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No buckets yet." })));
  for (const b of buckets) {
    const cells = {
      mode: el("td", { class: "enc-mode" }), key: el("td", { class: "enc-key" }), bk: el("td", { class: "enc-bucket-key" }),
      count: el("td", { class: "num obj-count" }), size: el("td", { class: "num obj-size" }),
    };
    const detail = el("tr", { class: "detail", hidden: true }, el("td", { colspan: 8 }));
    const row = el("tr", { "data-bucket": b.name },
      el("td", {}, el("a", { href: "#/objects/" + encodeURIComponent(b.name), text: b.name })),
      cells.mode, cells.key, cells.bk, cells.count, cells.size, el("td", { text: fmtTime(b.created) }),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "edit-encryption", text: "Encryption", on: { click: () => editEncryption(b.name, detail) } }),
        el("button", { type: "button", class: "edit-policy", text: "Policy", on: { click: () => editPolicy(b.name, detail) } })));
    body.append(row, detail);
    bucketEncryption(b.name).then((enc) => {
      cells.mode.textContent = SSE_NAMES[enc.mode] || enc.mode;
      cells.key.textContent = enc.mode === "AES256" ? "" : (enc.key ? keyLabel(enc.key) : "aws/s3");
      cells.bk.textContent = enc.mode === "aws:kms" ? (enc.bucketKey ? "on" : "off") : "";
    }).catch((e) => { cells.mode.textContent = e.code; });
    s3("HEAD", objectPath(b.name)).then(({ resp }) => {
      cells.count.textContent = resp.headers.get("x-sealbox-object-count") || "";
      cells.size.textContent = fmtBytes(resp.headers.get("x-sealbox-bytes-used"));
    }).catch((e) => { cells.count.textContent = e.code; });
  }
}

async function editEncryption(bucket, detail) {
  const cell = detail.firstChild;
  const current = await bucketEncryption(bucket).catch(() => ({ mode: "AES256" }));
  const enc = await encryptionFields("edit-bucket", current, true);
  const error = el("p", { id: "edit-encryption-error" });
  const save = el("button", { type: "button", class: "primary", id: "edit-encryption-save", text: "Save default encryption" });
  save.addEventListener("click", async () => {
    save.disabled = true;
    try {
      const v = await enc.values(bucket);
      await s3("PUT", objectPath(bucket), { query: "encryption", headers: { "Content-Type": "application/xml" }, body: encryptionXml(v.mode, v.key, v.bucketKey) });
      render();
    } catch (e) { showError(error, e); } finally { save.disabled = false; }
  });
  cell.replaceChildren(el("h2", { text: `Default encryption of ${bucket}` }), el("div", { class: "row" }, enc.nodes, save), error);
  detail.hidden = false;
}

async function editPolicy(bucket, detail) {
  const cell = detail.firstChild;
  let text = "";
  try { text = (await s3("GET", objectPath(bucket), { query: "policy" })).text; } catch (e) {
    if (e.code !== "NoSuchBucketPolicy") { cell.replaceChildren(el("p", { class: "error", text: `${e.code}: ${e.message}` })); detail.hidden = false; return; }
  }
  try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* keep as stored */ }
  const area = el("textarea", { id: "policy-text", rows: 14, spellcheck: "false" });
  area.value = text;
  const error = el("p", { id: "policy-error" });
  const save = el("button", { type: "button", class: "primary", id: "policy-save", text: "Save policy" });
  save.addEventListener("click", async () => {
    error.textContent = "";
    try {
      await s3("PUT", objectPath(bucket), { query: "policy", headers: { "Content-Type": "application/json" }, body: area.value });
      showOk(error, "Policy saved.");
    } catch (e) { showError(error, e); }
  });
  const del = confirmButton("Delete policy", "Really delete the policy?", async () => {
    try { await s3("DELETE", objectPath(bucket), { query: "policy" }); area.value = ""; showOk(error, "Policy deleted."); } catch (e) { showError(error, e); }
  }, { id: "policy-delete" });
  cell.replaceChildren(el("h2", { text: `Bucket policy of ${bucket}` }), area, el("div", { class: "actions" }, save, del), error);
  detail.hidden = false;
}

// ---------- Objects ----------

async function pageObjects(main, args, query) {
  const bucket = args[0];
  const prefix = query.get("prefix") || "";
  const link = (p) => "#/objects/" + encodeURIComponent(bucket) + (p ? "?prefix=" + encodeURIComponent(p) : "");
  const crumbs = el("p", { class: "crumbs" }, el("a", { href: "#/buckets", text: "Buckets" }), " / ", el("a", { href: link(""), text: bucket }));
  let acc = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    acc += part + "/";
    crumbs.append(" / ", el("a", { href: link(acc), text: part }));
  }
  const message = el("p", { id: "objects-message" });
  if (state.flash) { showOk(message, state.flash); state.flash = null; }
  main.append(el("h1", { text: `Objects in ${bucket}` }), crumbs, await uploadPanel(bucket, prefix, message), message);
  const { table: t, body } = table("objects-table", ["Key", "Size", "Last modified", "ETag", "SSE", "KMS key", "Key version", ""]);
  main.append(t);
  const more = el("button", { type: "button", id: "objects-more", text: "More…", hidden: true });
  main.append(more);
  let token = null;
  async function loadPage() {
    const q = new URLSearchParams({ "list-type": "2", delimiter: "/", prefix, "max-keys": "200" });
    if (token) q.set("continuation-token", token);
    const { xml } = await s3("GET", objectPath(bucket), { query: q.toString() });
    for (const p of xmlAll(xml, "CommonPrefixes")) {
      const name = xmlText(p, "Prefix");
      body.append(el("tr", { "data-prefix": name }, el("td", { colspan: 8 }, el("a", { href: link(name), text: "📁 " + name.slice(prefix.length) }))));
    }
    const objects = xmlAll(xml, "Contents").map((c) => ({
      key: xmlText(c, "Key"), size: xmlText(c, "Size"), modified: xmlText(c, "LastModified"), etag: xmlText(c, "ETag"),
    }));
    const rows = objects.map((o) => objectRow(bucket, o, message));
    body.append(...rows.map((r) => r.row));
    token = xmlText(xml, "IsTruncated") === "true" ? xmlText(xml, "NextContinuationToken") : null;
    more.hidden = !token;
    if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "Nothing here yet." })));
    await eachLimited(rows, 4, (r) => r.loadDetails());
  }
  more.addEventListener("click", () => loadPage().catch((e) => showError(message, e)));
  await loadKeyNames();
  await loadPage();
}

function objectRow(bucket, o, message) {
  const sse = el("td", { class: "sse" }), key = el("td", { class: "kms-key" }), version = el("td", { class: "key-version num" });
  const download = el("button", { type: "button", class: "download", text: "Download" });
  download.addEventListener("click", () => downloadObject(bucket, o, message));
  const del = confirmButton("Delete", "Really delete?", async () => {
    try { await s3("DELETE", objectPath(bucket, o.key)); row.remove(); showOk(message, `Deleted ${o.key}.`); } catch (e) { showError(message, e); }
  }, { class: "danger delete" });
  const row = el("tr", { "data-object": o.key },
    el("td", { class: "mono", text: o.key }), el("td", { class: "num", text: fmtBytes(o.size) }), el("td", { text: fmtTime(o.modified) }),
    el("td", { class: "mono etag", text: (o.etag || "").replace(/"/g, "") }), sse, key, version,
    el("td", { class: "actions" }, download, del));
  async function loadDetails() {
    try {
      const { resp } = await s3("HEAD", objectPath(bucket, o.key));
      const h = resp.headers;
      const mode = h.get("x-amz-server-side-encryption");
      sse.textContent = mode ? (SSE_NAMES[mode] || mode) : (h.get("x-amz-server-side-encryption-customer-algorithm") ? "SSE-C" : "");
      const keyArn = h.get("x-amz-server-side-encryption-aws-kms-key-id");
      key.textContent = keyArn ? keyLabel(keyArn) : "";
      if (keyArn) key.title = keyArn;
      version.textContent = h.get("x-sealbox-kms-key-version") || "";
    } catch (e) {
      sse.textContent = e.code === "InvalidRequest" || e.status === 400 ? "SSE-C" : e.code;
    }
  }
  return { row, loadDetails };
}

// Reads the first byte first (the data key is opened, so a disabled key or a denied kms:Decrypt
// shows here as an error), then lets the browser stream the object to disk.
async function downloadObject(bucket, o, message) {
  message.textContent = "";
  const path = objectPath(bucket, o.key);
  try {
    if (Number(o.size) > 0) await s3("GET", path, { headers: { Range: "bytes=0-0" } });
    else await s3("GET", path);
  } catch (e) {
    message.className = "error";
    message.textContent = `Download refused: ${e.code}: ${e.message}`;
    return;
  }
  const name = o.key.split("/").pop() || "object";
  const disposition = `attachment; filename*=UTF-8''${encodeURIComponent(name)}`;
  const a = el("a", { href: "/console/api/s3" + path + "?response-content-disposition=" + encodeURIComponent(disposition), download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  showOk(message, `Downloading ${o.key}.`);
}

async function uploadPanel(bucket, prefix, message) {
  const file = el("input", { type: "file", id: "upload-file" });
  const mode = el("select", { id: "upload-sse" },
    el("option", { value: "", text: "Bucket default" }),
    el("option", { value: "AES256", text: "SSE-S3" }),
    el("option", { value: "aws:kms", text: "SSE-KMS" }),
    el("option", { value: "aws:kms:dsse", text: "DSSE-KMS" }));
  const key = await keySelect("upload-key", false, null);
  const keyLabelNode = el("label", { hidden: true }, "KMS key", key);
  mode.addEventListener("change", () => { keyLabelNode.hidden = !mode.value.startsWith("aws:kms"); });
  const progress = el("progress", { id: "upload-progress", max: 1, value: 0, hidden: true });
  const status = el("span", { id: "upload-status" });
  const submit = el("button", { type: "button", class: "primary", id: "upload-submit", text: "Upload" });
  submit.addEventListener("click", () => {
    const f = file.files[0];
    if (!f) { status.textContent = "Choose a file first."; return; }
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", "/console/api/s3" + objectPath(bucket, prefix + f.name));
    xhr.setRequestHeader("X-CSRF-Token", state.session.csrfToken);
    xhr.setRequestHeader("Content-Type", f.type || "application/octet-stream");
    if (mode.value) xhr.setRequestHeader("x-amz-server-side-encryption", mode.value);
    if (mode.value.startsWith("aws:kms") && key.value) xhr.setRequestHeader("x-amz-server-side-encryption-aws-kms-key-id", key.value);
    progress.hidden = false; progress.value = 0; submit.disabled = true;
    status.className = ""; status.textContent = "Uploading…";
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) progress.value = e.loaded / e.total; });
    xhr.addEventListener("load", () => {
      submit.disabled = false;
      if (xhr.status >= 200 && xhr.status < 300) {
        progress.value = 1;
        state.flash = `Uploaded ${f.name}.`;
        render();
      } else if (xhr.status === 401) {
        showSignin("Your session has ended. Sign in again.");
      } else {
        const doc = xmlDoc(xhr.responseText || "<x/>");
        status.className = "error";
        status.textContent = `${xmlText(doc, "Code") || xhr.status}: ${xmlText(doc, "Message") || ""}`;
      }
    });
    xhr.addEventListener("error", () => { submit.disabled = false; status.className = "error"; status.textContent = "Upload failed (network)."; });
    xhr.send(f);
  });
  return el("div", { class: "panel" }, el("h2", { text: "Upload" }),
    el("div", { class: "row" }, el("label", {}, "File", file), el("label", {}, "Encryption", mode), keyLabelNode, submit, progress, status));
}

// ---------- Keys ----------

async function describeKeyFully(keyId) {
  const meta = (await kms("DescribeKey", { KeyId: keyId })).KeyMetadata;
  let rotation = null, rotations = [];
  try { rotation = await kms("GetKeyRotationStatus", { KeyId: keyId }); } catch (e) { rotation = { error: e }; }
  try {
    let marker;
    do {
      const page = await kms("ListKeyRotations", Object.assign({ KeyId: keyId, IncludeKeyMaterial: "ALL_KEY_MATERIAL" }, marker ? { Marker: marker } : {}));
      rotations.push(...(page.Rotations || []));
      marker = page.Truncated ? page.NextMarker : null;
    } while (marker);
  } catch (e) { rotations = null; }
  return { meta, rotation, rotations };
}

function stateTag(s) {
  const cls = s === "Enabled" ? "ok" : s === "Disabled" || s === "PendingDeletion" ? "bad" : "warn";
  return el("span", { class: "tag " + cls + " key-state", text: s });
}

async function pageKeys(main) {
  const message = el("p", { id: "keys-message" });
  const alias = el("input", { id: "new-key-alias", placeholder: "alias/my-key" });
  const description = el("input", { id: "new-key-description", placeholder: "what it protects" });
  const rotate = el("input", { type: "checkbox", id: "new-key-rotation", checked: true });
  const create = el("button", { type: "button", class: "primary", id: "new-key-submit", text: "Create key" });
  create.addEventListener("click", async () => {
    create.disabled = true;
    try {
      const m = (await kms("CreateKey", { Description: description.value })).KeyMetadata;
      const name = alias.value.trim();
      if (name) await kms("CreateAlias", { AliasName: name.startsWith("alias/") ? name : "alias/" + name, TargetKeyId: m.KeyId });
      if (rotate.checked) await kms("EnableKeyRotation", { KeyId: m.KeyId });
      render();
    } catch (e) { showError(message, e); } finally { create.disabled = false; }
  });
  main.append(el("h1", { text: "Keys" }),
    el("div", { class: "panel" }, el("h2", { text: "New key" }),
      el("div", { class: "row" }, el("label", {}, "Alias", alias), el("label", {}, "Description", description),
        el("label", { class: "check" }, rotate, " Automatic rotation"), create)),
    message);
  await loadKeyNames();
  const keys = await listAllKeys();
  const { table: t, body } = table("keys-table", ["Alias", "Key ID", "State", "Rotation", "Period (days)", "Last rotation", "Next rotation", "Versions", "Created", "Manager"]);
  main.append(t);
  if (!keys.length) body.append(el("tr", {}, el("td", { colspan: 10, class: "muted", text: "No keys yet." })));
  const rows = keys.map((k) => {
    const row = el("tr", { class: "clickable", "data-key-id": k.KeyId, on: { click: () => { location.hash = "#/keys/" + k.KeyId; } } },
      el("td", { text: (state.keyNames.get(k.KeyId) || []).join(", ") }), el("td", { class: "mono", text: k.KeyId }));
    body.append(row);
    return { k, row };
  });
  await eachLimited(rows, 4, async ({ k, row }) => {
    try {
      const { meta, rotation, rotations } = await describeKeyFully(k.KeyId);
      const rotated = (rotations || []).filter((r) => r.RotationDate).map((r) => r.RotationDate);
      row.append(el("td", {}, stateTag(meta.KeyState)),
        el("td", { class: "rotation", text: rotation && !rotation.error ? (rotation.KeyRotationEnabled ? "on" : "off") : "" }),
        el("td", { class: "num", text: rotation && rotation.KeyRotationEnabled ? rotation.RotationPeriodInDays : "" }),
        el("td", { text: rotated.length ? fmtTime(Math.max(...rotated)) : "never" }),
        el("td", { text: rotation && rotation.NextRotationDate ? fmtTime(rotation.NextRotationDate) : "" }),
        el("td", { class: "num", text: rotations ? rotations.length : "" }),
        el("td", { text: fmtTime(meta.CreationDate) }),
        el("td", { text: meta.KeyManager }));
    } catch (e) { row.append(el("td", { colspan: 8, class: "error", text: `${e.code}: ${e.message}` })); }
  });
}

async function pageKey(main, args) {
  const keyId = args[0];
  await loadKeyNames();
  const message = el("p", { id: "key-message" });
  const { meta, rotation, rotations } = await describeKeyFully(keyId);
  const act = (label, id, fn, cls) => el("button", { type: "button", id, class: cls, text: label, on: { click: async () => {
    message.textContent = "";
    try { await fn(); render(); } catch (e) { showError(message, e); }
  } } });
  const aliases = state.keyNames.get(meta.KeyId) || [];
  const facts = el("dl", { class: "facts", id: "key-facts" },
    el("dt", { text: "ARN" }), el("dd", { class: "mono", text: meta.Arn }),
    el("dt", { text: "State" }), el("dd", {}, stateTag(meta.KeyState)),
    el("dt", { text: "Aliases" }), el("dd", { text: aliases.join(", ") || "none" }),
    el("dt", { text: "Description" }), el("dd", { text: meta.Description || "" }),
    el("dt", { text: "Created" }), el("dd", { text: fmtTime(meta.CreationDate) }),
    el("dt", { text: "Managed by" }), el("dd", { text: meta.KeyManager }),
    el("dt", { text: "Automatic rotation" }), el("dd", { id: "key-rotation-state", text: rotation && rotation.KeyRotationEnabled ? `on, every ${rotation.RotationPeriodInDays} days; next ${fmtTime(rotation.NextRotationDate)}` : "off" }),
    meta.DeletionDate ? el("dt", { text: "Deletion date" }) : null,
    meta.DeletionDate ? el("dd", { class: "error", text: fmtTime(meta.DeletionDate) }) : null);
  const period = el("input", { id: "key-rotation-period", type: "number", min: 90, max: 2560, value: rotation && rotation.RotationPeriodInDays || 365 });
  const days = el("input", { id: "key-deletion-days", type: "number", min: 7, max: 30, value: 30 });
  const newAlias = el("input", { id: "key-alias-new", placeholder: "alias/name" });
  const manageable = meta.KeyManager !== "AWS";
  const controls = el("div", { class: "panel" }, el("h2", { text: "Actions" }),
    el("div", { class: "actions" },
      meta.KeyState === "Enabled" ? act("Disable key", "key-disable", () => kms("DisableKey", { KeyId: keyId }), "danger") : null,
      meta.KeyState === "Disabled" ? act("Enable key", "key-enable", () => kms("EnableKey", { KeyId: keyId })) : null,
      meta.KeyState === "Enabled" ? act("Rotate now", "key-rotate-now", () => kms("RotateKeyOnDemand", { KeyId: keyId })) : null,
      meta.KeyState === "PendingDeletion" ? act("Cancel deletion", "key-cancel-deletion", () => kms("CancelKeyDeletion", { KeyId: keyId })) : null),
    manageable && meta.KeyState !== "PendingDeletion" ? el("div", { class: "row" },
      el("label", {}, "Rotation period (days)", period),
      act("Turn rotation on / set period", "key-rotation-on", () => kms("EnableKeyRotation", { KeyId: keyId, RotationPeriodInDays: Number(period.value) })),
      act("Turn rotation off", "key-rotation-off", () => kms("DisableKeyRotation", { KeyId: keyId }))) : null,
    manageable ? el("div", { class: "row" }, el("label", {}, "New alias", newAlias),
      act("Add alias", "key-alias-add", () => { const n = newAlias.value.trim(); return kms("CreateAlias", { AliasName: n.startsWith("alias/") ? n : "alias/" + n, TargetKeyId: keyId }); })) : null,
    manageable && meta.KeyState !== "PendingDeletion" ? el("div", { class: "row" }, el("label", {}, "Waiting period (days)", days),
      confirmButton("Schedule deletion", "Really schedule deletion? Data under this key becomes unreadable.", async () => {
        try { await kms("ScheduleKeyDeletion", { KeyId: keyId, PendingWindowInDays: Number(days.value) }); render(); } catch (e) { showError(message, e); }
      }, { id: "key-schedule-deletion" })) : null);
  const { table: t, body } = table("key-materials", ["Version", "Key material id", "State", "Since", "How"]);
  (rotations || []).forEach((r, i) => body.append(el("tr", { "data-version": i + 1 },
    el("td", { class: "num", text: i + 1 }), el("td", { class: "mono", text: (r.KeyMaterialId || "").slice(0, 16) + "…" }),
    el("td", { text: r.KeyMaterialState === "CURRENT" ? "current" : "older" }),
    el("td", { text: fmtTime(r.RotationDate || meta.CreationDate) }), el("td", { text: r.RotationType ? r.RotationType.toLowerCase() + " rotation" : "created with the key" }))));
  main.append(el("p", { class: "crumbs" }, el("a", { href: "#/keys", text: "Keys" }), " / " + keyId),
    el("h1", { text: aliases[0] || keyId }), el("div", { class: "panel" }, facts), controls, message,
    el("h2", { text: "Key material versions" }),
    el("p", { class: "muted", text: "Each object names the version that wraps its data key (the Key version column on the Objects page). Old versions keep decrypting; new data uses the current one." }),
    rotations ? t : el("p", { class: "muted", text: "Not allowed to list rotations." }));
}

// ---------- Users ----------

async function pageUsers(main) {
  const message = el("p", { id: "users-message" });
  const name = el("input", { id: "new-user-name", placeholder: "user name" });
  const create = el("button", { type: "button", class: "primary", id: "new-user-submit", text: "Create user" });
  create.addEventListener("click", async () => {
    try { await iam("CreateUser", { UserName: name.value.trim() }); render(); } catch (e) { showError(message, e); }
  });
  const secretSlot = el("div", { id: "secret-slot" });
  main.append(el("h1", { text: "Users" }),
    el("div", { class: "panel" }, el("div", { class: "row" }, el("label", {}, "New user", name), create)), secretSlot, message);
  const users = xmlAll(await iam("ListUsers"), "member").map((m) => ({
    name: xmlText(m, "UserName"), arn: xmlText(m, "Arn"), created: xmlText(m, "CreateDate"),
  }));
  const { table: t, body } = table("users-table", ["User", "ARN", "Created", "Access keys", "Inline policies", ""]);
  main.append(t);
  if (!users.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No IAM users yet (the root user is not listed)." })));
  for (const u of users) {
    const keysCell = el("td", { class: "access-keys" }), policiesCell = el("td", { class: "policies" });
    const detail = el("tr", { hidden: true }, el("td", { colspan: 6 }));
    const row = el("tr", { "data-user": u.name }, el("td", { text: u.name }), el("td", { class: "mono", text: u.arn }),
      el("td", { text: fmtTime(u.created) }), keysCell, policiesCell,
      el("td", { class: "actions" },
        el("button", { type: "button", class: "create-access-key", text: "Create access key", on: { click: async () => {
          try {
            const doc = await iam("CreateAccessKey", { UserName: u.name });
            showSecretOnce(secretSlot, u.name, xmlText(doc, "AccessKeyId"), xmlText(doc, "SecretAccessKey"));
            loadUser();
          } catch (e) { showError(message, e); }
        } } }),
        el("button", { type: "button", class: "add-policy", text: "Add policy", on: { click: () => policyEditor(u.name, "", "", detail, loadUser) } }),
        confirmButton("Delete user", "Really delete?", async () => {
          try { await iam("DeleteUser", { UserName: u.name }); render(); } catch (e) { showError(message, e); }
        }, { class: "danger delete-user" })));
    body.append(row, detail);
    async function loadUser() {
      try {
        const keys = xmlAll(await iam("ListAccessKeys", { UserName: u.name }), "member");
        keysCell.replaceChildren(...keys.map((k) => {
          const id = xmlText(k, "AccessKeyId"), status = xmlText(k, "Status");
          return el("div", { class: "access-key", "data-access-key": id },
            el("code", { text: id }), " ", el("span", { class: "tag " + (status === "Active" ? "ok" : "warn"), text: status }), " ",
            el("button", { type: "button", text: status === "Active" ? "Deactivate" : "Activate", on: { click: async () => {
              try { await iam("UpdateAccessKey", { UserName: u.name, AccessKeyId: id, Status: status === "Active" ? "Inactive" : "Active" }); loadUser(); } catch (e) { showError(message, e); }
            } } }), " ",
            confirmButton("Delete", "Really?", async () => {
              try { await iam("DeleteAccessKey", { UserName: u.name, AccessKeyId: id }); loadUser(); } catch (e) { showError(message, e); }
            }));
        }));
        const names = xmlAll(await iam("ListUserPolicies", { UserName: u.name }), "member").map((m) => m.textContent);
        policiesCell.replaceChildren(...names.map((n) => el("div", { class: "policy", "data-policy": n },
          el("a", { href: "#", text: n, on: { click: async (ev) => {
            ev.preventDefault();
            try {
              const doc = await iam("GetUserPolicy", { UserName: u.name, PolicyName: n });
              policyEditor(u.name, n, decodeURIComponent(xmlText(doc, "PolicyDocument") || ""), detail, loadUser);
            } catch (e) { showError(message, e); }
          } } }))));
      } catch (e) { keysCell.textContent = e.code; }
    }
    loadUser();
  }
}

function showSecretOnce(slot, user, id, secret) {
  const done = el("button", { type: "button", id: "new-secret-done", text: "I have stored it", on: { click: () => slot.replaceChildren() } });
  slot.replaceChildren(el("div", { class: "panel secret-box", id: "new-secret" },
    el("h2", { text: `New access key for ${user}` }),
    el("p", { text: "The secret access key is shown only now. Store it somewhere safe: it cannot be shown again." }),
    el("dl", { class: "facts" },
      el("dt", { text: "Access key ID" }), el("dd", { class: "mono", id: "new-secret-id", text: id }),
      el("dt", { text: "Secret access key" }), el("dd", { class: "mono", id: "new-secret-value", text: secret })),
    done));
}

function policyEditor(user, name, documentText, detail, reload) {
  const cell = detail.firstChild;
  const nameInput = el("input", { id: "user-policy-name", value: name, placeholder: "policy name" });
  const area = el("textarea", { id: "user-policy-text", rows: 12, spellcheck: "false" });
  try { area.value = documentText ? JSON.stringify(JSON.parse(documentText), null, 2) : ""; } catch (e) { area.value = documentText; }
  const error = el("p", { id: "user-policy-error" });
  const save = el("button", { type: "button", class: "primary", id: "user-policy-save", text: "Save policy", on: { click: async () => {
    try { await iam("PutUserPolicy", { UserName: user, PolicyName: nameInput.value.trim(), PolicyDocument: area.value }); showOk(error, "Saved."); reload(); } catch (e) { showError(error, e); }
  } } });
  const del = name ? confirmButton("Delete policy", "Really?", async () => {
    try { await iam("DeleteUserPolicy", { UserName: user, PolicyName: name }); detail.hidden = true; reload(); } catch (e) { showError(error, e); }
  }) : null;
  cell.replaceChildren(el("h2", { text: `Inline policy of ${user}` }), el("label", {}, "Name", nameInput), area, el("div", { class: "actions" }, save, del), error);
  detail.hidden = false;
}

// ---------- Audit ----------

async function pageAudit(main, args, query) {
  const f = {
    event: el("input", { id: "audit-event-name", placeholder: "e.g. Decrypt", value: query.get("event") || "" }),
    user: el("input", { id: "audit-user", placeholder: "user name", value: query.get("user") || "" }),
    resource: el("input", { id: "audit-resource", placeholder: "key or bucket ARN", value: query.get("resource") || "" }),
    start: el("input", { id: "audit-start", type: "datetime-local" }),
    end: el("input", { id: "audit-end", type: "datetime-local" }),
  };
  const search = el("button", { type: "button", class: "primary", id: "audit-search", text: "Search" });
  const message = el("p", { id: "audit-message" });
  const verifyResult = el("div", { id: "audit-verify-result" });
  const verify = el("button", { type: "button", id: "audit-verify", text: "Verify the trail now" });
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    verifyResult.replaceChildren(el("p", { class: "muted", text: "Verifying every record and signed digest…" }));
    try { verifyResult.replaceChildren(verifyView(await consoleJson("audit-status"))); } catch (e) {
      const p = el("p"); showError(p, e); verifyResult.replaceChildren(p);
    } finally { verify.disabled = false; }
  });
  const { table: t, body } = table("audit-table", ["Time", "Event", "Source", "User", "Resource", "Error"]);
  const detail = el("pre", { class: "json", id: "audit-detail", hidden: true });
  main.append(el("h1", { text: "Audit trail" }),
    el("div", { class: "panel" }, el("h2", { text: "Integrity" }),
      el("p", { class: "muted", text: "Checks the hash chain of every record and the signature of every digest against the server's audit signing key." }),
      verify, verifyResult),
    el("div", { class: "panel" }, el("div", { class: "row" },
      el("label", {}, "Event name", f.event), el("label", {}, "User", f.user), el("label", {}, "Resource", f.resource),
      el("label", {}, "From", f.start), el("label", {}, "To", f.end), search)),
    message, t, detail);
  async function run() {
    body.replaceChildren();
    message.textContent = "";
    const attrs = [];
    if (f.event.value.trim()) attrs.push({ AttributeKey: "EventName", AttributeValue: f.event.value.trim() });
    if (f.user.value.trim()) attrs.push({ AttributeKey: "Username", AttributeValue: f.user.value.trim() });
    if (f.resource.value.trim()) attrs.push({ AttributeKey: "ResourceName", AttributeValue: f.resource.value.trim() });
    const payload = { MaxResults: 50, LookupAttributes: attrs };
    if (f.start.value) payload.StartTime = new Date(f.start.value).getTime() / 1000;
    if (f.end.value) payload.EndTime = new Date(f.end.value).getTime() / 1000;
    try {
      const events = (await lookupEvents(payload)).Events || [];
      if (!events.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No matching events." })));
      for (const e of events) {
        let full = {};
        try { full = JSON.parse(e.CloudTrailEvent); } catch (err) { /* shown raw */ }
        const row = el("tr", { class: "clickable audit-event", "data-event": e.EventName },
          el("td", { text: fmtTime(e.EventTime) }), el("td", { class: "event-name", text: e.EventName }),
          el("td", { text: (e.EventSource || "").replace(".amazonaws.com", "") }), el("td", { class: "event-user", text: e.Username || "" }),
          el("td", { class: "mono", text: (e.Resources || []).map((r) => r.ResourceName).join(" ") }),
          el("td", { class: "error", text: full.errorCode || "" }));
        row.addEventListener("click", () => {
          detail.hidden = false;
          detail.textContent = JSON.stringify(full, null, 2);
          detail.scrollIntoView({ block: "nearest" });
        });
        body.append(row);
      }
    } catch (err) { showError(message, err); }
  }
  search.addEventListener("click", run);
  await run();
}

function verifyView(r) {
  if (!r.verified) return el("p", { class: "error", id: "audit-verify-status", text: `NOT VERIFIED: ${r.error}` });
  return el("dl", { class: "facts" },
    el("dt", { text: "Status" }), el("dd", {}, el("span", { class: "tag ok", id: "audit-verify-status", text: "verified" })),
    el("dt", { text: "Records" }), el("dd", { text: `${r.records} (${r.coveredRecords} covered by a signed digest, ${r.uncoveredRecords} newer)` }),
    el("dt", { text: "Log files / digests" }), el("dd", { text: `${r.files} / ${r.digests}` }),
    el("dt", { text: "Latest signed digest" }), el("dd", { class: "mono", id: "audit-latest-digest", text: r.newestDigest ? `${r.newestDigest} (up to ${r.newestDigestEndTime})` : "none yet (one is written every digest interval and at shutdown)" }),
    el("dt", { text: "Signing key fingerprint" }), el("dd", { class: "mono", text: r.keyFingerprint }),
    r.tornTail ? el("dt", { text: "Being written" }) : null, r.tornTail ? el("dd", { text: r.tornTail }) : null);
}

// ---------- Health ----------

async function pageHealth(main) {
  const facts = el("dl", { class: "facts", id: "health-facts" });
  const { table: t, body } = table("health-requests", ["API", "Requests", "Client errors (4xx)", "Server errors (5xx)", "Requests/s", "Error rate"]);
  const keys = el("div", { id: "health-keys" }, el("p", { class: "muted", text: "Counting keys…" }));
  main.append(el("h1", { text: "Health" }), el("div", { class: "panel" }, facts),
    el("h2", { text: "Requests since start" }), t, el("h2", { text: "KMS keys" }), keys);
  state.lastTotals = null;
  async function refresh() {
    const s = await consoleJson("server");
    const now = Date.now();
    const listeners = el("span", {}, ...s.listeners.map((l) => el("div", {}, el("code", { text: l.url }), " ", el("span", { class: "tag " + (l.tls ? "ok" : ""), text: l.tls ? "TLS" : "plain HTTP" }))));
    facts.replaceChildren(
      el("dt", { text: "Version" }), el("dd", { id: "health-version", text: s.version }),
      el("dt", { text: "Up since" }), el("dd", { text: `${fmtTime(s.startedAt)} (${fmtDuration(s.uptimeSeconds)})` }),
      el("dt", { text: "Region" }), el("dd", { text: s.region }),
      el("dt", { text: "Listeners" }), el("dd", {}, listeners),
      el("dt", { text: "TLS" }), el("dd", { id: "health-tls", text: s.tls.enabled ? `on (${s.tls.mode})` : "off" }),
      el("dt", { text: "Audit trail" }), el("dd", {}, el("span", { class: "tag " + (s.audit.writerFailed ? "bad" : "ok"), id: "health-audit", text: s.audit.writerFailed ? "cannot be written: audited requests are refused" : "writing" }),
        ` ${s.audit.records} records and ${s.audit.digests} signed digests since start`));
    body.replaceChildren();
    const prev = state.lastTotals;
    for (const r of s.requests) {
      const before = prev && prev.rows.find((p) => p.api === r.api);
      const secs = prev ? (now - prev.at) / 1000 : s.uptimeSeconds || 1;
      const delta = before ? r.total - before.total : r.total;
      const errors = r.clientErrors + r.serverErrors;
      body.append(el("tr", { "data-api": r.api }, el("td", { text: r.api }), el("td", { class: "num", text: r.total }),
        el("td", { class: "num", text: r.clientErrors }), el("td", { class: "num", text: r.serverErrors }),
        el("td", { class: "num", text: (delta / Math.max(secs, 1)).toFixed(2) }),
        el("td", { class: "num", text: r.total ? (100 * errors / r.total).toFixed(1) + " %" : "" })));
    }
    state.lastTotals = { at: now, rows: s.requests };
  }
  await refresh();
  clearInterval(state.healthTimer);
  state.healthTimer = setInterval(() => {
    if (!location.hash.startsWith("#/health")) { clearInterval(state.healthTimer); return; }
    refresh().catch(() => clearInterval(state.healthTimer));
  }, 5000);
  try {
    const list = await listAllKeys();
    const counts = {};
    await eachLimited(list, 4, async (k) => {
      try { const s = (await kms("DescribeKey", { KeyId: k.KeyId })).KeyMetadata.KeyState; counts[s] = (counts[s] || 0) + 1; } catch (e) { counts.unreadable = (counts.unreadable || 0) + 1; }
    });
    keys.replaceChildren(el("dl", { class: "facts" }, el("dt", { text: "Total" }), el("dd", { id: "health-key-count", text: list.length }),
      ...Object.entries(counts).flatMap(([s, n]) => [el("dt", { text: s }), el("dd", { text: n })])));
  } catch (e) { const p = el("p"); showError(p, e); keys.replaceChildren(p); }
}

// ---------- routing ----------

const PAGES = { buckets: pageBuckets, objects: pageObjects, keys: pageKeys, users: pageUsers, audit: pageAudit, health: pageHealth };

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, q] = raw.split("?");
  const parts = path.split("/").filter((p) => p !== "").map(decodeURIComponent);
  let page = parts[0] || "buckets";
  if (page === "keys" && parts.length > 1) page = "key";
  return { page, args: parts.slice(1), query: new URLSearchParams(q || "") };
}

async function render() {
  if (!state.session) return showSignin();
  const { page, args, query } = parseHash();
  const nav = page === "key" ? "keys" : page === "objects" ? "buckets" : page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === nav);
  const main = $("#main");
  const fresh = el("div", { id: "page-" + page });
  main.replaceChildren(fresh);
  try {
    await (page === "key" ? pageKey : PAGES[page] || pageBuckets)(fresh, args, query);
  } catch (e) {
    if (e && e.code === "SessionExpired") return;
    const p = el("p", { id: "page-error" });
    showError(p, e);
    fresh.append(p);
  }
  fresh.setAttribute("data-loaded", "true");
}

async function start() {
  $("#signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => render());
  const resp = await fetch("/console/api/session", { credentials: "same-origin", cache: "no-store" });
  if (resp.ok) { startSession(await resp.json()); render(); } else showSignin();
}

start();
