// Every call the dashboard makes to workerhub goes through this module: switching the API dialect
// (e.g. to the 2.32+ get_stats shape) is a change to this file only.

const PREFIX = "/v2.4/";
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

async function call(name, body, headers = {}) {
  const auth = token();
  const response = await fetch(PREFIX + name, {
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
 * One worker's series over [from, to] (epoch seconds), bucketed by `interval` seconds.
 * Returns {key: {variant: {dates: [ms], aggregation: [values]}}}; pooled series have variant "*".
 */
export async function workerStats(workerId, keys, aggregations, from, to, interval, split) {
  const items = keys.flatMap((key) => aggregations.map((aggregation) => ({ key, aggregation })));
  const data = await call("workers.get_stats", {
    worker_ids: [workerId], from_date: from, to_date: to, interval, items, split_by_variant: split,
  });
  const out = {};
  for (const worker of data.workers) {
    for (const m of worker.metrics) {
      const series = ((out[m.metric] ??= {})[split ? m.variant : "*"] ??= { dates: m.dates });
      for (const s of m.stats) series[s.aggregation] = s.values;
    }
  }
  return out;
}

/** Fleet activity: {total: {dates, counts}, active: {dates, counts}} (dates in epoch ms). */
export async function activity(from, to, interval) {
  return call("workers.get_activity_report", { from_date: from, to_date: to, interval });
}
