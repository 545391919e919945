// The model's tokenizer: HF tokenizer.json (byte-level BPE) + tokenizer_config.json (specials, chat template).
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { join } from "node:path";
import { maxTokenBytes } from "./bound.ts";
import { ChatTemplate, type ChatMessage, type ChatTemplateOptions } from "./chat-template.ts";

export type { ChatMessage, ChatTemplateOptions } from "./chat-template.ts";

export interface Tokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** Ids without a token (vocab_size may exceed the tokenizer, as in V3) decode to nothing. */
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions): string;
  /** Renders then encodes WITHOUT adding BOS, since the template writes it. */
  encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions): number[];
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number | null;
  /** Largest token id + 1 (may be smaller than the model's vocab_size). */
  readonly vocabSize: number;
  readonly hasChatTemplate: boolean;
  /** The most input bytes one token can cover (Infinity when the tokenizer may drop input): a text
   * of B bytes is at least ceil(B / maxTokenBytes) tokens. */
  readonly maxTokenBytes: number;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** An added token (`<｜end▁of▁sentence｜>`, `<｜tool▁call▁begin｜>`, `<think>`...): matched whole
   * before BPE, so no constrained text may spell it out of ordinary bytes. */
  isSpecial(id: number): boolean;
}

type TokenizerConfig = Record<string, unknown>;

async function readJson(path: string, what: string, required: boolean): Promise<unknown> {
  const file = Bun.file(path);
  if (!(await file.exists())) {
    if (required) throw new Error(`${what} not found: ${path}`);
    return undefined;
  }
  try {
    return JSON.parse(await file.text());
  } catch (e) {
    throw new Error(`invalid ${what} (${path}): ${(e as Error).message}`);
  }
}

/** Special tokens in tokenizer_config.json are either plain strings or AddedToken objects. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

export async function loadTokenizer(modelDir: string): Promise<Tokenizer> {
  const tjPath = join(modelDir, "tokenizer.json");
  const tcPath = join(modelDir, "tokenizer_config.json");
  const tj = await readJson(tjPath, "tokenizer.json", true);
  const tc = ((await readJson(tcPath, "tokenizer_config.json", false)) ?? {}) as TokenizerConfig;
  if (!tj || typeof tj !== "object" || !("model" in tj)) {
    throw new Error(`invalid tokenizer.json (${tjPath}): no "model" section`);
  }
  let hf: HFTokenizer;
  try {
    hf = new HFTokenizer(tj, tc);
  } catch (e) {
    throw new Error(`invalid tokenizer.json (${tjPath}): ${(e as Error).message}`);
  }
  // config.json's ids are the fallback when tokenizer_config.json names no specials.
  const modelCfg = ((await readJson(join(modelDir, "config.json"), "config.json", false)) ?? {}) as Record<
    string,
    unknown
  >;
  const resolve = (key: string, cfgKey: string, required: boolean): { id: number | null; text: string } => {
    const text = tokenContent(tc[key]);
    const id = text !== undefined ? hf.token_to_id(text) : undefined;
    if (id !== undefined) return { id, text: text! };
    const fallback = modelCfg[cfgKey];
    if (typeof fallback === "number" && hf.id_to_token(fallback) !== undefined) {
      return { id: fallback, text: hf.id_to_token(fallback)! };
    }
    if (required) throw new Error(`${tcPath}: cannot resolve ${key} to a token id`);
    return { id: null, text: "" };
  };
  const bos = resolve("bos_token", "bos_token_id", true);
  const eos = resolve("eos_token", "eos_token_id", true);
  const pad = resolve("pad_token", "pad_token_id", false);

  const added = new Set(((tj as { added_tokens?: { id: number }[] }).added_tokens ?? []).map((t) => t.id));
  let maxId = -1;
  for (const id of hf.get_vocab(true).values()) if (id > maxId) maxId = id;

  // transformers' LlamaTokenizerFast rebuilds the post-processor from add_bos_token/add_eos_token,
  // overriding tokenizer.json; without those flags the tokenizer.json post_processor decides.
  const addBos = typeof tc.add_bos_token === "boolean" ? tc.add_bos_token : undefined;
  const addEos = typeof tc.add_eos_token === "boolean" ? tc.add_eos_token : false;
  const encode = (text: string, opts?: { addSpecialTokens?: boolean }): number[] => {
    const special = opts?.addSpecialTokens ?? true;
    if (addBos === undefined) return hf.encode(text, { add_special_tokens: special }).ids;
    const ids = hf.encode(text, { add_special_tokens: false }).ids;
    if (!special) return ids;
    return [...(addBos ? [bos.id!] : []), ...ids, ...(addEos ? [eos.id!] : [])];
  };

  const template = new ChatTemplate(
    tc.chat_template,
    { bos_token: bos.text, eos_token: eos.text, ...(pad.id !== null ? { pad_token: pad.text } : {}) },
    tcPath,
  );
  const applyChatTemplate = (messages: ChatMessage[], opts: ChatTemplateOptions) => template.render(messages, opts);

  return Object.freeze({
    encode,
    decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string {
      // The ByteLevel decoder turns a partial UTF-8 sequence into U+FFFD; it never throws.
      const known = ids.filter((id) => Number.isInteger(id) && id >= 0 && id <= maxId && hf.id_to_token(id) !== undefined);
      if (known.length === 0) return ""; // the library rejects an empty list
      return hf.decode(known, {
        skip_special_tokens: opts?.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      });
    },
    applyChatTemplate,
    encodeChat: (messages: ChatMessage[], opts: ChatTemplateOptions) =>
      encode(applyChatTemplate(messages, opts), { addSpecialTokens: false }),
    bosId: bos.id!,
    eosId: eos.id!,
    padId: pad.id,
    vocabSize: maxId + 1,
    hasChatTemplate: template.available,
    maxTokenBytes: maxTokenBytes(tj as Record<string, unknown>),
    idToToken: (id: number) => hf.id_to_token(id),
    tokenToId: (token: string) => hf.token_to_id(token),
    isSpecial: (id: number) => added.has(id),
  });
}
