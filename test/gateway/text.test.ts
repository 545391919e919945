// Pieces that turn tokens into text: incremental detokenization, stop strings, Prometheus output.
import { describe, expect, test } from "bun:test";
import { IncrementalDetokenizer } from "../../src/gateway/detokenizer.ts";
import { Counter, Histogram } from "../../src/gateway/prometheus.ts";
import { StopMatcher } from "../../src/gateway/stop.ts";
import { loadCodec } from "./helpers.ts";

describe("IncrementalDetokenizer", () => {
  test("never emits a broken character, and the pieces add up to the full decode", async () => {
    const codec = await loadCodec();
    const text = "Caf\u00e9 \u{1F600}\u{1F600} na\u00efve \u4e2d\u6587 -- ok";
    const ids = codec.encode(text, { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThan(text.length / 2); // byte-level pieces, so characters are split
    const detok = new IncrementalDetokenizer(codec);
    const pieces = ids.map((id) => detok.push(id));
    pieces.push(detok.flush());
    for (const p of pieces) expect(p).not.toContain("\uFFFD");
    expect(pieces.join("")).toBe(text);
    expect(pieces.filter((p) => p === "").length).toBeGreaterThan(1); // held back mid-character
  });

  test("special tokens are skipped; an unfinished character is released at the end", async () => {
    const codec = await loadCodec();
    const emoji = codec.encode("\u{1F600}", { addSpecialTokens: false });
    const detok = new IncrementalDetokenizer(codec);
    expect(detok.push(0)).toBe(""); // BOS
    expect(emoji.slice(0, -1).map((id) => detok.push(id)).join("")).toBe("");
    expect(detok.flush()).toContain("\uFFFD");
  });
});

describe("StopMatcher", () => {
  test("matches across deltas and never shows the stop string or its start", () => {
    const m = new StopMatcher(["STOP"]);
    expect(m.push("abc S")).toEqual({ text: "abc ", stopped: false });
    expect(m.push("T")).toEqual({ text: "", stopped: false });
    expect(m.push("OPxyz")).toEqual({ text: "", stopped: true });
  });

  test("releases held text when it turns out not to be a stop string", () => {
    const m = new StopMatcher(["STOP", "\n\n"]);
    expect(m.push("a ST")).toEqual({ text: "a ", stopped: false });
    expect(m.push("ART\n")).toEqual({ text: "START", stopped: false });
    expect(m.flush()).toBe("\n");
  });

  test("the earliest of several stop strings wins", () => {
    const m = new StopMatcher(["world", "lo"]);
    expect(m.push("hello world")).toEqual({ text: "hel", stopped: true });
  });

  test("without stop strings everything passes straight through", () => {
    const m = new StopMatcher([]);
    expect(m.push("abc")).toEqual({ text: "abc", stopped: false });
    expect(m.flush()).toBe("");
  });
});

describe("Prometheus text", () => {
  test("counters with labels and cumulative histograms", () => {
    const c = new Counter("x_total", "help");
    c.inc({ status: "200" });
    c.inc({ status: "200" }, 2);
    c.inc({ status: 'a"b' });
    expect(c.render()).toContain('x_total{status="200"} 3\n');
    expect(c.render()).toContain('x_total{status="a\\"b"} 1\n');
    const h = new Histogram("lat_seconds", "help", [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    const out = h.render();
    expect(out).toContain("# TYPE lat_seconds histogram");
    expect(out).toContain('lat_seconds_bucket{le="0.1"} 1\n');
    expect(out).toContain('lat_seconds_bucket{le="1"} 2\n');
    expect(out).toContain('lat_seconds_bucket{le="+Inf"} 3\n');
    expect(out).toContain("lat_seconds_count 3\n");
  });
});
