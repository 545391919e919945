// Tools for a chat template that has no place for them. DeepSeek-V3's own template (as released) renders
// tool calls and tool outputs but never the `tools` list, so a model served with it would be asked to
// call functions it was never shown. For such a template the tools are described in a system message,
// in the words DeepSeek-V3.1's template uses, with the call format of the V3 template itself (which is
// what the deepseek_v3 tool-call parser reads back).

interface FunctionTool {
  type?: string;
  function?: { name?: unknown; description?: unknown; parameters?: unknown };
}

/** Does the template read `tools`? (A template that never names it cannot render them.) */
export function templateReadsTools(template: string): boolean {
  return /\btools\b/.test(template);
}

function describe(tool: FunctionTool): string {
  const f = tool.function ?? {};
  const lines = [`### ${String(f.name ?? "")}`];
  if (typeof f.description === "string" && f.description) lines.push(`Description: ${f.description}`);
  lines.push("", `Parameters: ${JSON.stringify(f.parameters ?? { type: "object", properties: {} })}`);
  return lines.join("\n");
}

/** The system text that lists `tools` and shows the call format. */
export function toolSystemPrompt(tools: unknown[]): string {
  const list = tools.map((t) => describe(t as FunctionTool)).join("\n\n");
  return [
    "## Tools",
    "You have access to the following tools:",
    "",
    list,
    "",
    "IMPORTANT: ALWAYS adhere to this exact format for tool use:",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>tool_call_name\n```json\ntool_call_arguments\n```<｜tool▁call▁end｜>{additional_tool_calls}<｜tool▁calls▁end｜>",
    "",
    "Where:",
    "- `tool_call_name` must be an exact match to one of the available tools",
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema",
    "- For multiple tool calls, chain them directly without separators or spaces",
  ].join("\n");
}
