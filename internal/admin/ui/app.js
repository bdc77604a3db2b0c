// The dashboard: polls /dashboard.json and fills the tables. Values are
// set as text, never as HTML.
"use strict";

const num = (v) => (v === undefined || v === null ? "" : Number.isInteger(v) ? String(v) : v.toFixed(1));

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fill(id, items, render) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  for (const it of items) render(body.insertRow(), it);
}

function badge(td, cls, key, value) {
  td.textContent = "";
  const s = document.createElement("span");
  s.className = cls;
  s.dataset[key] = value;
  s.textContent = value;
  td.appendChild(s);
}

function render(d) {
  const phase = document.getElementById("phase");
  phase.textContent = d.drain_phase;
  phase.dataset.phase = d.drain_phase;
  document.getElementById("updated").textContent = "updated " + new Date(d.time).toLocaleTimeString();

  fill("listeners", d.listeners, (row, l) => {
    cell(row, l.name);
    for (const s of ["open", "active", "idle", "released"]) cell(row, num(l.connections[s] || 0), "num");
    cell(row, Object.entries(l.protocols).filter(([, v]) => v > 0).map(([k, v]) => k + " " + v).join(", "));
  });

  const eps = [];
  for (const u of d.upstreams) for (const e of u.endpoints) eps.push([u, e]);
  fill("endpoints", eps, (row, [u, e]) => {
    row.dataset.endpoint = e.address;
    cell(row, u.name);
    cell(row, e.address);
    const st = cell(row, "");
    badge(st, "state", "state", e.state || "unknown");
    if (e.ejected_until) st.append(" until " + new Date(e.ejected_until).toLocaleTimeString());
    cell(row, num(e.in_flight), "num");
    for (const s of ["open", "idle", "active"]) cell(row, num(e.pool[s] || 0), "num");
    cell(row, e.keepalive_window_seconds ? num(e.keepalive_window_seconds) + " s" : "", "num");
    cell(row, num(e.connections_opened), "num");
    cell(row, num(e.connections_reused), "num");
    cell(row, e.connections_opened ? num((e.connections_opened + e.connections_reused) / e.connections_opened) : "", "num");
    cell(row, num(e.ejections), "num");
  });

  const fails = [];
  for (const u of d.upstreams) for (const [k, v] of Object.entries(u.failures)) if (v > 0) fails.push([u.name, k, v]);
  fill("failures", fails, (row, [u, k, v]) => {
    cell(row, u);
    cell(row, k);
    cell(row, num(v), "num");
  });

  fill("routes", d.routes || [], (row, r) => {
    cell(row, r.id);
    cell(row, num(r.order), "num");
    cell(row, (r.predicates || []).join("; "));
    cell(row, (r.filters || []).join("; "));
    cell(row, r.upstream || r.uri || "");
  });

  const rl = d.reloads;
  document.getElementById("reloads").textContent =
    rl.success + " succeeded, " + rl.failure + " failed; last success " + new Date(rl.last_success).toLocaleString();
  const list = document.getElementById("recent-reloads");
  list.replaceChildren();
  for (const r of rl.recent || []) {
    const li = document.createElement("li");
    li.className = r.result;
    li.textContent = new Date(r.time).toLocaleString() + " " + r.result;
    if (r.errors && r.errors.length) {
      const pre = document.createElement("pre");
      pre.textContent = r.errors.join("\n");
      li.appendChild(pre);
    }
    list.appendChild(li);
  }
}

// The admin token, when the gateway has one (admin.token_file/token_env):
// asked for once, kept for the browser tab's life.
function token() { return sessionStorage.getItem("sluice-admin-token") || ""; }

function askToken() {
  const form = document.getElementById("login");
  form.hidden = false;
  form.onsubmit = (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("sluice-admin-token", form.elements.token.value.trim());
    form.hidden = true;
    clearTimeout(timer);
    poll();
  };
}

let timer;

async function poll() {
  const err = document.getElementById("error");
  try {
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    const resp = await fetch("/dashboard.json", { cache: "no-store", headers });
    if (resp.status === 401) {
      err.textContent = token() ? "the admin token was refused" : "this gateway's admin port needs its token";
      err.hidden = false;
      askToken();
      return;
    }
    if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
    render(await resp.json());
    err.hidden = true;
  } catch (e) {
    err.textContent = "cannot load /dashboard.json: " + e.message;
    err.hidden = false;
  }
  timer = setTimeout(poll, 2000);
}

poll();
