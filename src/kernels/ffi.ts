// The dlopen table of the kernel ABI (kernels/include/moe_kernels.h), and nothing else.
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";

const ptr = FFIType.ptr, i32 = FFIType.i32, i64 = FFIType.i64_fast, f32 = FFIType.f32, cstring = FFIType.cstring;

/** MOE_ABI_VERSION of kernels/include/moe_kernels.h that SYMBOLS describes. */
export const ABI_VERSION = 3;

export const SYMBOLS = {
  moe_last_error: { args: [], returns: cstring },
  moe_abi_version: { args: [], returns: i32 },
  moe_backend: { args: [], returns: cstring },
  moe_set_threads: { args: [i32], returns: i32 },
  moe_get_threads: { args: [], returns: i32 },
  moe_device_count: { args: [ptr], returns: i32 },
  moe_set_device: { args: [i32], returns: i32 },
  moe_alloc: { args: [ptr, i64], returns: i32 },
  moe_free: { args: [ptr], returns: i32 },
  moe_memcpy_h2d: { args: [ptr, ptr, i64, ptr], returns: i32 },
  moe_memcpy_d2h: { args: [ptr, ptr, i64, ptr], returns: i32 },
  moe_memcpy_d2d: { args: [ptr, ptr, i64, ptr], returns: i32 },
  moe_stream_create: { args: [ptr], returns: i32 },
  moe_stream_destroy: { args: [ptr], returns: i32 },
  moe_sync: { args: [ptr], returns: i32 },
  moe_linear: { args: [ptr, i64, ptr, i64, ptr, ptr, i32, i64, i64, i64, i64, ptr], returns: i32 },
  moe_rmsnorm: { args: [ptr, i64, ptr, i64, ptr, i32, i64, i64, f32, ptr], returns: i32 },
  moe_embed: { args: [ptr, ptr, ptr, i32, i64, i64, i64, ptr], returns: i32 },
  moe_rope: { args: [ptr, i64, i64, i64, i64, ptr, ptr, i64, i64, ptr], returns: i32 },
  moe_silu_mul: { args: [ptr, i64, ptr, i64, ptr, i64, i64, i64, ptr], returns: i32 },
  moe_add: { args: [ptr, i64, ptr, i64, f32, i64, i64, ptr], returns: i32 },
  moe_gate: { args: [ptr, ptr, ptr, i64, ptr, i32, ptr, i64, i64, i64, i64, i64, i64, i32, i32, f32, ptr], returns: i32 },
  moe_experts: { args: [ptr, i64, ptr, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i32, i64, i64, i64, ptr, ptr], returns: i32 },
  moe_kv_write: { args: [ptr, ptr, ptr, i32, ptr, i64, ptr, i64, ptr, i64, i64, i64, i64, ptr], returns: i32 },
  moe_kv_gather: { args: [ptr, ptr, ptr, ptr, ptr, i32, ptr, i64, i64, i64, i64, i64, ptr], returns: i32 },
  moe_mla_absorb_q: { args: [ptr, ptr, ptr, ptr, i32, i64, i64, i64, i64, i64, i64, ptr], returns: i32 },
  moe_mla_absorb_out: { args: [ptr, ptr, ptr, ptr, i32, i64, i64, i64, i64, i64, ptr], returns: i32 },
  moe_mla_attend: { args: [ptr, ptr, ptr, ptr, ptr, ptr, i32, ptr, i64, ptr, ptr, i64, i64, i64, i64, i64, i64, i64, f32, ptr], returns: i32 },
  moe_mla_attend_naive: { args: [ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64, i64, i64, f32, ptr], returns: i32 },
  moe_argmax: { args: [ptr, ptr, i64, i64, ptr], returns: i32 },
  moe_log_softmax: { args: [ptr, ptr, i64, i64, ptr], returns: i32 },
  moe_sample: { args: [ptr, ptr, i64, f32, i32, f32, f32, f32, ptr, ptr], returns: i32 },
} as const;

export type Backend = "cpu" | "cuda" | "hip";

export function libraryPath(backend: Backend): string {
  return join(import.meta.dir, "..", "..", "kernels", "build", `libmoe_${backend}.so`);
}

export function openLibrary(backend: Backend) {
  const path = libraryPath(backend);
  if (!existsSync(path))
    throw new Error(`kernel library ${path} is missing: run \`npm run build:kernels\`${backend === "cpu" ? "" : ` on a machine with the ${backend} toolchain`}`);
  const lib = dlopen(path, SYMBOLS);
  // A library built from an older header takes other arguments: calling it would misread them.
  const version = lib.symbols.moe_abi_version();
  if (version !== ABI_VERSION) {
    lib.close();
    throw new Error(`kernel library ${path} has ABI ${version}, this code needs ${ABI_VERSION}: run \`npm run build:kernels\``);
  }
  return lib;
}

export type KernelSymbols = ReturnType<typeof openLibrary>["symbols"];
