// A 400 for a request with several bad fields names every one of them, in words a client can act on,
// so it is fixed in one round trip (zod reports all the issues; the first used to be the only one).
import { describe, expect, test } from "bun:test";
import { harness, MODEL, post } from "./helpers.ts";

describe("validation errors", () => {
  test("every bad field is listed in the message; param names the first", async () => {
    const h = await harness();
    const res = await post(h, "/v1/chat/completions", {
      model: MODEL, messages: [{ role: "user", content: "hi" }], temperature: 3, max_tokens: 0, top_p: 0, n: "two",
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { message: string; param: string; type: string; code: string } };
    expect(error.type).toBe("invalid_request_error");
    expect(error.message).toContain("temperature: must be <= 2");
    expect(error.message).toContain("max_tokens: must be >= 1");
    expect(error.message).toContain("top_p: must be > 0");
    expect(error.message).toContain("n: ");
    expect(error.message.split("; ")).toHaveLength(4);
    expect(["max_tokens", "n", "temperature", "top_p"]).toContain(error.param);
  });

  test("nested fields are named by their path", async () => {
    const h = await harness();
    const res = await post(h, "/v1/completions", { model: MODEL, prompt: "x", stop_token_ids: [-1, 3, -2], min_p: 2 });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { message: string } };
    expect(error.message).toContain("stop_token_ids[0]: must be >= 0");
    expect(error.message).toContain("stop_token_ids[2]: must be >= 0");
    expect(error.message).toContain("min_p: must be <= 1");
  });

  test("a single bad field reads as before", async () => {
    const h = await harness();
    const res = await post(h, "/v1/completions", { model: MODEL, prompt: "x", temperature: -1 });
    const { error } = (await res.json()) as { error: { message: string; param: string } };
    expect(error.message).toBe("temperature: must be >= 0");
    expect(error.param).toBe("temperature");
  });
});
