// Every call the dashboard makes to workerhub goes through this module, on explicit versions: the 2.34
// dialect (zero-filled grids, per-stat dates, per-GPU resource_series), and 2.4 only for the per-core
// split, which 2.32+ no longer offers. A server whose max version is lower serves its max for /v2.34/:
// the readers below accept both shapes.

const PREFIX = "/v2.34/";
const PREFIX_2_4 = "/v2.4/";
const TOKEN_KEY = "workerhub.token";

export class ApiError extends Error {
  constructor(call, status, subcode, message) {
    super(`${call}: ${status}/${subcode} ${message}`);
    this.call = call;
    this.status = status;
    this.subcode = subcode;
  }
  get unauthorized() { return this.status === 401; }
}

/** The token from auth.login, kept for this browser tab only (sessionStorage). */
export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function logout() { sessionStorage.removeItem(TOKEN_KEY); }

async function call(name, body, headers = {}, prefix = PREFIX) {
  const auth = token();
  const response = await fetch(prefix + name, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Accept": "application/json",
      ...(auth ? { "Authorization": `Bearer ${auth}` } : {}),
      ...headers,
    },
    body: JSON.stringify(body ?? {}),
    credentials: "omit", // never the workerhub_token cookie: only this tab's token identifies the user
  });
  let reply;
  try {
    reply = await response.json();
  } catch {
    throw new ApiError(name, response.status, 0, "the reply is not JSON");
  }
  const meta = reply.meta ?? {};
  if (!response.ok) {
    throw new ApiError(name, response.status, meta.result_subcode ?? 0, meta.result_msg ?? response.statusText);
  }
  return reply.data;
}

/** auth.login with HTTP Basic credentials; keeps the token for the following calls. */
export async function login(accessKey, secretKey) {
  const basic = btoa(`${accessKey}:${secretKey}`);
  const data = await call("auth.login", {}, { "Authorization": `Basic ${basic}` });
  sessionStorage.setItem(TOKEN_KEY, data.token);
  return data;
}

/** Live workers: [{id, user, ip, queues, task, last_activity_time, tags, ...}]. */
export async function workers() {
  return (await call("workers.get_all", {})).workers;
}

/** {category: [metric keys]} a worker has reported; null when it has no stats at all. */
export async function metricKeys(workerId) {
  try {
    const data = await call("workers.get_metric_keys", { worker_ids: [workerId] });
    return Object.fromEntries(data.categories.map((c) => [c.name, c.metric_keys]));
  } catch (err) {
    if (err instanceof ApiError && err.status === 400 && err.subcode === 1005) return null;
    throw err;
  }
}

/**
 * One worker's series over [from, to] (epoch seconds), bucketed by `interval` seconds (40 s at least at 2.32+).
 * Returns {key: {variant: {dates: [ms], aggregation: [values]}}}: pooled series have variant "*"; with
 * `split`, gpu_* keys come per GPU (2.34 `split_by_resource`; a worker with one GPU, or a server below
 * 2.32, answers only the pooled "*") and every other key per core (`/v2.4/` `split_by_variant`).
 * A 2.32+ bucket whose requested values are all 0 is null: zero-filled, nobody reported in it (upstream
 * records no zero readings).
 */
export async function workerStats(workerId, keys, aggregations, from, to, interval, split) {
  const request = (ks, prefix, extra) => call("workers.get_stats", {
    worker_ids: [workerId], from_date: from, to_date: to, interval,
    items: ks.flatMap((key) => aggregations.map((aggregation) => ({ key, aggregation }))), ...extra,
  }, {}, prefix);
  const gpu = split ? keys.filter((k) => k.startsWith("gpu_")) : keys;
  const cores = split ? keys.filter((k) => !k.startsWith("gpu_")) : [];
  const [head, old] = await Promise.all([
    gpu.length ? request(gpu, PREFIX, split ? { split_by_resource: true } : {}) : { workers: [] },
    cores.length ? request(cores, PREFIX_2_4, { split_by_variant: true }) : { workers: [] },
  ]);
  const out = {};
  for (const worker of [...head.workers, ...old.workers]) {
    for (const m of worker.metrics) {
      const series = (out[m.metric] ??= {});
      if (m.dates) { // the 2.4 shape: one metric entry per variant, its dates on the metric
        const s = (series[m.variant ?? "*"] ??= { dates: m.dates });
        for (const stat of m.stats) s[stat.aggregation] = stat.values;
        continue;
      }
      const dates = m.stats[0]?.dates ?? [];
      const empty = dates.map((_, i) => m.stats.every((stat) => stat.values[i] === 0));
      const gap = (values) => values.map((v, i) => (empty[i] ? null : v));
      const pooled = (series["*"] ??= { dates });
      for (const stat of m.stats) {
        pooled[stat.aggregation] = gap(stat.values);
        for (const r of stat.resource_series ?? []) {
          (series[r.name] ??= { dates })[stat.aggregation] = r.values.map((v) => (v === 0 ? null : v));
        }
      }
      if (split && Object.keys(series).length > 1) delete series["*"];
    }
  }
  return out;
}

/** Fleet activity: {total: {dates, counts}, active: {dates, counts}} (dates in epoch ms; zero-filled at 2.32+). */
export async function activity(from, to, interval) {
  return call("workers.get_activity_report", { from_date: from, to_date: to, interval });
}
