// Numbers with units, relative times and durations; times are shown in the browser's time zone.

export function percent(v) { return v == null ? "–" : `${v.toFixed(v < 10 ? 1 : 0)} %`; }
export function gib(mib) { return mib == null ? "–" : `${(mib / 1024).toFixed(1)} GiB`; }
export function mbs(v) { return v == null ? "–" : `${v.toFixed(v < 10 ? 2 : 1)} MB/s`; }
export function celsius(v) { return v == null ? "–" : `${v.toFixed(0)} °C`; }

/** An API time ("2026-12-01T21:15:28.32", UTC without a zone) as epoch ms. */
export function parseTime(text) {
  if (!text) return null;
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function ago(ms, now = Date.now()) {
  if (ms == null || Number.isNaN(ms)) return "–";
  return `${duration(Math.max(0, now - ms))} ago`;
}

/** A duration in ms as "42 s", "5 min", "3 h 12 min", "2 d 4 h". */
export function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export function localTime(ms) {
  if (ms == null || Number.isNaN(ms)) return "–";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}
