// Adaptive speculation, the policy alone: a sequence pauses drafting when its drafts keep being
// rejected, probes with one draft token after 16 steps (twice as long after each rejected probe, up
// to 128), and drafts fully again after an accepted probe.
import { expect, test } from "bun:test";
import { Sequence } from "../../src/engine/sequence.ts";
import type { GenerateRequest } from "../../src/engine/types.ts";

const req = { id: "s", prompt_ids: [0, 1, 2], params: { seed: 1 } } as unknown as GenerateRequest;

/** Steps until the sequence asks for drafts again (draftTokens > 0), and what it asks for. */
function untilDraft(s: Sequence, k: number): [number, number] {
  for (let n = 1; n <= 1000; n++) {
    const d = s.draftTokens(k);
    if (d > 0) return [n, d];
  }
  throw new Error("never drafts again");
}

test("drafts k while drafts are accepted, pauses when they are rejected", () => {
  const s = new Sequence(req, 100);
  for (let i = 0; i < 20; i++) {
    expect(s.draftTokens(3)).toBe(3);
    s.noteDrafts(3, 2);
  }
  s.noteDrafts(3, 0);
  s.noteDrafts(3, 0);
  s.noteDrafts(3, 0);
  expect(s.draftTokens(3)).toBe(0);
});

test("probes with one token after 16 steps, backs off to 128, resumes after an accepted probe", () => {
  const s = new Sequence(req, 100);
  for (let i = 0; i < 4; i++) s.noteDrafts(1, 0); // no evidence of any acceptance
  const gaps: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [n, d] = untilDraft(s, 3);
    expect(d).toBe(1);
    gaps.push(n);
    s.noteDrafts(1, 0); // the probe is rejected
  }
  expect(gaps).toEqual([16, 32, 64, 128, 128]);
  untilDraft(s, 3);
  s.noteDrafts(1, 1); // accepted: draft fully again, with fresh evidence
  expect(s.draftTokens(3)).toBe(3);
  s.noteDrafts(3, 3);
  expect(s.draftTokens(3)).toBe(3);
});

test("a few early rejections need evidence before they pause anything", () => {
  const s = new Sequence(req, 100);
  s.noteDrafts(1, 0);
  expect(s.draftTokens(1)).toBe(1); // 1 drafted token is not enough to judge
});
