// A Hugging Face checkpoint directory: config.json, safetensors shards (with or without
// model.safetensors.index.json). Tensors are found by name, checked for dtype and shape, and
// handed out as views into the mapped files.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, sep } from "node:path";
import { type ModelConfig, loadModelConfig } from "../config/model.ts";
import { type Progress, type ProgressOptions, progress } from "../progress.ts";
import { weightMemory } from "./arena.ts";
import { CheckpointError, type DType, SafetensorsFile, type TensorInfo } from "./safetensors.ts";

export { CheckpointError };

/** Weight dtype codes of the kernel ABI (moe_kernels.h). */
export const WDTYPE = { F32: 0, BF16: 1, F8_E4M3: 2 } as const;
export type WDType = (typeof WDTYPE)[keyof typeof WDTYPE];

/** A stored weight: raw bytes in the checkpoint's dtype (+ F8 block scales). */
export interface Weight {
  readonly name: string;
  readonly dtype: WDType;
  readonly data: Uint8Array;
  readonly scale: Float32Array | null;
  readonly shape: readonly number[];
}

/** Loading progress is shown for checkpoints of at least this many bytes (256 MiB: bench-m and up). */
export const LOAD_PROGRESS_MIN_BYTES = 2 ** 28;

export interface CheckpointOptions {
  /** How loading progress is shown (stderr by default), and from what size on. */
  progress?: ProgressOptions & { minBytes?: number };
}

/** One loading progress per model directory and thread: every actor of a host opens its own
 * Checkpoint of the same directory, and their reads add up to one load. */
const loads = new Map<string, Progress>();

export class Checkpoint {
  readonly config: ModelConfig;
  private readonly files = new Map<string, SafetensorsFile>();
  private readonly where = new Map<string, string>(); // tensor -> shard file name
  private sizeOnDisk?: number;
  private own?: Progress;

  constructor(readonly dir: string, private readonly opts: CheckpointOptions = {}) {
    if (!existsSync(dir)) throw new CheckpointError(`${dir}: model directory does not exist`);
    weightMemory(); // a bad MOE_WEIGHTS fails here, not at the first tensor read
    this.config = loadModelConfig(join(dir, "config.json"));
    const indexPath = join(dir, "model.safetensors.index.json");
    if (existsSync(indexPath)) {
      let index: { weight_map?: Record<string, string> };
      try {
        index = JSON.parse(readFileSync(indexPath, "utf8"));
      } catch (e) {
        throw new CheckpointError(`${indexPath}: not valid JSON (${(e as Error).message})`);
      }
      if (!index.weight_map || typeof index.weight_map !== "object") throw new CheckpointError(`${indexPath}: no weight_map`);
      for (const [name, file] of Object.entries(index.weight_map)) {
        // The index comes with a downloaded checkpoint: it must not make us read files elsewhere.
        if (typeof file !== "string" || file === "" || isAbsolute(file) || file.split(/[\\/]/).includes(".."))
          throw new CheckpointError(`${indexPath}: weight_map entry ${name} -> ${JSON.stringify(file)} is not a file inside the model directory`);
        this.where.set(name, file);
      }
    } else {
      const shards = readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort();
      if (shards.length === 0) throw new CheckpointError(`${dir}: no *.safetensors files and no model.safetensors.index.json`);
      for (const f of shards) for (const name of this.file(f).tensors.keys()) this.where.set(name, f);
    }
  }

  private file(name: string): SafetensorsFile {
    let f = this.files.get(name);
    if (!f) {
      this.checkInside(name);
      f = new SafetensorsFile(join(this.dir, name), (n) => this.read(n));
      this.files.set(name, f);
    }
    return f;
  }

  /** Refuses a shard that resolves (through symlinks) outside the model directory. A Hugging
   * Face hub cache snapshot links each file to ../../blobs/: that store is allowed too. */
  private checkInside(name: string): void {
    const path = join(this.dir, name);
    if (!existsSync(path)) return; // SafetensorsFile says "cannot open", naming the file
    const real = realpathSync(path), root = realpathSync(this.dir);
    const roots = [root];
    if (basename(dirname(root)) === "snapshots") roots.push(join(dirname(dirname(root)), "blobs"));
    const inside = (r: string) => {
      const rel = relative(r, real);
      return rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel);
    };
    if (!roots.some(inside)) throw new CheckpointError(`${path}: shard ${name} resolves to ${real}, outside the model directory`);
  }

  /** Bytes of the shards on disk: the whole of what loading may read. */
  get size(): number {
    this.sizeOnDisk ??= [...new Set(this.where.values())].reduce((n, f) => n + (existsSync(join(this.dir, f)) ? statSync(join(this.dir, f)).size : 0), 0);
    return this.sizeOnDisk;
  }

  /** Tensors are read when the model first asks for them, so nobody announces the end of a
   * load: the progress ends itself after 2 s without a read, and a later read starts anew.
   * A process that holds part of the model (an expert actor) reads only part of the total. */
  private read(bytes: number): void {
    const o = this.opts.progress ?? {};
    if (o.mode === "off" || this.size < (o.minBytes ?? LOAD_PROGRESS_MIN_BYTES)) return;
    // a checkpoint given its own options (a test's stream) shares its progress with no other
    const shared = !this.opts.progress;
    let shown = shared ? loads.get(this.dir) : this.own;
    if (!shown || shown.ended) {
      shown = progress(`loading ${basename(this.dir)}`, this.size, { unit: "bytes", idleEndMs: 2000, ...o });
      if (shared) loads.set(this.dir, shown);
      else this.own = shown;
    }
    shown.add(bytes);
  }

  /** Reads ahead every tensor whose name `wanted` accepts (an actor's own weights, at its
   * activation), a few reads in flight per shard (see SafetensorsFile.prefetch), so that the
   * model's later lazy reads find them in memory. Returns the bytes read. */
  async prefetch(wanted: (name: string) => boolean, parallel = 4): Promise<number> {
    const byFile = new Map<string, TensorInfo[]>();
    for (const [name, file] of this.where) {
      if (!wanted(name)) continue;
      const list = byFile.get(file) ?? [];
      list.push(this.info(name));
      byFile.set(file, list);
    }
    let total = 0;
    // shards one after another (each read front to back), reads in flight within each
    for (const [file, infos] of byFile) total += await this.file(file).prefetch(infos, parallel);
    return total;
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  info(name: string): TensorInfo {
    const fileName = this.where.get(name);
    if (!fileName) throw new CheckpointError(`${this.dir}: tensor ${name} is missing from the checkpoint`);
    const t = this.file(fileName).tensors.get(name);
    if (!t) throw new CheckpointError(`${join(this.dir, fileName)}: tensor ${name} is listed in the index but not in the file`);
    return t;
  }

  /** Raw bytes of a tensor after checking dtype and shape. */
  raw(name: string, dtypes: readonly DType[], shape: readonly number[]): { info: TensorInfo; bytes: Uint8Array } {
    const info = this.info(name);
    if (!dtypes.includes(info.dtype)) throw new CheckpointError(`${info.file}: tensor ${name} has dtype ${info.dtype}, expected ${dtypes.join(" or ")}`);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))
      throw new CheckpointError(`${info.file}: tensor ${name} has shape [${info.shape}], expected [${shape}]`);
    return { info, bytes: this.file(this.where.get(name) as string).bytes(info) };
  }

  /** An F32 tensor as an aligned Float32Array (copied only when the file leaves it misaligned). */
  f32(name: string, shape: readonly number[]): Float32Array {
    const { bytes } = this.raw(name, ["F32"], shape);
    return aligned(bytes);
  }

  /** A matrix or vector weight in its stored dtype; an F8 weight brings its `_scale_inv`. */
  weight(name: string, shape: readonly number[]): Weight {
    const { info, bytes } = this.raw(name, ["F8_E4M3", "BF16", "F32"], shape);
    if (info.dtype !== "F8_E4M3") return Object.freeze({ name, dtype: WDTYPE[info.dtype as "BF16" | "F32"], data: bytes, scale: null, shape: info.shape });
    const blocks = shape.map((d) => Math.ceil(d / 128));
    if (shape.length !== 2) throw new CheckpointError(`${info.file}: tensor ${name} is F8 but not a matrix`);
    const scale = this.f32(`${name}_scale_inv`, blocks);
    return Object.freeze({ name, dtype: WDTYPE.F8_E4M3, data: bytes, scale, shape: info.shape });
  }
}

function aligned(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}

export function openCheckpoint(dir: string, opts?: CheckpointOptions): Checkpoint {
  return new Checkpoint(dir, opts);
}
