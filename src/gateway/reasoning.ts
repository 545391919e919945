// `--reasoning-parser deepseek_r1`: the text a DeepSeek-R1 (or V3.1 in thinking mode) model writes
// between <think> and </think> is its reasoning, answered as `reasoning_content`; the rest is
// `content`. R1 opens with <think> itself; R1-0528's and V3.1's templates end the prompt with <think>,
// so the output starts inside the reasoning and only </think> is seen.
import { partialMarker } from "./markers.ts";

export const REASONING_PARSERS = ["deepseek_r1", "deepseek_v3"] as const;
export type ReasoningParserName = (typeof REASONING_PARSERS)[number];

const OPEN = "<think>";
const CLOSE = "</think>";

/** Does the prompt leave the model inside a <think> block (its template opened one)? */
export function promptOpensThinking(promptTail: string): boolean {
  const open = promptTail.lastIndexOf(OPEN);
  return open >= 0 && promptTail.indexOf(CLOSE, open) < 0 && promptTail.slice(open + OPEN.length).trim() === "";
}

export interface ReasoningPiece {
  reasoning: string;
  content: string;
}

/** Splits a stream of text into reasoning and content; push() pieces as they come, then finish(). */
export class ReasoningSplitter {
  private state: "start" | "thinking" | "answer";
  private held = "";
  private trimAnswer = false; // the blank line R1 writes after </think> is not part of the answer

  constructor(openInPrompt: boolean) {
    this.state = openInPrompt ? "thinking" : "start";
  }

  push(text: string): ReasoningPiece {
    const out: ReasoningPiece = { reasoning: "", content: "" };
    let buf = this.held + text;
    this.held = "";
    while (buf) {
      if (this.state === "start") {
        const lead = buf.trimStart();
        if (lead.startsWith(OPEN)) {
          this.state = "thinking";
          buf = lead.slice(OPEN.length);
        } else if (OPEN.startsWith(lead)) {
          this.held = buf; // whitespace, or the start of <think>: wait for more
          return out;
        } else {
          this.state = "answer";
        }
      } else if (this.state === "thinking") {
        const end = buf.indexOf(CLOSE);
        if (end >= 0) {
          out.reasoning += buf.slice(0, end);
          buf = buf.slice(end + CLOSE.length);
          this.state = "answer";
          this.trimAnswer = true;
        } else {
          const keep = partialMarker(buf, [CLOSE]);
          out.reasoning += buf.slice(0, buf.length - keep);
          this.held = buf.slice(buf.length - keep);
          return out;
        }
      } else {
        if (this.trimAnswer) {
          buf = buf.trimStart();
          if (!buf) return out;
          this.trimAnswer = false;
        }
        out.content += buf;
        return out;
      }
    }
    return out;
  }

  /** What is still held when the output ends: unfinished reasoning stays reasoning. */
  finish(): ReasoningPiece {
    const held = this.held;
    this.held = "";
    if (this.state === "thinking") return { reasoning: held, content: "" };
    return { reasoning: "", content: this.state === "answer" && this.trimAnswer ? held.trimStart() : held };
  }
}
