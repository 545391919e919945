// `--tool-call-parser deepseek_v3`: DeepSeek's tool-call tokens in the output, read back as OpenAI
// `tool_calls`, piece by piece as the text streams. Two spellings of a call are read:
//   V3:   <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{ARGS}\n```<｜tool▁call▁end｜>
//   V3.1: <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{ARGS}<｜tool▁call▁end｜>
// inside <｜tool▁calls▁begin｜> ... <｜tool▁calls▁end｜>. Text before the calls is content.
import { firstMarker, partialMarker } from "./markers.ts";

export const TOOL_CALL_PARSERS = ["deepseek_v3", "deepseek_v31"] as const;
export type ToolCallParserName = (typeof TOOL_CALL_PARSERS)[number];

export const CALLS_BEGIN = "<｜tool▁calls▁begin｜>";
export const CALLS_END = "<｜tool▁calls▁end｜>";
export const CALL_BEGIN = "<｜tool▁call▁begin｜>";
export const CALL_END = "<｜tool▁call▁end｜>";
export const SEP = "<｜tool▁sep｜>";

export type ToolEvent =
  | { type: "content"; text: string }
  | { type: "call"; index: number; id: string; name: string }
  | { type: "arguments"; index: number; text: string };

/** OpenAI-style call ids: `call_` and 24 random hex digits. */
export function toolCallId(): string {
  return `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

type State = "text" | "between" | "header" | "name" | "fence" | "args" | "after";

const FENCE = /^\s*```[a-zA-Z]*[ \t]*\n/;
const FENCE_PREFIX = /^\s*(`{0,3}|```[a-zA-Z]*[ \t]*)$/;
const CLOSING = /\s*(?:`{1,3}\s*)?$/; // the "\n```" before <｜tool▁call▁end｜> (V3)

export class ToolCallParser {
  private state: State = "text";
  private buf = "";
  private index = -1;
  private header = "";
  private fenced = false; // V3 spelling: the arguments sit in a ```json fence
  private sent = ""; // the current call's arguments sent so far

  push(text: string): ToolEvent[] {
    this.buf += text;
    const out: ToolEvent[] = [];
    while (this.step(out, false));
    return out;
  }

  /** The output ended: what was held goes out (a call cut short keeps the arguments it has). */
  finish(): ToolEvent[] {
    const out: ToolEvent[] = [];
    while (this.step(out, true));
    if (this.state === "text" || this.state === "after") this.emitContent(out, this.buf);
    else if (this.state === "args") {
      const args = this.buf.slice(0, this.buf.length - partialMarker(this.buf, [CALL_END]));
      this.emitArgs(out, args.replace(this.fenced ? CLOSING : /\s*$/, ""), true);
    }
    this.buf = "";
    return out;
  }

  /** Calls seen so far. */
  get calls(): number {
    return this.index + 1;
  }

  /** One move of the state machine; false when it needs more text. */
  private step(out: ToolEvent[], ending: boolean): boolean {
    const { buf } = this;
    switch (this.state) {
      case "text": {
        const m = firstMarker(buf, [CALLS_BEGIN, CALL_BEGIN]);
        if (m === null) {
          const keep = ending ? 0 : partialMarker(buf, [CALLS_BEGIN, CALL_BEGIN]);
          this.emitContent(out, buf.slice(0, buf.length - keep));
          this.buf = buf.slice(buf.length - keep);
          return false;
        }
        this.emitContent(out, buf.slice(0, m.at));
        this.buf = buf.slice(m.at + m.marker.length);
        this.state = m.marker === CALL_BEGIN ? "header" : "between";
        return true;
      }
      case "between": {
        const lead = buf.trimStart();
        for (const [marker, next] of [[CALL_BEGIN, "header"], [CALLS_END, "after"]] as const) {
          if (lead.startsWith(marker)) {
            this.buf = lead.slice(marker.length);
            this.state = next;
            return true;
          }
        }
        if (!ending && (CALL_BEGIN.startsWith(lead) || CALLS_END.startsWith(lead))) return false;
        this.state = "after"; // not a call: the rest is content
        return true;
      }
      case "header": {
        const at = buf.indexOf(SEP);
        if (at < 0) return false;
        this.header = buf.slice(0, at).trim();
        this.buf = buf.slice(at + SEP.length);
        this.state = "name";
        return true;
      }
      case "name": {
        const lead = buf.trimStart();
        if (!lead && !ending) return false;
        if (lead.startsWith("{") || lead.startsWith("[") || !lead) return this.open(out, this.header, lead, false);
        const nl = buf.indexOf("\n"); // V3: the type was the header; the name runs to the end of the line
        if (nl < 0 && !firstMarker(buf, [CALL_END]) && !ending) return false;
        const end = nl >= 0 ? nl : (firstMarker(buf, [CALL_END])?.at ?? buf.length);
        return this.open(out, buf.slice(0, end).trim(), buf.slice(end), true);
      }
      case "fence": {
        const m = FENCE.exec(buf);
        if (m) this.buf = buf.slice(m[0].length);
        else if (!ending && FENCE_PREFIX.test(buf)) return false;
        this.state = "args";
        return true;
      }
      case "args": {
        const end = buf.indexOf(CALL_END);
        if (end < 0) {
          if (ending) return false;
          let keep = partialMarker(buf, [CALL_END]);
          const rest = buf.slice(0, buf.length - keep);
          keep += (this.fenced ? CLOSING.exec(rest)![0] : /\s*$/.exec(rest)![0]).length;
          this.emitArgs(out, buf.slice(0, buf.length - keep), false);
          return false;
        }
        this.emitArgs(out, buf.slice(0, end).replace(this.fenced ? CLOSING : /\s*$/, ""), true);
        this.buf = buf.slice(end + CALL_END.length);
        this.state = "between";
        return true;
      }
      case "after":
        this.emitContent(out, buf);
        this.buf = "";
        return false;
    }
  }

  private open(out: ToolEvent[], name: string, rest: string, v3: boolean): boolean {
    this.index += 1;
    this.sent = "";
    this.fenced = v3;
    out.push({ type: "call", index: this.index, id: toolCallId(), name });
    this.buf = rest;
    this.state = v3 ? "fence" : "args";
    return true;
  }

  /** Sends the part of the arguments not sent yet; `args` is all of them so far, trimmed at the start. */
  private emitArgs(out: ToolEvent[], args: string, final: boolean): void {
    const all = args.trimStart();
    if (all.startsWith(this.sent) && all.length > this.sent.length) {
      out.push({ type: "arguments", index: this.index, text: all.slice(this.sent.length) });
      this.sent = all;
    }
    if (final) this.sent = "";
  }

  private emitContent(out: ToolEvent[], text: string): void {
    if (text) out.push({ type: "content", text });
  }
}
