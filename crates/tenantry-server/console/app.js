// The Tenantry console: the admin API, read and driven with the key the operator signed in
// with (kept in this tab's session storage). Every value from the API reaches the page as
// text, never as markup.
"use strict";

const KEY = "tenantry.key";
const view = document.getElementById("view");
let refresh = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function bar(percent) {
  const node = el("div");
  node.style.width = `${percent}%`;
  return node;
}

function badge(text) {
  return el("span", { class: `status ${text}`, "data-status": text }, text);
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401) {
    signOut("The key was refused (revoked, or not a key).");
    throw new ApiError(401, data);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  document.getElementById("nav").hidden = true;
  view.hidden = true;
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-in-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  const key = document.getElementById("api-key").value.trim();
  sessionStorage.setItem(KEY, key);
  try {
    await api("GET", "/v1/tenants?limit=1");
  } catch (e) {
    if (e.status !== 401) document.getElementById("sign-in-error").textContent = e.message;
    return;
  }
  document.getElementById("api-key").value = "";
  route();
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

function failed(e) {
  show(el("div", { class: "card error", role: "alert" }, e.message));
}

// Fleet: counts at a glance, filters, the tenants.
async function fleet(params) {
  const query = new URLSearchParams();
  for (const name of ["status", "strategy", "server", "version"]) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  query.set("limit", "1000");
  const [page, summary, servers] = await Promise.all([
    api("GET", `/v1/tenants?${query}`),
    api("GET", "/v1/migrations/status").catch(() => null),
    api("GET", "/v1/servers").catch(() => []),
  ]);
  const counts = el("div", { class: "counts", id: "counts" });
  if (summary) {
    const tiles = [["tenants", summary.tenants], ["current", summary.current],
      ["pending", summary.pending], ["failed", summary.failed], ["latest version", summary.latest]];
    for (const [status, n] of Object.entries(summary.statuses)) tiles.push([status, n]);
    for (const [label, n] of tiles) {
      counts.append(el("div", { class: "count", "data-count": label }, el("b", {}, n), el("span", {}, label)));
    }
  }
  const select = (name, values) => el("select", {
    name, id: `filter-${name}`,
    on: { change: (e) => filter(name, e.target.value) },
  }, el("option", { value: "" }, `any ${name}`),
  values.map((v) => el("option", { value: v, selected: params.get(name) === String(v) }, v)));
  const versions = summary ? Object.keys(summary.versions) : [];
  const search = el("input", {
    id: "search", placeholder: "find a tenant", value: params.get("q") || "",
    on: { input: (e) => { drawRows(e.target.value); } },
  });
  const filters = el("div", { class: "filters" },
    search,
    select("status", ["active", "suspended", "failed", "provisioning", "deleted", "spare"]),
    select("strategy", ["database", "schema", "shared"]),
    select("server", servers.map((s) => s.name)),
    select("version", versions));
  const body = el("tbody", { id: "tenant-rows" });
  const drawRows = (needle) => {
    const n = (needle || "").toLowerCase();
    body.replaceChildren(...page.items
      .filter((t) => !n || t.slug.includes(n) || t.name.toLowerCase().includes(n))
      .map((t) => el("tr", { "data-tenant": t.slug },
        el("td", {}, el("a", { href: `#/tenant/${encodeURIComponent(t.slug)}` }, t.slug)),
        el("td", { class: "wrap" }, t.name),
        el("td", {}, badge(t.status)),
        el("td", {}, t.strategy), el("td", {}, t.server), el("td", {}, t.version))));
  };
  drawRows(params.get("q"));
  show(el("h1", {}, "Fleet"), counts, filters, el("div", { class: "card" },
    el("table", {}, el("thead", {}, el("tr", {},
      ["Tenant", "Name", "Status", "Strategy", "Server", "Version"].map((h) => el("th", {}, h)))), body),
    page.next ? el("p", { class: "muted" }, "Showing the first 1000 tenants.") : null));
}

function filter(name, value) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  if (value) params.set(name, value); else params.delete(name);
  location.hash = `#/fleet?${params}`;
}

// One tenant: storage, version, domains, members, recent events, suspend and resume.
async function tenant(slug) {
  const path = `/v1/tenants/${encodeURIComponent(slug)}`;
  const [t, domains, members, events] = await Promise.all([
    api("GET", path),
    api("GET", `${path}/domains`).catch(() => []),
    api("GET", `${path}/members`).catch(() => []),
    api("GET", `${path}/events?limit=20`).catch(() => []),
  ]);
  const act = async (action) => {
    try {
      await api("POST", `${path}/${action}`);
      await tenant(slug);
    } catch (e) {
      document.getElementById("tenant-error").textContent = e.message;
    }
  };
  const button = t.status === "active"
    ? el("button", { id: "suspend", class: "danger", on: { click: () => act("suspend") } }, "Suspend")
    : t.status === "suspended"
      ? el("button", { id: "resume", on: { click: () => act("resume") } }, "Resume")
      : null;
  const facts = [["Status", badge(t.status)], ["Name", t.name], ["Id", t.id],
    ["Strategy", t.strategy], ["Server", t.server], ["Storage", t.storage],
    ["Login role", t.role || "—"], ["Version", t.version], ["Created", t.created_at],
    ["Last error", t.last_error || "—"]];
  show(
    el("div", { class: "row" }, el("h1", { id: "tenant-slug" }, t.slug), button),
    el("p", { id: "tenant-error", class: "error", role: "alert" }),
    el("div", { class: "card" }, el("dl", { class: "grid", id: "tenant-facts" },
      facts.map(([k, v]) => [el("dt", {}, k), el("dd", { "data-fact": k }, v)]))),
    el("div", { class: "card" }, el("h2", {}, "Domains"), domains.length
      ? el("ul", {}, domains.map((d) => el("li", {}, d.host, d.primary ? " (primary)" : "")))
      : el("p", { class: "muted" }, "No domains.")),
    el("div", { class: "card" }, el("h2", {}, "Members"), members.length
      ? el("table", {}, el("tbody", {}, members.map((m) => el("tr", {},
        el("td", {}, m.email), el("td", {}, m.role)))))
      : el("p", { class: "muted" }, "No members.")),
    el("div", { class: "card" }, el("h2", {}, "Recent events"), eventsTable(events)));
}

function eventsTable(events, withTenant) {
  return el("table", {}, el("thead", {}, el("tr", {},
    [withTenant ? "#" : null, "At", "Actor", "Action", withTenant ? "Target" : null, "Outcome", "Detail"]
      .filter((h) => h).map((h) => el("th", {}, h)))),
  el("tbody", {}, events.map((e) => el("tr", { "data-event": e.action },
    withTenant ? el("td", {}, e.seq) : null,
    el("td", {}, e.at), el("td", {}, e.actor || ""), el("td", {}, e.action),
    withTenant ? el("td", {}, e.target || "") : null,
    el("td", {}, badge(e.outcome)), el("td", { class: "wrap" }, e.error || e.detail || "")))));
}

// Rollouts with live progress.
async function rollouts() {
  const list = await api("GET", "/v1/rollouts");
  const details = await Promise.all(list.slice(0, 20).map((r) => api("GET", `/v1/rollouts/${r.id}`)));
  const start = async () => {
    try {
      await api("POST", "/v1/rollouts", { kind: "migrate" });
      await rollouts();
    } catch (e) {
      document.getElementById("rollout-error").textContent = e.message;
    }
  };
  const rows = details.map((r) => {
    const percent = r.total ? Math.round((100 * r.settled) / r.total) : 100;
    const counts = Object.entries(r.counts).map(([s, n]) => `${s} ${n}`).join(", ");
    return el("tr", { "data-rollout": r.id, "data-state": r.state },
      el("td", {}, r.id), el("td", {}, r.kind), el("td", {}, badge(r.state)),
      el("td", {}, r.target_version ?? "—"),
      el("td", {}, el("div", { class: "progress", title: `${r.settled} of ${r.total}` },
        bar(percent)), el("span", { class: "muted" }, `${r.settled}/${r.total}`)),
      el("td", { class: "wrap" }, counts), el("td", {}, r.started_by), el("td", {}, r.started_at));
  });
  show(el("div", { class: "row" }, el("h1", {}, "Rollouts"),
    el("button", { id: "start-rollout", on: { click: start } }, "Roll out pending migrations")),
  el("p", { id: "rollout-error", class: "error", role: "alert" }),
  el("div", { class: "card" }, el("table", {}, el("thead", {}, el("tr", {},
    ["Rollout", "Kind", "State", "Target", "Progress", "Items", "By", "Started"].map((h) => el("th", {}, h)))),
  el("tbody", { id: "rollout-rows" }, rows))));
  if (details.some((r) => r.state === "running")) refresh = setTimeout(() => rollouts().catch(failed), 1000);
}

// The audit log, newest last page first, and its verification.
async function audit() {
  const verify = async () => {
    const out = document.getElementById("verify-result");
    try {
      const report = await api("GET", "/v1/audit/verify");
      out.textContent = report.first_break
        ? `Broken at position ${report.first_break.position} (${report.first_break.kind}): ${report.first_break.detail}`
        : `Chain valid: ${report.checked} entries.`;
      out.className = report.first_break ? "error" : "";
    } catch (e) {
      out.textContent = e.message;
    }
  };
  const entries = [];
  let after = 0;
  for (;;) {
    const page = await api("GET", `/v1/audit?limit=1000&after=${after}`);
    entries.push(...page.items);
    if (!page.next || entries.length >= 5000) break;
    after = page.next;
  }
  entries.reverse();
  show(el("div", { class: "row" }, el("h1", {}, "Audit log"),
    el("button", { id: "verify", class: "secondary", on: { click: verify } }, "Verify the chain")),
  el("p", { id: "verify-result" }),
  el("div", { class: "card" }, eventsTable(entries.slice(0, 500), true)));
}

// The API's own document, read from /openapi.json.
async function docs() {
  const doc = await (await fetch("/openapi.json")).json();
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const params = (op.parameters || []).map((p) => `${p.name} (${p.in})`).join(", ");
      const codes = Object.keys(op.responses || {}).join(" ");
      ops.push(el("div", { class: "op" },
        el("div", {}, el("span", { class: "method" }, method.toUpperCase()), el("code", {}, path)),
        op.description || op.summary ? el("p", {}, op.description || op.summary) : null,
        params ? el("p", { class: "muted" }, `Parameters: ${params}`) : null,
        el("p", { class: "muted" }, `Responses: ${codes}`)));
    }
  }
  show(el("h1", {}, doc.info.title, " ", doc.info.version),
    el("p", {}, doc.info.description || ""),
    el("p", {}, el("a", { href: "/openapi.json" }, "openapi.json"), ` (OpenAPI ${doc.openapi})`),
    el("div", { class: "card" }, ops));
}

async function route() {
  clearTimeout(refresh);
  const hash = location.hash || "#/fleet";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  if (parts[0] === "docs") {
    document.getElementById("sign-in").hidden = true;
    view.hidden = false;
    return docs().catch(failed);
  }
  if (!sessionStorage.getItem(KEY)) return signOut();
  document.getElementById("sign-in").hidden = true;
  document.getElementById("nav").hidden = false;
  view.hidden = false;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === (parts[0] === "tenant" ? "fleet" : parts[0]));
  }
  try {
    if (parts[0] === "tenant" && parts[1]) await tenant(decodeURIComponent(parts[1]));
    else if (parts[0] === "rollouts") await rollouts();
    else if (parts[0] === "audit") await audit();
    else await fleet(params);
  } catch (e) {
    if (e.status !== 401) failed(e);
  }
}

document.getElementById("sign-in-form").addEventListener("submit", signIn);
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
