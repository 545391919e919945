// The runtime's public surface, for actors/, the engine and the CLI. Everything else is internal.
export {
  type Actor, type ActorContext, type ActorId, type AskOptions, type ErrorCode, type ErrorInfo, type Target,
  ActorError, actorId, defineActor, idString, messageType, nameOf, parseId,
} from "./actor.ts";
export { decode, encode, encodeOwned, TYPED_ARRAYS } from "./codec.ts";
export { EventLog, type EventType, type RuntimeEvent, formatEvent } from "./events.ts";
export { type PlacementRule, type PlacementSpec, Placement, schemeOf } from "./placement.ts";
export { type Registry, type RegistryExport, type RegistryRef, defineRegistry, loadRegistry } from "./registry.ts";
export { ActorSystem, type SystemOptions } from "./system.ts";
export type { HostInfo, ProxyStatus } from "./host-proxy.ts";
export { type HostSpec, type Link, type Transport, InProcessTransport, defaultTransports } from "./transport.ts";
export { type Endpoint, serveHost } from "./serve-host.ts";
export type { Frame, HostInit } from "./frames.ts";
