// --plot FILE: the latency histograms of a run (TTFT, TPOT, ITL, E2EL; the median and p99 marked) as
// an SVG written here, or a PNG rendered from that same SVG by resvg (@resvg/resvg-js). resvg draws
// text only with a font it can read: DejaVu Sans from the npm package dejavu-fonts-ttf (a project
// dependency, so a fresh install has it), else the system's (Debian's fonts-dejavu-core), else
// whatever system font it finds; without any the PNG has bars and no labels, and we say so.
import { existsSync } from "node:fs";
import { percentile } from "./report.ts";

export interface Series { title: string; values: number[] } // values in ms

const W = 440, H = 280, PAD = { l: 56, r: 16, t: 44, b: 44 }, BINS = 30;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const num = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

function panel(s: Series, x0: number, y0: number): string {
  const pw = W - PAD.l - PAD.r, ph = H - PAD.t - PAD.b;
  let out = `<g transform="translate(${x0},${y0})">`;
  out += `<rect x="0.5" y="0.5" width="${W - 1}" height="${H - 1}" fill="#fff" stroke="#ddd"/>`;
  const v = s.values.filter(Number.isFinite).sort((a, b) => a - b);
  const p50 = percentile(v, 50), p99 = percentile(v, 99);
  out += `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(s.title)} (ms)</text>`;
  out += `<text x="${W / 2}" y="36" text-anchor="middle" font-size="11" fill="#555">n=${v.length}${v.length ? `  median=${num(p50)}  p99=${num(p99)}` : ""}</text>`;
  if (v.length === 0) return out + `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#999">no data</text></g>`;
  const lo = v[0]!, hi = v.at(-1)! > lo ? v.at(-1)! : lo + 1;
  const counts = new Array<number>(BINS).fill(0);
  for (const x of v) counts[Math.min(BINS - 1, Math.floor(((x - lo) / (hi - lo)) * BINS))]! += 1;
  const top = Math.max(...counts);
  const X = (x: number) => PAD.l + ((x - lo) / (hi - lo)) * pw, Y = (c: number) => PAD.t + ph - (c / top) * ph;
  counts.forEach((c, i) => {
    if (c === 0) return;
    const bw = pw / BINS;
    out += `<rect x="${(PAD.l + i * bw + 0.5).toFixed(1)}" y="${Y(c).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(PAD.t + ph - Y(c)).toFixed(1)}" fill="#4c78a8"/>`;
  });
  out += `<line x1="${PAD.l}" y1="${PAD.t + ph}" x2="${PAD.l + pw}" y2="${PAD.t + ph}" stroke="#333"/>`;
  out += `<line x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${PAD.t + ph}" stroke="#333"/>`;
  for (let i = 0; i <= 4; i++) {
    const x = lo + ((hi - lo) * i) / 4, c = Math.round((top * i) / 4);
    out += `<text x="${X(x).toFixed(1)}" y="${PAD.t + ph + 16}" text-anchor="middle" font-size="10">${num(x)}</text>`;
    out += `<text x="${PAD.l - 6}" y="${(Y(c) + 3).toFixed(1)}" text-anchor="end" font-size="10">${c}</text>`;
  }
  out += `<text x="${PAD.l + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="11" fill="#555">ms</text>`;
  out += `<text x="14" y="${PAD.t + ph / 2}" text-anchor="middle" font-size="11" fill="#555" transform="rotate(-90 14 ${PAD.t + ph / 2})">requests</text>`;
  for (const [x, label, color] of [[p50, "p50", "#e45756"], [p99, "p99", "#f58518"]] as const) {
    out += `<line x1="${X(x).toFixed(1)}" y1="${PAD.t}" x2="${X(x).toFixed(1)}" y2="${PAD.t + ph}" stroke="${color}" stroke-dasharray="4 3"/>`;
    out += `<text x="${(X(x) + 3).toFixed(1)}" y="${PAD.t + 10}" font-size="10" fill="${color}">${label}</text>`;
  }
  return out + "</g>";
}

/** The figure: one histogram per series, two a row, under a title. */
export function latencySvg(title: string, series: Series[]): string {
  const cols = 2, rows = Math.ceil(series.length / cols), width = cols * W + (cols + 1) * 10, height = rows * H + (rows + 1) * 10 + 30;
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`;
  out += `<rect width="${width}" height="${height}" fill="#f7f7f7"/>`;
  out += `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`;
  series.forEach((s, i) => (out += panel(s, 10 + (i % cols) * (W + 10), 40 + Math.floor(i / cols) * (H + 10))));
  return out + "</svg>\n";
}

const FONTS = [
  new URL("../../node_modules/dejavu-fonts-ttf/ttf/DejaVuSans.ttf", import.meta.url).pathname,
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu: fonts-dejavu-core
  "/usr/share/fonts/dejavu/DejaVuSans.ttf", // Fedora
  "/usr/share/fonts/TTF/DejaVuSans.ttf", // Arch
  "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
];

/** Writes the figure to `file` (.svg or .png); returns warnings for the user (a missing font). */
export async function writePlot(file: string, svg: string): Promise<string[]> {
  if (file.toLowerCase().endsWith(".svg")) {
    await Bun.write(file, svg);
    return [];
  }
  const { Resvg } = await import("@resvg/resvg-js");
  const font = FONTS.find((f) => existsSync(f));
  const warnings = font ? [] : ["DejaVu Sans not found: the PNG's text uses whatever system font resvg finds (none: no labels); " +
    "`apt-get install fonts-dejavu-core` fixes it, or plot to .svg"];
  const r = new Resvg(svg, {
    background: "#ffffff",
    font: font ? { fontFiles: [font], loadSystemFonts: false, defaultFontFamily: "DejaVu Sans" } : { loadSystemFonts: true },
  });
  await Bun.write(file, r.render().asPng());
  return warnings;
}
