// uPlot charts: time series with avg lines and min/max bands, colours from the page's theme.

/* global uPlot */

const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16"];

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

export function color(i) { return PALETTE[i % PALETTE.length]; }

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

/**
 * Align series that may have different bucket dates on one x axis (seconds); missing buckets are null.
 * `series`: [{dates: [ms], values: [..]}] -> [xs, ...aligned values].
 */
export function align(series) {
  const xs = [...new Set(series.flatMap((s) => s.dates))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const out = series.map((s) => {
    const row = new Array(xs.length).fill(null);
    s.dates.forEach((d, i) => { row[index.get(d)] = s.values[i] ?? null; });
    return row;
  });
  return [xs.map((x) => x / 1000), ...out];
}

/**
 * (Re)draw a chart in `el`. `lines`: [{label, color, values, lower?, upper?, width?}], where lower/upper
 * are a min/max band drawn around the line. `xs` and `xRange` ([from, to]) in epoch seconds; `fmt` formats
 * a value with its unit.
 */
export function draw(el, { xs, lines, fmt, yRange, xRange }) {
  const data = [xs];
  const series = [{}];
  const bands = [];
  for (const line of lines) {
    const banded = line.upper && line.lower;
    data.push(line.values);
    series.push({ label: banded ? `${line.label} avg` : line.label, stroke: line.color, width: line.width ?? 1.5, value: (u, v) => fmt(v) });
    if (banded) {
      const upper = data.push(line.upper) - 1;
      series.push({ label: "max", stroke: alpha(line.color, 0.35), width: 1, value: (u, v) => fmt(v) });
      const lower = data.push(line.lower) - 1;
      series.push({ label: "min", stroke: alpha(line.color, 0.35), width: 1, value: (u, v) => fmt(v) });
      bands.push({ series: [upper, lower], fill: alpha(line.color, 0.15) });
    }
  }
  const axis = { stroke: css("--muted"), grid: { stroke: css("--grid"), width: 1 }, ticks: { stroke: css("--grid") } };
  const opts = {
    width: Math.max(200, el.clientWidth),
    height: 220,
    series,
    bands,
    // the x axis spans the chosen range, also where there is no data (a worker that left hours ago)
    scales: { x: xRange ? { time: true, auto: false, range: xRange } : { time: true }, y: yRange ? { range: yRange } : { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, 1e-6) * 1.05] } },
    axes: [axis, { ...axis, size: 80, values: (u, ticks) => ticks.map(fmt) }],
    legend: { live: true },
    cursor: { points: { size: 5 } },
  };
  el._chart?.destroy();
  el.replaceChildren();
  const chart = new uPlot(opts, data, el);
  el._chart = chart;
  // what is drawn, for the browser tests and for anyone inspecting the page: lines, and buckets holding a
  // value (a zero-filled grid's empty buckets are gaps, not points)
  el.dataset.series = String(lines.length);
  el.dataset.points = String(xs.filter((_, i) => lines.some((line) => line.values[i] != null)).length);
  if (!el._resize) {
    el._resize = new ResizeObserver(() => el._chart?.setSize({ width: Math.max(200, el.clientWidth), height: 220 }));
    el._resize.observe(el);
  }
}

/** Free a chart that leaves the page (its canvas and its resize observer). */
export function release(el) {
  el._resize?.disconnect();
  el._chart?.destroy();
  el._resize = el._chart = null;
}
