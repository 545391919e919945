// The byte layer under the NATS transport: subjects, and payloads larger than the server's
// max_payload (1 MB by default; a decode batch's dispatch is several MB). A large payload is not
// pushed in pieces, because with queue groups consecutive messages may reach different members;
// instead the sender keeps it as a "blob" and sends a small reference, and whichever member
// receives the reference pulls the chunks from the sender with parallel requests.
//
//   subjects(system) -> {actor(name), actorQueue(name), init(node), ctl(node), up(node), hb(node), blob(id)}
//   Wire(nc, prefix) { publish(subject, bytes), respond(msg, bytes), request(subject, bytes, ms),
//     unpack(data): Promise<Uint8Array>, close() }; parseHeartbeat(bytes)
// Whatever comes off the bus is checked before it is used (a blob reference names a size to
// allocate and a subject to ask; a chunk request an index; a heartbeat the membership table).
import { type Msg, type NatsConnection, type Subscription, nuid } from "@nats-io/transport-node";
import { z } from "zod";
import { parseId } from "./actor.ts";
import { decode, encode } from "./codec.ts";

/** 0xc1 is the one byte msgpack never uses: a payload starting with it is a blob reference. */
const BLOB_MARK = 0xc1;
/** Room for the subject, reply subject and protocol line inside max_payload. */
const HEADROOM = 4096;
/** A blob nobody finished pulling (the receiver died) is dropped after this. */
const BLOB_TTL_MS = 60_000;

const token = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "_");

/** A blob is at most this large (a decode batch's dispatch is a few MB). */
const MAX_BLOB = 1 << 30;
const nat = z.number().int().nonnegative();
const blobRef = z.strictObject({ from: z.string().regex(/^[A-Za-z0-9]{1,64}$/), b: nat, n: nat.min(1).max(1 << 16), size: nat.max(MAX_BLOB) });
const chunkReq = z.strictObject({ b: nat, i: nat });
// Loose: a newer node may say more about itself; what this side reads is checked.
const heartbeat = z.looseObject({
  node: z.string().min(1).max(256), inc: z.string().max(256), actors: z.array(z.string().max(512)).max(1 << 16), bye: z.boolean().optional(),
});

/** A heartbeat off the bus, or null (logged) when it is not one. */
export function parseHeartbeat(bytes: Uint8Array): z.infer<typeof heartbeat> | null {
  try {
    const r = heartbeat.safeParse(decode(bytes));
    if (r.success) return r.data;
    console.error(`[nats] dropped an invalid heartbeat: ${r.error.issues[0]?.message}`);
  } catch (err) {
    console.error(`[nats] dropped an undecodable heartbeat: ${(err as Error).message}`);
  }
  return null;
}

export function subjects(system: string) {
  const p = `moe.${token(system)}`;
  return {
    prefix: p,
    /** An actor's subject has no replica index: replicas of one kind+key share it (a queue group). */
    actor: (name: string) => {
      const id = parseId(name);
      return `${p}.a.${token(id.kind)}.${token(id.key)}`;
    },
    actorQueue: (name: string) => {
      const id = parseId(name);
      return `${token(id.kind)}.${token(id.key)}`;
    },
    init: (node: string) => `${p}.node.${token(node)}.init`,
    ctl: (node: string) => `${p}.node.${token(node)}.ctl`,
    /** Frames from a node's host to the system (its asks, tells and events). */
    up: (node: string) => `${p}.up.${token(node)}`,
    hb: (node: string) => `${p}.hb.${token(node)}`,
    hbAll: `${p}.hb.*`,
    blob: (id: string) => `${p}.blob.${id}`,
  };
}

interface Blob {
  chunks: Uint8Array[];
  left: number;
  timer: ReturnType<typeof setTimeout>;
}

interface BlobRef {
  from: string;
  b: number;
  n: number;
  size: number;
}

export class Wire {
  private readonly id = nuid.next();
  private readonly blobs = new Map<number, Blob>();
  private nextBlob = 1;
  private readonly sub: Subscription;

  constructor(readonly nc: NatsConnection, private readonly prefix: string) {
    this.sub = nc.subscribe(`${prefix}.blob.${this.id}`, {
      callback: (err, msg) => {
        if (err) return;
        let req;
        try {
          req = chunkReq.parse(decode(msg.data));
        } catch {
          return void msg.respond(new Uint8Array(0));
        }
        const { b, i } = req;
        const blob = this.blobs.get(b);
        // Expired (the receiver reports it), or no such chunk.
        if (!blob || i >= blob.chunks.length) return void msg.respond(new Uint8Array(0));
        msg.respond(blob.chunks[i]!);
        if (--blob.left === 0) this.drop(b);
      },
    });
  }

  /** The largest payload sent as one message. */
  get limit(): number {
    return Math.max(64 * 1024, (this.nc.info?.max_payload ?? 1024 * 1024) - HEADROOM);
  }

  publish(subject: string, bytes: Uint8Array, reply?: string): void {
    this.nc.publish(subject, this.pack(bytes), reply ? { reply } : undefined);
  }

  respond(msg: Msg, bytes: Uint8Array): void {
    msg.respond(this.pack(bytes));
  }

  async request(subject: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const r = await this.nc.request(subject, this.pack(bytes), { timeout: timeoutMs });
    return this.unpack(r.data);
  }

  /**
   * The payload as a fresh buffer of its own (the client reuses its read buffer, and the codec
   * views tensors in place only when they are aligned to the start of a buffer).
   */
  async unpack(data: Uint8Array): Promise<Uint8Array> {
    if (data[0] !== BLOB_MARK) return new Uint8Array(data);
    const parsed = blobRef.safeParse(decode(data.subarray(1)));
    if (!parsed.success) throw new Error(`invalid payload reference: ${parsed.error.issues[0]?.message}`);
    const ref: BlobRef = parsed.data;
    const out = new Uint8Array(ref.size);
    const chunk = Math.ceil(ref.size / ref.n);
    await Promise.all(
      Array.from({ length: ref.n }, async (_, i) => {
        const r = await this.nc.request(`${this.prefix}.blob.${ref.from}`, encode({ b: ref.b, i }), { timeout: 30_000 });
        if (r.data.byteLength === 0) throw new Error(`payload ${ref.from}/${ref.b} expired before it was read`);
        out.set(r.data, i * chunk);
      }),
    );
    return out;
  }

  close(): void {
    this.sub.unsubscribe();
    for (const b of [...this.blobs.keys()]) this.drop(b);
  }

  private pack(bytes: Uint8Array): Uint8Array {
    const limit = this.limit;
    if (bytes.byteLength <= limit) return bytes;
    const n = Math.ceil(bytes.byteLength / limit);
    const chunk = Math.ceil(bytes.byteLength / n);
    const chunks = Array.from({ length: n }, (_, i) => bytes.subarray(i * chunk, Math.min(bytes.byteLength, (i + 1) * chunk)));
    const b = this.nextBlob++;
    const timer = setTimeout(() => this.drop(b), BLOB_TTL_MS);
    this.blobs.set(b, { chunks, left: n, timer });
    const ref = encode({ from: this.id, b, n, size: bytes.byteLength } satisfies BlobRef);
    const out = new Uint8Array(ref.byteLength + 1);
    out[0] = BLOB_MARK;
    out.set(ref, 1);
    return out;
  }

  private drop(b: number): void {
    const blob = this.blobs.get(b);
    if (blob) clearTimeout(blob.timer);
    this.blobs.delete(b);
  }
}
