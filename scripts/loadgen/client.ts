// One streaming request to an OpenAI-compatible server (ours, vLLM, SGLang) and what it measured:
// time to first token, the gaps between chunks (ITL) and the whole request (E2EL), in ms.
import type { BenchRequest } from "./datasets.ts";

export interface ClientOptions {
  baseUrl: string; // scheme://host:port, no /v1
  path: string; // /v1/completions or /v1/chat/completions
  chat: boolean; // the body and chunks are chat-shaped
  model: string;
  ignoreEos: boolean;
  apiKey: string | null;
  requestTimeoutS: number;
}

export interface Outcome {
  ok: boolean;
  error?: string;
  ttft: number;
  itl: number[];
  e2el: number;
  promptLen: number; // the dataset's count (tokens)
  outputTokens: number; // the server's usage when it sends one, else chunks seen
}

export async function sendOne(o: ClientOptions, r: BenchRequest, signal: AbortSignal): Promise<Outcome> {
  const body = {
    model: o.model, stream: true, stream_options: { include_usage: true }, temperature: 0, max_tokens: r.outputLen,
    ...(o.chat ? { messages: [{ role: "user", content: r.prompt }] } : { prompt: r.prompt }), ...(o.ignoreEos ? { ignore_eos: true } : {}),
  };
  const out: Outcome = { ok: false, ttft: 0, itl: [], e2el: 0, promptLen: r.promptLen, outputTokens: 0 };
  const t0 = performance.now();
  let last = t0, chunks = 0;
  try {
    const res = await fetch(`${o.baseUrl}${o.path}`, {
      method: "POST", signal: AbortSignal.any([signal, AbortSignal.timeout(o.requestTimeoutS * 1000)]), body: JSON.stringify(body),
      headers: { "content-type": "application/json", ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
    });
    if (!res.ok || !res.body) return { ...out, error: `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}` };
    const decoder = new TextDecoder();
    let buf = "", done = false;
    for await (const bytes of res.body) {
      buf += decoder.decode(bytes, { stream: true });
      let cut: number;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
        const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
        if (!data) continue;
        if (data === "[DONE]") { done = true; continue; }
        const msg = JSON.parse(data);
        if (msg.error) return { ...out, error: `stream error: ${msg.error.message}` };
        if (msg.usage) out.outputTokens = msg.usage.completion_tokens;
        const text = o.chat ? msg.choices?.[0]?.delta?.content : msg.choices?.[0]?.text;
        if (!text) continue;
        const now = performance.now();
        if (chunks++ === 0) out.ttft = now - t0;
        else out.itl.push(now - last);
        last = now;
      }
    }
    out.e2el = performance.now() - t0;
    if (!done) return { ...out, error: "stream ended without [DONE]" };
    if (!out.outputTokens) out.outputTokens = chunks;
    return { ...out, ok: true };
  } catch (err) {
    return { ...out, error: signal.aborted ? "cut off by --max-seconds" : String((err as Error).message ?? err) };
  }
}
