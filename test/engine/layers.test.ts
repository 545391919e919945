// The layering the design asks for (issue 13, "Structure"): the engine reads no config files and
// names no actor module (the CLI composes them, src/commands/backend.ts); the step messages are the
// protocol module's own, and the engine takes them from there, not from the model.
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";

const root = new URL("../..", import.meta.url).pathname;
const engine = readdirSync(`${root}src/engine`).filter((f) => f.endsWith(".ts")).map((f) => [f, readFileSync(`${root}src/engine/${f}`, "utf8")] as const);
const imports = (src: string) => [...src.matchAll(/^import[^;]*?from "([^"]+)";/gms)].map((m) => m[1]);

describe("layers", () => {
  test("the engine parses no config file and names no actor module", () => {
    for (const [f, src] of engine) {
      expect({ f, actors: imports(src).filter((i) => i.includes("actors/")) }).toEqual({ f, actors: [] });
      expect({ f, loads: /\b(loadScaling|loadModelConfig|readFileSync)\b|actors\/index/.test(src) }).toEqual({ f, loads: false });
    }
  });

  test("the protocol module owns the step messages; the engine imports them from it", () => {
    const protocol = readFileSync(`${root}src/protocol.ts`, "utf8");
    expect(imports(protocol)).toEqual([]);
    for (const name of ["SeqWork", "SeqResult", "SpecWork", "SpecResult"]) expect(protocol).toContain(`export interface ${name} `);
    for (const [f, src] of engine) {
      const fromModel = [...src.matchAll(/import (type )?\{([^}]*)\} from "\.\.\/model\/[^"]+";/g)].flatMap((m) => m[2].split(",").map((s) => s.trim()));
      expect({ f, messages: fromModel.filter((n) => /\b(SeqWork|SeqResult|SpecWork|SpecResult|SampleSpec|Sampled)\b/.test(n)) }).toEqual({ f, messages: [] });
    }
  });
});
