// Incremental detokenization that never emits a broken character. Byte-level BPE splits a character
// over several tokens, each of which decodes alone to U+FFFD; so we decode a short window of ids and
// only release text once the window no longer ends in a replacement character (the prefix/read offset
// scheme of vLLM and TGI). Decoding a window, not single tokens, also keeps decoders that look at
// neighbouring tokens (metaspace, byte fallback) right.
import type { TextCodec } from "./codec.ts";

const REPLACEMENT = "\uFFFD";

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  private prefixOffset = 0; // start of the decode window
  private readOffset = 0; // ids before this have been released as text

  constructor(private readonly codec: TextCodec, private readonly skipSpecialTokens = true) {}

  private decode(ids: number[]): string {
    return this.codec.decode(ids, { skipSpecialTokens: this.skipSpecialTokens });
  }

  /** Adds one token and returns the text it completes ("" while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    if (full.length <= prefix.length || full.endsWith(REPLACEMENT)) return "";
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }

  /** Releases whatever is held back at the end of the sequence, replacement characters included. */
  flush(): string {
    if (this.readOffset === this.ids.length) return "";
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : "";
  }
}
