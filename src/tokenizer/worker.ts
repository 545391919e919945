// A tokenizer worker: loads the model's tokenizer once, then runs encode jobs off the thread that
// serves HTTP, so a huge prompt never stalls other streams or /health.
import { loadTokenizer, type Tokenizer } from "./index.ts";
import { runEncodeJob, type EncodeJob } from "./prompt.ts";

declare const self: Worker;

export type WorkerInbox = { type: "init"; modelDir: string } | { type: "job"; id: number; job: EncodeJob };
export type WorkerOutbox =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | { type: "done"; id: number; result: ReturnType<typeof runEncodeJob> | null; ids?: Int32Array; error?: string };

let tokenizer: Tokenizer | null = null;
const post = (m: WorkerOutbox, transfer: ArrayBuffer[] = []) => self.postMessage(m, transfer);

self.onmessage = async (ev: MessageEvent<WorkerInbox>) => {
  const m = ev.data;
  if (m.type === "init") {
    try {
      tokenizer = await loadTokenizer(m.modelDir);
      post({ type: "ready" });
    } catch (err) {
      post({ type: "failed", message: (err as Error).message });
    }
    return;
  }
  try {
    const result = runEncodeJob(tokenizer!, m.job);
    if (!result.ok) return post({ type: "done", id: m.id, result });
    // ids travel as one transferred buffer, not a structured clone of a JS array
    const ids = Int32Array.from(result.ids);
    post({ type: "done", id: m.id, result: null, ids }, [ids.buffer]);
  } catch (err) {
    post({ type: "done", id: m.id, result: null, error: (err as Error).message });
  }
};
