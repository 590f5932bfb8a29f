// Number formatting for labels, tooltips and counters. Pure: no DOM.

const SUFFIXES = [
  [1e9, "G"],
  [1e6, "M"],
  [1e3, "k"],
];

/** An integer with thin grouping: 12345 -> "12,345"; null/NaN -> "–". */
export function formatInt(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  return Math.round(Number(value)).toLocaleString("en-US");
}

/** A compact number: 1234 -> "1.2k", 0.01234 -> "0.0123", 12.5 -> "12.5". */
export function formatCompact(value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  const x = Number(value);
  const abs = Math.abs(x);
  for (const [scale, suffix] of SUFFIXES) {
    if (abs >= scale) return `${trim((x / scale).toPrecision(digits - 1 || 1))}${suffix}`;
  }
  if (x === 0) return "0";
  if (abs >= 1) return trim(x.toFixed(Math.max(0, digits - 1 - Math.floor(Math.log10(abs)))));
  return trim(x.toPrecision(digits));
}

/** A fitness (distance in world units) with two decimals: 3.14159 -> "3.14". */
export function formatFitness(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  return Number(value).toFixed(2);
}

/**
 * A fraction as a percentage: 0.1234 -> "12.3%". A small fraction keeps two significant
 * digits instead of rounding to nothing: 0.00058 -> "0.058%", not "0.1%"; 0.0002 -> "0.02%".
 */
export function formatPercent(fraction, digits = 1) {
  if (fraction === null || fraction === undefined || !Number.isFinite(Number(fraction))) return "–";
  const percent = Number(fraction) * 100;
  if (percent !== 0 && Math.abs(percent) < 10 ** (1 - digits)) return `${trim(percent.toPrecision(2))}%`;
  return `${percent.toFixed(digits)}%`;
}

/**
 * Labels of evenly spaced axis ticks (chart.niceTicks): as many decimals as their spacing
 * needs, so neighbours never read the same ("0.1%", "0.2%" for coverage ticks 0.001, 0.002;
 * "11.5k", "12k", "12.5k"), and no more.
 * @param {number[]} ticks  increasing, evenly spaced.
 * @param {{percent?: boolean}} [options]  percent: the ticks are fractions shown as percentages.
 * @returns {string[]}
 */
export function formatTicks(ticks, { percent = false } = {}) {
  if (ticks.length < 2) return ticks.map((t) => (percent ? formatPercent(t) : formatCompact(t)));
  const scale = percent ? 100 : 1;
  const step = Math.abs(ticks[1] - ticks[0]) * scale;
  const largest = Math.max(...ticks.map((t) => Math.abs(t * scale)));
  const [divisor, suffix] = percent ? [1, "%"] : (SUFFIXES.find(([s]) => largest >= s) ?? [1, ""]);
  const decimals = Math.max(0, Math.ceil(-Math.log10(step / divisor) - 1e-6));
  return ticks.map((t) => {
    if (Math.abs(t * scale) < step * 1e-6) return percent ? "0%" : "0"; // not "-0" or "0k"
    return `${trim(((t * scale) / divisor).toFixed(decimals))}${suffix}`;
  });
}

/** A duration in seconds: 5 -> "5s", 125 -> "2m 05s", 3725 -> "1h 02m". */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

function trim(text) {
  return text.includes(".") && !text.includes("e") ? text.replace(/\.?0+$/, "") : text;
}
