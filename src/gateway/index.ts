export { createApp, DEFAULT_MAX_BODY_BYTES, type AppOptions } from "./app.ts";
export type { ChatTemplateMessage, TextCodec } from "./codec.ts";
export { ApiError } from "./errors.ts";
export { GatewayMetrics } from "./metrics.ts";
export { serveApp, type ServeOptions } from "./server.ts";
export { Drain } from "./drain.ts";
export { LoadingEngine } from "./loading-engine.ts";
export { parseApiKeys } from "./middleware/auth.ts";
