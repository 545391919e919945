// Connecting to NATS as an authenticated client. The bus is closed: every connection says who
// it is, by user/password or token in the URL (nats://moe:SECRET@host:4222, nats://TOKEN@host)
// or by an NKey, from a .creds file (JWT + seed) or a bare seed file (--nats-creds FILE).
// The nats.js client does not read credentials from a server URL, so they are taken out here and
// passed as options. A refused credential is fatal at once (it will not get better by retrying);
// an unreachable server is waited for, up to a bound, then reported with what was waited for.
// URLs are logged only through maskUrl: secrets never reach a log line.
//
//   natsConnect(url, name, {creds?, firstConnectMs?}) -> NatsConnection
//   natsAuthOf(url) -> {servers, user?, pass?, token?}; maskUrl(url); NatsAuthError
import { readFileSync } from "node:fs";
import {
  type Authenticator, type NatsConnection, connect, credsAuthenticator, errors, nkeyAuthenticator,
} from "@nats-io/transport-node";

export interface NatsConnectOptions {
  /** A .creds file (user JWT + NKey seed) or a file holding a user NKey seed ("SU..."). */
  creds?: string;
  /** How long to wait for a server that is not up yet before giving up. Default 30 s. */
  firstConnectMs?: number;
}

export interface NatsAuth {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/** The server refused this client's credentials (or it gave none to a server that wants them). */
export class NatsAuthError extends Error {
  override name = "NatsAuthError";
}

const RETRY_MS = 250;

/** Servers without their credentials, and the credentials (the same for every server given). */
export function natsAuthOf(url: string): NatsAuth {
  const out: NatsAuth = { servers: [] };
  for (const raw of url.split(",").map((s) => s.trim()).filter(Boolean)) {
    const u = parse(raw);
    if (!u || (!u.username && !u.password)) {
      out.servers.push(raw);
      continue;
    }
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    // nats://TOKEN@host is how NATS spells a token; nats://user:pass@host a user.
    const cred = pass ? { user, pass } : { token: user };
    const prev = out.user !== undefined || out.token !== undefined;
    if (prev && (out.user !== cred.user || out.pass !== cred.pass || out.token !== cred.token)) {
      throw new Error(`NATS URL ${maskUrl(url)}: the servers name different credentials (one client has one identity)`);
    }
    Object.assign(out, cred);
    u.username = "";
    u.password = "";
    out.servers.push(u.href);
  }
  if (out.servers.length === 0) throw new Error(`NATS URL "${maskUrl(url)}" names no server`);
  return out;
}

/** The URL as it may be logged: passwords and tokens replaced by ***. */
export function maskUrl(url: string): string {
  return url
    .split(",")
    .map((raw) => {
      const u = parse(raw.trim());
      if (!u || (!u.username && !u.password)) return raw;
      if (u.password) u.password = "***";
      else u.username = "***";
      return u.href;
    })
    .join(",");
}

function parse(s: string): URL | null {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return null;
  try {
    return new URL(s);
  } catch {
    return null;
  }
}

function credsAuth(file: string): Authenticator {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`--nats-creds ${file}: ${(err as Error).message}`);
  }
  const bytes = new TextEncoder().encode(text);
  if (text.includes("BEGIN NATS USER JWT")) return credsAuthenticator(bytes);
  const seed = text.trim();
  if (/^SU[A-Z2-7]+$/.test(seed)) return nkeyAuthenticator(new TextEncoder().encode(seed));
  throw new Error(`--nats-creds ${file}: neither a .creds file nor a user NKey seed (SU...)`);
}

function isAuthError(err: unknown): boolean {
  for (let e = err as Error | undefined, i = 0; e && i < 4; e = e.cause as Error | undefined, i++) {
    if (e instanceof errors.AuthorizationError || e instanceof errors.UserAuthenticationExpiredError) return true;
    if (/authorization violation|authentication/i.test(e.message ?? "")) return true;
  }
  return false;
}

export async function natsConnect(url: string, name: string, o: NatsConnectOptions = {}): Promise<NatsConnection> {
  const auth = natsAuthOf(url);
  const authenticator = o.creds ? credsAuth(o.creds) : undefined;
  const how = o.creds ? `the NKey in ${o.creds}` : auth.user ? `user "${auth.user}"` : auth.token ? "a token" : "no credentials";
  const waitMs = o.firstConnectMs ?? 30_000;
  const t0 = performance.now();
  for (;;) {
    try {
      return await connect({
        servers: auth.servers, name, user: auth.user, pass: auth.pass, token: auth.token, authenticator,
        // Once connected, survive a server that restarts: reconnect forever (an auth error
        // after that still closes the connection: the client gives up on refused credentials).
        maxReconnectAttempts: -1, reconnectTimeWait: RETRY_MS, pingInterval: 5000,
        // The first connection is retried here instead, so a refused credential ends it at once.
        waitOnFirstConnect: false,
      });
    } catch (err) {
      if (isAuthError(err)) {
        throw new NatsAuthError(
          `NATS at ${maskUrl(url)} refused this client (${how}): authorization violation. ` +
            `Give the credentials the server expects (nats://USER:PASS@HOST:PORT, nats://TOKEN@HOST:PORT or --nats-creds FILE).`,
        );
      }
      const waited = performance.now() - t0;
      if (waited >= waitMs) {
        throw new Error(
          `no NATS server answered at ${maskUrl(url)} within ${waitMs / 1000} s ` +
            `(waited for the first connection; last error: ${(err as Error)?.message ?? err}). Is nats-server running (scripts/nats-server.sh)?`,
        );
      }
      await Bun.sleep(Math.min(RETRY_MS, waitMs - waited));
    }
  }
}
