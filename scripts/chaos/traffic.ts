// The chaos run's clients: bounded, loopback-only mixed traffic against one base URL. Greedy
// completions (streamed or not) are compared with a clean run; disconnects, bad inputs and huge
// prompts must be answered (a 4xx for bad ones) and must not disturb the others.
//
//   Traffic(base, model, rng, reference) { run(untilMs, clients), pause(), resume(), tally, health }
//   greedy(base, model, prompt, maxTokens, stream, signal?) -> {status, text, error?}

export const PROMPTS = [
  "The quick brown fox", "Once upon a time", "In the beginning", "A fortune cookie says:",
  "Tomorrow will bring", "The moon", "Patience is", "Seven days later",
];
export const MAX_TOKENS = 24;

export interface Outcome {
  status: number; // HTTP status; 0 = no answer (connection error)
  text: string;
  error?: string; // an error event in the stream, or the error body
}

/** One greedy completion; streamed answers are joined from their deltas. */
export async function greedy(base: string, model: string, prompt: string, stream: boolean, signal?: AbortSignal): Promise<Outcome> {
  let res: Response;
  try {
    res = await fetch(`${base}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json" }, signal,
      body: JSON.stringify({ model, prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, stream }),
    });
  } catch (e) {
    return { status: 0, text: "", error: (e as Error).message };
  }
  if (!stream || res.status !== 200) {
    const body = (await res.json().catch(() => ({}))) as { choices?: { text: string }[]; error?: { message: string } };
    return { status: res.status, text: body.choices?.[0]?.text ?? "", error: body.error?.message };
  }
  let text = "", error: string | undefined;
  try {
    for await (const data of sseData(res.body!)) {
      if (data === "[DONE]") break;
      const ev = JSON.parse(data) as { choices?: { text: string }[]; error?: { message: string } };
      if (ev.error) error = ev.error.message;
      text += ev.choices?.[0]?.text ?? "";
    }
  } catch (e) {
    error = `stream cut: ${(e as Error).message}`;
  }
  return { status: 200, text, error };
}

async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of ev.split("\n")) if (line.startsWith("data: ")) yield line.slice(6);
    }
  }
}

/** Requests that must get a 4xx: malformed, nonsensical or hostile. */
function badRequests(model: string): { name: string; init: RequestInit }[] {
  const json = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return [
    { name: "not json", init: { method: "POST", headers: { "content-type": "application/json" }, body: "{\"model\": " } },
    { name: "text/plain", init: { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ model, prompt: "x" }) } },
    { name: "negative max_tokens", init: json({ model, prompt: "x", max_tokens: -3 }) },
    { name: "token id outside the vocabulary", init: json({ model, prompt: [1, 2, 1e9], max_tokens: 2 }) },
    { name: "no prompt", init: json({ model, max_tokens: 2 }) },
    { name: "top_p 0", init: json({ model, prompt: "x", top_p: 0, max_tokens: 2 }) },
    { name: "n 10000", init: json({ model, prompt: "x", n: 10000, max_tokens: 2 }) },
  ];
}

export interface Tally {
  requests: number;
  failed: number; // greedy requests with no complete answer, bad inputs answered 5xx or not at all
  failed_in_fault_window: number; // of those, overlapping a fault (a killed host, a restarted server)
  wrong_outputs: number; // complete greedy answers that differ from the clean run
  disconnects: number;
  bad_inputs: number;
  huge_prompts: number;
  failures: string[]; // the first few, for the report
}

export class Traffic {
  readonly tally: Tally = {
    requests: 0, failed: 0, failed_in_fault_window: 0, wrong_outputs: 0, disconnects: 0, bad_inputs: 0, huge_prompts: 0, failures: [],
  };
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;

  constructor(
    private readonly base: string,
    private readonly model: string,
    private readonly rng: () => number,
    private readonly reference: Map<string, string>,
    /** True while a fault is in progress or just ended: failures then are expected casualties. */
    private readonly inFault: (since: number) => boolean,
  ) {}

  pause(): void {
    this.gate ??= new Promise((r) => (this.openGate = r));
  }

  resume(): void {
    this.openGate?.();
    this.gate = this.openGate = null;
  }

  async run(untilMs: number, clients: number): Promise<void> {
    await Promise.all(Array.from({ length: clients }, () => this.client(untilMs)));
  }

  private async client(untilMs: number): Promise<void> {
    while (performance.now() < untilMs) {
      if (this.gate) await this.gate;
      const r = this.rng();
      this.tally.requests++;
      if (r < 0.6) await this.greedyOne();
      else if (r < 0.75) await this.disconnectOne();
      else if (r < 0.95) await this.badOne();
      else await this.hugeOne();
    }
  }

  private fail(since: number, what: string): void {
    this.tally.failed++;
    if (this.inFault(since)) this.tally.failed_in_fault_window++;
    if (this.tally.failures.length < 20) this.tally.failures.push(what);
  }

  private async greedyOne(): Promise<void> {
    const prompt = PROMPTS[Math.floor(this.rng() * PROMPTS.length)]!;
    const t0 = performance.now();
    const o = await greedy(this.base, this.model, prompt, this.rng() < 0.5);
    if (o.status !== 200 || o.error) return this.fail(t0, `greedy "${prompt}": ${o.status} ${o.error ?? ""}`);
    if (o.text !== this.reference.get(prompt)) {
      this.tally.wrong_outputs++;
      if (this.tally.failures.length < 20) this.tally.failures.push(`WRONG "${prompt}": ${JSON.stringify(o.text)}`);
    }
  }

  private async disconnectOne(): Promise<void> {
    this.tally.disconnects++;
    const ac = new AbortController();
    const prompt = PROMPTS[Math.floor(this.rng() * PROMPTS.length)]!;
    const t0 = performance.now();
    const done = greedy(this.base, this.model, prompt, true, ac.signal);
    // Leave after the first bytes, or at once: both must free the sequence.
    setTimeout(() => ac.abort(), Math.floor(this.rng() * 50));
    const o = await done;
    if (o.status >= 500) this.fail(t0, `disconnect: ${o.status} ${o.error ?? ""}`);
  }

  private async badOne(): Promise<void> {
    this.tally.bad_inputs++;
    const list = badRequests(this.model);
    const { name, init } = list[Math.floor(this.rng() * list.length)]!;
    const t0 = performance.now();
    const status = await fetch(`${this.base}/v1/completions`, init).then(async (r) => (await r.arrayBuffer(), r.status), () => 0);
    if (status < 400 || status >= 500) this.fail(t0, `bad input "${name}" answered ${status}`);
  }

  private async hugeOne(): Promise<void> {
    this.tally.huge_prompts++;
    const prompt = "lorem ipsum dolor ".repeat(Math.floor((1 + this.rng() * 2) * 110_000)); // 2-6 MB
    const t0 = performance.now();
    const status = await fetch(`${this.base}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: this.model, prompt, max_tokens: 4 }),
    }).then(async (r) => (await r.arrayBuffer(), r.status), () => 0);
    if (status < 400 || status >= 500) this.fail(t0, `huge prompt answered ${status}`);
  }
}

/** Polls /health for the whole run: the slowest answer is the figure (it must never stall). */
export async function watchHealth(base: string, untilMs: number): Promise<number> {
  let worst = 0;
  while (performance.now() < untilMs) {
    const t0 = performance.now();
    await fetch(`${base}/health`).then((r) => r.arrayBuffer(), () => undefined);
    worst = Math.max(worst, performance.now() - t0);
    await Bun.sleep(100);
  }
  return worst;
}
