// arbor console: polls /api/status on every server of the ensemble (each server's own admin
// port; CORS allows exactly that route) and browses the tree through this server's
// /api/tree. Everything from the servers goes into the page as text, never as HTML.
"use strict";

const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 1500;
const EVENTS_SHOWN = 40;

const state = { self: null, rows: new Map(), node: null };

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function getJSON(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(url, { signal: ctl.signal, cache: "no-store" });
    const body = await r.json();
    return { ok: r.ok, status: r.status, body };
  } finally {
    clearTimeout(timer);
  }
}

// zxids come as "0x..." strings: BigInt keeps all 64 bits.
function zxid(s) { try { return BigInt(s); } catch { return null; } }

async function pollOne(server, selfId) {
  const url = server.id === selfId ? "/api/status" : server.admin_url && server.admin_url + "/api/status";
  const prev = state.rows.get(server.id);
  if (!url) return { server, live: false, why: "no admin port" };
  try {
    const r = await getJSON(url);
    if (!r.ok) return { server, live: false, why: "HTTP " + r.status };
    const now = performance.now();
    let ops = null;
    if (prev && prev.live && prev.status.uptime_ms <= r.body.uptime_ms) {
      const dt = (now - prev.at) / 1000;
      if (dt > 0) ops = (r.body.packets_received - prev.status.packets_received) / dt;
    }
    return { server, live: true, status: r.body, at: now, ops };
  } catch (e) {
    return { server, live: false, why: e.name === "AbortError" ? "timeout" : "unreachable" };
  }
}

async function poll() {
  try {
    const me = await getJSON("/api/status");
    state.self = me.body;
  } catch (e) {
    document.getElementById("here").textContent = "this server does not answer";
    return;
  }
  const self = state.self;
  document.getElementById("here").textContent =
    `server ${self.id} · ${self.mode} · ${self.version}`;
  const servers = self.servers.length ? self.servers : [{ id: self.id, host: "", participant: true }];
  const rows = await Promise.all(servers.map((s) => pollOne(s, self.id)));
  for (const r of rows) state.rows.set(r.server.id, r);
  renderEnsemble(rows, self.id);
  renderEvents(rows);
}

function renderEnsemble(rows, selfId) {
  const leader = rows.find((r) => r.live && r.status.mode === "leader");
  const leaderZxid = leader ? zxid(leader.status.last_zxid) : null;
  const body = document.querySelector("#ensemble tbody");
  body.replaceChildren();
  for (const r of rows) {
    const s = r.status;
    const mode = r.live ? s.mode : "down";
    let lag = "";
    if (r.live && leaderZxid !== null) {
      const z = zxid(s.last_zxid);
      lag = z === null ? "?" : leaderZxid >= z ? String(leaderZxid - z) : "ahead";
    }
    const tr = el("tr", { class: r.server.id === selfId ? "self" : "", dataset: { testid: "server-row", server: r.server.id, mode } },
      el("td", {}, `#${r.server.id}` + (r.server.client ? ` ${r.server.client}` : "")),
      el("td", {}, el("span", { class: r.live ? "dot" : "dot off", title: r.live ? "answering" : r.why })),
      el("td", {}, el("span", { class: "badge " + mode, dataset: { testid: "mode" } }, mode)),
      el("td", { class: "muted" }, r.live ? s.peer_state || "" : r.why),
      el("td", { class: "num" }, r.live ? s.current_epoch ?? s.epoch : ""),
      el("td", { class: "num" }, r.live ? s.last_zxid : ""),
      el("td", { class: "num" }, lag),
      el("td", { class: "num" }, r.live ? s.sessions : ""),
      el("td", { class: "num" }, r.live ? s.connections : ""),
      el("td", { class: "num" }, r.live && r.ops !== null ? Math.round(r.ops) : ""),
      el("td", { class: "num" }, r.live ? s.znode_count : ""),
      el("td", { class: "num" }, r.live ? `${s.read_p99_ms.toFixed(2)} / ${s.update_p99_ms.toFixed(2)}` : ""),
    );
    body.append(tr);
  }
  const leaders = rows.filter((r) => r.live && r.status.mode === "leader").length;
  const live = rows.filter((r) => r.live).length;
  document.getElementById("ensemble-note").textContent =
    rows.length > 1 ? `${live} of ${rows.length} servers answering, ${leaders} leader${leaders === 1 ? "" : "s"}` : "standalone server";
}

function renderEvents(rows) {
  const all = [];
  for (const r of rows) if (r.live) for (const e of r.status.events || []) all.push({ ...e, server: r.server.id });
  all.sort((a, b) => b.time_ms - a.time_ms);
  const list = document.getElementById("events");
  list.replaceChildren();
  for (const e of all.slice(0, EVENTS_SHOWN)) {
    const when = new Date(e.time_ms).toLocaleTimeString();
    const took = e.took_ms != null ? ` (${e.took_ms.toFixed(1)} ms)` : "";
    list.append(el("li", {}, el("span", { class: "when" }, when), el("span", { class: "kind" }, e.kind),
      `server ${e.server}: ${e.text}${took}`));
  }
  if (!all.length) list.append(el("li", { class: "muted" }, "nothing yet"));
}

// ---- tree ---------------------------------------------------------------------------------

function currentPath() {
  const h = decodeURIComponent(location.hash.slice(1));
  return h.startsWith("/") ? h : "/";
}

function join(parent, child) { return parent === "/" ? "/" + child : parent + "/" + child; }

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function renderData() {
  const pre = document.getElementById("data");
  const n = state.node;
  if (!n) return;
  if (!n.readable) { pre.textContent = "(world:anyone may not read this znode)"; return; }
  const bytes = hexToBytes(n.data_hex);
  const fmt = document.querySelector("input[name=fmt]:checked").value;
  let text = null;
  if (fmt === "text") {
    try { text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { text = null; }
  }
  if (text === null) text = (n.data_hex.match(/.{1,2}/g) || []).join(" ");
  if (n.data_truncated) text += "\n… (first " + bytes.length + " bytes shown)";
  pre.textContent = bytes.length ? text : "(empty)";
}

async function loadNode() {
  const path = currentPath();
  const crumbs = document.getElementById("crumbs");
  crumbs.replaceChildren();
  let acc = "";
  crumbs.append(el("a", { href: "#/" }, "/"));
  const parts = path.split("/").filter(Boolean);
  parts.forEach((part, i) => {
    acc += "/" + part;
    crumbs.append(el("a", { href: "#" + encodeURIComponent(acc) }, part));
    if (i < parts.length - 1) crumbs.append("/");
  });
  const list = document.getElementById("children");
  let r;
  try { r = await getJSON("/api/tree?path=" + encodeURIComponent(path)); } catch { return; }
  list.replaceChildren();
  if (!r.ok) {
    state.node = null;
    document.getElementById("data").textContent = r.body.error || "error";
    document.getElementById("stat").replaceChildren();
    document.getElementById("acl").replaceChildren();
    return;
  }
  const n = (state.node = r.body);
  for (const c of n.children || []) {
    list.append(el("li", {}, el("a", { href: "#" + encodeURIComponent(join(path, c)), dataset: { testid: "child" } }, c)));
  }
  const count = n.stat.numChildren;
  document.getElementById("child-count").textContent =
    `${count}` + (n.children_truncated ? `, first ${(n.children || []).length} shown` : "");
  if (!n.readable) list.append(el("li", { class: "note" }, "not readable by world:anyone"));
  else if (!count) list.append(el("li", { class: "note" }, "none"));
  const stat = document.getElementById("stat");
  const shown = (k, v) => (k === "ctime" || k === "mtime") && v > 0 ? `${v} (${new Date(v).toISOString()})` : v;
  stat.replaceChildren(...Object.entries(n.stat).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, shown(k, v)))));
  const acl = document.getElementById("acl");
  acl.replaceChildren(...(n.acl || []).map((a) => el("tr", {}, el("td", {}, `${a.scheme}:${a.id}`), el("td", {}, a.perms))));
  if (!n.acl) acl.append(el("tr", {}, el("td", { class: "muted" }, "hidden")));
  renderData();
}

for (const r of document.querySelectorAll("input[name=fmt]")) r.addEventListener("change", renderData);
window.addEventListener("hashchange", loadNode);
loadNode();
poll();
setInterval(poll, POLL_MS);
