// The dashboard: a hash router over two views, the fleet (#/) and one worker (#/worker/<id>).

import * as api from "./api.js";
import { align, color, draw, release } from "./charts.js";
import { ago, celsius, duration, gib, localTime, mbs, parseTime, percent } from "./format.js";

const RANGES = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
// Bucket sizes to choose from: a chart gets at most ~600 points. 40 s is the 2.32+ floor (a smaller
// interval is answered at 40 s). Multiples of 10 min from 6 h on, so answers from the rolled-up tiers stay
// exact once raw samples have expired.
const INTERVALS = [40, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
const MAX_POINTS = 600;
const REFRESH_MS = 10_000;
const PAGE_SIZE = 50;

const state = {
  range: RANGES[localStorage.getItem("workerhub.range")] ? localStorage.getItem("workerhub.range") : "24h",
  paused: false,
  view: null, // {refresh(), destroy?()}
  generation: 0,
  timer: null,
};

const $ = (sel, root = document) => root.querySelector(sel);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.flat().filter((c) => c != null).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

export function interval(seconds) {
  return INTERVALS.find((i) => seconds / i <= MAX_POINTS) ?? INTERVALS[INTERVALS.length - 1];
}

function window_() {
  const to = Math.floor(Date.now() / 1000);
  const span = RANGES[state.range];
  return { from: to - span, to, interval: interval(span) };
}

// --- errors and login -------------------------------------------------------------------------------

function showError(err) {
  const box = $("#error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = err instanceof api.ApiError ? err.message : `Cannot reach workerhub: ${err.message ?? err}`;
  box.hidden = false;
}

/** Show the login form or the fleet; the range and refresh controls belong to the fleet only. */
function locked(on) {
  $("#login").hidden = !on;
  for (const id of ["#view", "#ranges", "#pause", "#updated"]) $(id).hidden = on;
}

function showLogin(message) {
  locked(true);
  $("#login-message").textContent = message ?? "";
  $("#access-key").focus();
}

async function onLogin(event) {
  event.preventDefault();
  try {
    await api.login($("#access-key").value, $("#secret-key").value);
    $("#secret-key").value = "";
    locked(false);
    $("#logout").hidden = false;
    route();
  } catch (err) {
    $("#login-message").textContent = err.unauthorized ? "Wrong access key or secret." : String(err.message);
  }
}

function onLogout() {
  api.logout();
  $("#logout").hidden = true;
  showLogin();
}

// --- refresh loop ---------------------------------------------------------------------------------------

async function refresh() {
  const view = state.view;
  const generation = ++state.generation;
  if (!view || !$("#login").hidden) return;
  try {
    await view.refresh(() => generation === state.generation);
    if (generation !== state.generation) return;
    showError(null);
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (generation !== state.generation) return;
    if (err instanceof api.ApiError && err.unauthorized) {
      const expired = api.token() != null;
      api.logout();
      $("#logout").hidden = true;
      showLogin(expired ? "Your session has expired: log in again." : "");
      return;
    }
    showError(err);
  }
}

function schedule() {
  clearInterval(state.timer);
  state.timer = state.paused ? null : setInterval(refresh, REFRESH_MS);
}

// --- fleet view -----------------------------------------------------------------------------------------

const COLUMNS = [
  { key: "id", label: "Worker", value: (w) => w.id },
  { key: "user", label: "User", value: (w) => w.user?.name ?? w.user?.id ?? "" },
  { key: "ip", label: "IP", value: (w) => w.ip ?? "" },
  { key: "queues", label: "Queues", value: (w) => (w.queues ?? []).map((q) => q.name ?? q.id).join(", ") },
  { key: "task", label: "Task", value: (w) => w.task?.id ?? "" },
  { key: "running", label: "Running for", value: (w) => w.task?.running_time ?? -1, numeric: true },
  { key: "last", label: "Last activity", value: (w) => parseTime(w.last_activity_time) ?? 0, numeric: true },
  { key: "tags", label: "Tags", value: (w) => (w.tags ?? []).join(", ") },
];

function fleetView() {
  const table = { sort: "id", desc: false, filter: "", page: 0, rows: [] };
  const cards = h("section", { class: "cards" },
    card("live", "Live workers"), card("busy", "Running a task"), card("idle", "Idle"),
    card("peak", "Most active in range"));
  const chart = h("div", { class: "chart", id: "chart-activity" });
  const filter = h("input", {
    id: "filter", type: "search", placeholder: "Filter by worker id", "aria-label": "Filter by worker id",
    oninput: () => { table.filter = filter.value.trim().toLowerCase(); table.page = 0; renderTable(); },
  });
  const head = h("tr", {}, COLUMNS.map((c) => h("th", {
    scope: "col", "data-key": c.key, tabindex: 0,
    onclick: () => sortBy(c.key), onkeydown: (e) => { if (e.key === "Enter") sortBy(c.key); },
  }, c.label)));
  const body = h("tbody", { id: "workers-body" });
  const pager = h("div", { class: "pager", id: "pager" });
  $("#view").replaceChildren(
    cards,
    h("section", { class: "panel" }, h("h2", {}, "Activity ", h("small", { id: "activity-note" })), chart),
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, "Workers ", h("small", { id: "workers-count" })), filter),
      h("div", { class: "table-wrap" }, h("table", { id: "workers" }, h("thead", {}, head), body)),
      pager),
  );

  function sortBy(key) {
    table.desc = table.sort === key ? !table.desc : false;
    table.sort = key;
    renderTable();
  }

  function renderTable() {
    const col = COLUMNS.find((c) => c.key === table.sort);
    const rows = table.rows.filter((w) => w.id.toLowerCase().includes(table.filter));
    rows.sort((a, b) => {
      const x = col.value(a), y = col.value(b);
      const order = col.numeric ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return table.desc ? -order : order;
    });
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    table.page = Math.min(table.page, pages - 1);
    const now = Date.now();
    // only the visible page is in the DOM: 1,000 workers cost 50 rows
    body.replaceChildren(...rows.slice(table.page * PAGE_SIZE, (table.page + 1) * PAGE_SIZE).map((w) => h("tr", {
      onclick: (e) => { if (!e.target.closest("a")) location.hash = workerHash(w.id); },
    },
    h("td", {}, h("a", { href: workerHash(w.id) }, w.id)),
    h("td", {}, COLUMNS[1].value(w)),
    h("td", {}, w.ip ?? ""),
    h("td", {}, COLUMNS[3].value(w)),
    h("td", { class: "mono", title: w.task?.id ?? "" }, w.task ? w.task.id.slice(0, 12) : "–"),
    h("td", { class: "num" }, w.task?.running_time != null ? duration(w.task.running_time) : "–"),
    h("td", { class: "num", title: localTime(parseTime(w.last_activity_time)) }, ago(parseTime(w.last_activity_time), now)),
    h("td", {}, (w.tags ?? []).map((t) => h("span", { class: "tag" }, t))),
    )));
    for (const th of head.children) {
      th.setAttribute("aria-sort", th.dataset.key === table.sort ? (table.desc ? "descending" : "ascending") : "none");
    }
    $("#workers-count").textContent = table.filter ? `${rows.length} of ${table.rows.length}` : `${rows.length}`;
    pager.replaceChildren(
      h("button", { disabled: table.page === 0, onclick: () => { table.page--; renderTable(); } }, "‹ Previous"),
      h("span", {}, `page ${table.page + 1} of ${pages}`),
      h("button", { disabled: table.page >= pages - 1, onclick: () => { table.page++; renderTable(); } }, "Next ›"),
    );
  }

  return {
    async refresh(current) {
      const w = window_();
      const [live, report] = await Promise.all([api.workers(), api.activity(w.from, w.to, w.interval)]);
      if (!current()) return;
      table.rows = live;
      const busy = live.filter((x) => x.task).length;
      setCard("live", live.length);
      setCard("busy", busy);
      setCard("idle", live.length - busy);
      setCard("peak", Math.max(0, ...report.active.counts));
      renderTable();
      const [xs, total, active] = align([
        { dates: report.total.dates, values: report.total.counts },
        { dates: report.active.dates, values: report.active.counts },
      ]);
      // a bucket without any report had no worker: 0, not a gap
      const zero = (v) => v.map((x) => x ?? 0);
      draw(chart, {
        xs, xRange: [w.from, w.to], fmt: (v) => (v == null ? "–" : `${Math.round(v)}`),
        lines: [
          { label: "total", color: color(0), values: zero(total), width: 2 },
          { label: "active (running a task)", color: color(2), values: zero(active), width: 2 },
        ],
      });
      $("#activity-note").textContent = `workers reporting, per ${duration(w.interval * 1000)}`;
    },
  };
}

function card(id, label) {
  return h("div", { class: "card" }, h("div", { class: "card-value", id: `card-${id}` }, "–"), h("div", { class: "card-label" }, label));
}

function setCard(id, value) { $(`#card-${id}`).textContent = String(value); }

function workerHash(id) { return `#/worker/${encodeURIComponent(id)}`; }

// --- worker view ----------------------------------------------------------------------------------------

const CHARTS = [
  { id: "cpu", title: "CPU usage", keys: ["cpu_usage"], fmt: percent, yRange: [0, 100], split: "per core" },
  { id: "gpu", title: "GPU usage", keys: ["gpu_usage"], fmt: percent, yRange: [0, 100], split: "per GPU" },
  { id: "gpu-memory", title: "GPU memory used", keys: ["gpu_memory_used"], fmt: gib, split: "per GPU" },
  { id: "memory", title: "Memory", keys: ["memory_used", "memory_free"], fmt: gib },
  { id: "network", title: "Network", keys: ["network_rx", "network_tx"], fmt: mbs },
  { id: "disk", title: "Disk I/O", keys: ["disk_read", "disk_write"], fmt: mbs },
  { id: "temperature", title: "Temperature", keys: ["cpu_temperature", "gpu_temperature"], fmt: celsius },
];
const LABELS = {
  cpu_usage: "CPU", gpu_usage: "GPU", gpu_memory_used: "used", memory_used: "used", memory_free: "free",
  network_rx: "received", network_tx: "sent", disk_read: "read", disk_write: "write",
  cpu_temperature: "CPU", gpu_temperature: "GPU",
};

function workerView(id) {
  const split = new Set(); // chart ids showing one line per core / GPU
  const head = h("section", { class: "panel worker-head" },
    h("div", { class: "panel-head" },
      h("h2", { id: "worker-id" }, id), h("span", { class: "badge", id: "worker-status" }, "…")),
    h("dl", { class: "facts", id: "worker-facts" }),
    h("div", { class: "keys", id: "metric-keys" }));
  const grid = h("div", { class: "charts" });
  $("#view").replaceChildren(h("p", {}, h("a", { href: "#/" }, "‹ Fleet")), head, grid);
  const panels = new Map();

  function panel(def) {
    if (panels.has(def.id)) return panels.get(def.id);
    const chartEl = h("div", { class: "chart", id: `chart-${def.id}` });
    const toggle = def.split ? h("label", { class: "toggle" }, h("input", {
      type: "checkbox", onchange: (e) => { e.target.checked ? split.add(def.id) : split.delete(def.id); refresh(); },
    }), ` ${def.split}`) : null;
    const el = h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h3", {}, def.title), toggle), chartEl);
    grid.append(el);
    const entry = { el, chartEl };
    panels.set(def.id, entry);
    return entry;
  }

  return {
    async refresh(current) {
      const w = window_();
      const [live, keys] = await Promise.all([api.workers(), api.metricKeys(id)]);
      if (!current()) return;
      const me = live.find((x) => x.id === id);
      renderHead(me, keys);
      if (!keys) { grid.replaceChildren(h("p", { class: "muted" }, "No statistics for this worker in the retained history.")); panels.clear(); return; }
      const reported = new Set(Object.values(keys).flat());
      const defs = CHARTS.filter((d) => d.keys.some((k) => reported.has(k)));
      const pooledKeys = defs.flatMap((d) => d.keys.filter((k) => reported.has(k)));
      const splitKeys = defs.filter((d) => split.has(d.id)).flatMap((d) => d.keys.filter((k) => reported.has(k)));
      const [pooled, perVariant] = await Promise.all([
        api.workerStats(id, pooledKeys, ["avg", "min", "max"], w.from, w.to, w.interval, false),
        splitKeys.length ? api.workerStats(id, splitKeys, ["avg"], w.from, w.to, w.interval, true) : {},
      ]);
      if (!current()) return;
      for (const def of defs) {
        const { chartEl } = panel(def);
        const present = def.keys.filter((k) => pooled[k]);
        let lines, series;
        if (split.has(def.id)) {
          series = present.flatMap((k) => Object.entries(perVariant[k] ?? {}).map(([variant, s]) => ({ k, variant, s })));
          // "*": the pooled series, where there is nothing to split (one GPU, or a server below 2.32)
          const order = (v) => (v === "*" ? -1 : Number(v));
          series.sort((a, b) => order(a.variant) - order(b.variant));
          const aligned = align(series.map(({ s }) => ({ dates: s.dates, values: s.avg })));
          lines = series.map(({ k, variant }, i) => ({
            label: `${present.length > 1 ? LABELS[k] + " " : ""}${variant === "*" ? "all" : "#" + variant}`, color: color(i), values: aligned[i + 1], width: 1,
          }));
          draw(chartEl, { xs: aligned[0], lines, fmt: def.fmt, yRange: def.yRange, xRange: [w.from, w.to] });
        } else {
          const parts = present.flatMap((k) => [pooled[k]["*"]].map((s) => ({ k, s })));
          const aligned = align(parts.flatMap(({ s }) => ["avg", "min", "max"].map((a) => ({ dates: s.dates, values: s[a] }))));
          lines = parts.map(({ k }, i) => ({
            label: LABELS[k] ?? k, color: color(i), values: aligned[1 + 3 * i],
            lower: aligned[2 + 3 * i], upper: aligned[3 + 3 * i],
          }));
          draw(chartEl, { xs: aligned[0], lines, fmt: def.fmt, yRange: def.yRange, xRange: [w.from, w.to] });
        }
      }
    },
  };

  function renderHead(me, keys) {
    const status = $("#worker-status");
    status.textContent = me ? "live" : keys ? "expired: history only" : "unknown";
    status.className = `badge ${me ? "live" : "expired"}`;
    const facts = me ? [
      ["User", me.user?.name ?? me.user?.id], ["IP", me.ip],
      ["Queues", (me.queues ?? []).map((q) => q.name ?? q.id).join(", ") || "–"],
      ["Task", me.task ? `${me.task.id} (running for ${duration(me.task.running_time ?? 0)})` : "idle"],
      ["Registered", localTime(parseTime(me.register_time))],
      ["Last activity", ago(parseTime(me.last_activity_time))],
      ["Tags", (me.tags ?? []).join(", ") || "–"],
    ] : [["Status", "not registered: it left or timed out; its retained history is shown"]];
    $("#worker-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")]));
    $("#metric-keys").replaceChildren(...Object.entries(keys ?? {}).sort().map(([cat, ks]) =>
      h("div", {}, h("span", { class: "muted" }, `${cat}: `), ks.map((k) => h("code", {}, k)))));
  }
}

// --- routing --------------------------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/worker\/(.+)$/);
  const id = match ? decodeURIComponent(match[1]) : null;
  $("#crumbs").textContent = id ? `/ ${id}` : "";
  document.title = id ? `${id} · workerhub` : "workerhub";
  for (const el of document.querySelectorAll(".chart")) release(el);
  state.view = id ? workerView(id) : fleetView();
  refresh();
}

function init() {
  const ranges = $("#ranges");
  for (const key of Object.keys(RANGES)) {
    ranges.append(h("button", {
      "data-range": key, "aria-pressed": String(key === state.range),
      onclick: () => {
        state.range = key;
        localStorage.setItem("workerhub.range", key);
        for (const b of ranges.children) b.setAttribute("aria-pressed", String(b.dataset.range === key));
        refresh();
      },
    }, key));
  }
  $("#pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("#pause").textContent = state.paused ? "Resume" : "Pause";
    $("#pause").setAttribute("aria-pressed", String(state.paused));
    schedule();
    if (!state.paused) refresh();
  });
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", onLogout);
  $("#logout").hidden = !api.token();
  window.addEventListener("hashchange", route);
  schedule();
  route();
}

init();
