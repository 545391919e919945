// A device-resident forward pass for one sequence (a prefill, then decode steps), in paper order,
// on a device library: weights are uploaded once, activations and the latent cache stay on the
// device, everything is queued on one stream. The host only routes (each MoE layer's gate
// choices come back once, as the router actor would read them) and reads the result. Used by
// the benchmark (scripts/bench-gpu.ts) and checked against the goldens (forward.test.ts).
import type { Pointer } from "bun:ffi";
import { type Weight, openCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import type { ModelConfig } from "../../src/config/model.ts";
import { type Device, type DeviceBuffer, type Stream, addr } from "../../src/kernels/device.ts";
import { loadExpertWeights } from "../../src/model/mlp.ts";
import { ropeInvFreq } from "../../src/model/rope.ts";

interface DW { ptr: Pointer; scale: Pointer | null; dtype: number; rows: number; cols: number; bytes: number }
interface Mlp { w1: DW; w3: DW; w2: DW; I: number }
interface Layer {
  attnNorm: DW; ffnNorm: DW; wq: DW | null; wqA: DW | null; qNorm: DW | null; wqB: DW | null;
  wkvA: DW; kvNorm: DW; wkvB: DW; wo: DW; dense: Mlp | null; shared: Mlp | null;
  gate: DW | null; bias: Pointer | null; tables: BigUint64Array[]; edtype: number; kv: DeviceBuffer; pe: DeviceBuffer;
}

export class GpuForward {
  readonly c: ModelConfig;
  readonly stream: Stream;
  /** Weight bytes one decode token reads: all but the embedding table and the unchosen experts. */
  readonly bytesPerToken: number;
  private readonly owned: DeviceBuffer[] = [];
  private readonly arena = new Map<string, DeviceBuffer>();
  private readonly layers: Layer[] = [];
  private readonly embed: DW;
  private readonly norm: DW;
  private readonly head: DW;
  private readonly invFreq: Pointer;
  private readonly blockTable: Pointer;
  private readonly pages: number;

  constructor(private readonly device: Device, dir: string, maxLen: number, private readonly pageSize = 64) {
    const ck = openCheckpoint(dir), c = (this.c = ck.config);
    this.stream = device.stream();
    const D = c.hidden_size, H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
    const dv = c.v_head_dim, C = c.kv_lora_rank, qr = c.q_lora_rank, V = c.vocab_size;
    let bytes = 0, expertBytes = 0;
    const up = (w: Weight, count = true): DW => {
      const b = this.keep(device.upload(w.data, this.stream)), s = w.scale ? this.keep(device.upload(w.scale, this.stream)) : null;
      const n = w.data.byteLength + (w.scale?.byteLength ?? 0);
      if (count) bytes += n;
      return { ptr: b.ptr, scale: s?.ptr ?? null, dtype: w.dtype, rows: w.shape[0], cols: w.shape[w.shape.length - 1], bytes: n };
    };
    const mlp = (prefix: string, I: number): Mlp => {
      const e = loadExpertWeights(ck, prefix, D, I);
      return { w1: up(e.w1), w3: up(e.w3), w2: up(e.w2), I };
    };
    this.pages = Math.ceil(maxLen / pageSize);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}`, a = `${p}.self_attn`, moe = l >= c.first_k_dense_replace;
      const cache = (n: number) => this.keep(device.alloc(this.pages * pageSize * n * 4));
      const L: Layer = {
        attnNorm: up(ck.weight(`${p}.input_layernorm.weight`, [D])), ffnNorm: up(ck.weight(`${p}.post_attention_layernorm.weight`, [D])),
        wq: qr === null ? up(ck.weight(`${a}.q_proj.weight`, [H * (dn + dr), D])) : null,
        wqA: qr === null ? null : up(ck.weight(`${a}.q_a_proj.weight`, [qr, D])),
        qNorm: qr === null ? null : up(ck.weight(`${a}.q_a_layernorm.weight`, [qr])),
        wqB: qr === null ? null : up(ck.weight(`${a}.q_b_proj.weight`, [H * (dn + dr), qr])),
        wkvA: up(ck.weight(`${a}.kv_a_proj_with_mqa.weight`, [C + dr, D])), kvNorm: up(ck.weight(`${a}.kv_a_layernorm.weight`, [C])),
        wkvB: up(ck.weight(`${a}.kv_b_proj.weight`, [H * (dn + dv), C])), wo: up(ck.weight(`${a}.o_proj.weight`, [D, H * dv])),
        dense: moe ? null : mlp(`${p}.mlp`, c.intermediate_size),
        shared: moe && c.n_shared_experts > 0 ? mlp(`${p}.mlp.shared_experts`, c.n_shared_experts * c.moe_intermediate_size) : null,
        gate: moe ? up(ck.weight(`${p}.mlp.gate.weight`, [c.n_routed_experts, D])) : null,
        bias: moe && c.topk_method === "noaux_tc" ? this.keep(device.upload(ck.f32(`${p}.mlp.gate.e_score_correction_bias`, [c.n_routed_experts]))).ptr : null,
        tables: [], edtype: 0, kv: cache(C), pe: cache(dr),
      };
      if (moe) {
        const ws = Array.from({ length: c.n_routed_experts }, (_, e) => mlp(`${p}.mlp.experts.${e}`, c.moe_intermediate_size));
        expertBytes = ws[0].w1.bytes + ws[0].w3.bytes + ws[0].w2.bytes;
        L.edtype = ws[0].w1.dtype;
        bytes -= expertBytes * ws.length;
        const t = (f: (m: Mlp) => Pointer | null) => new BigUint64Array(ws.map((m) => BigInt(f(m) ?? 0)));
        L.tables = [t((m) => m.w1.ptr), t((m) => m.w1.scale), t((m) => m.w3.ptr), t((m) => m.w3.scale), t((m) => m.w2.ptr), t((m) => m.w2.scale)];
        bytes += expertBytes * c.num_experts_per_tok;
      }
      this.layers.push(L);
    }
    this.embed = up(ck.weight("model.embed_tokens.weight", [V, D]), false);
    this.norm = up(ck.weight("model.norm.weight", [D]));
    this.head = up(ck.weight("lm_head.weight", [V, D]));
    this.bytesPerToken = bytes + D * (this.embed.dtype === 0 ? 4 : 2);
    this.invFreq = this.keep(device.upload(ropeInvFreq(c))).ptr;
    this.blockTable = this.keep(device.upload(Int32Array.from({ length: this.pages }, (_, i) => i))).ptr;
    device.sync(this.stream);
  }

  private keep(b: DeviceBuffer): DeviceBuffer {
    this.owned.push(b);
    return b;
  }

  /** A named scratch buffer of at least `bytes` (reallocated only to grow). */
  private A(name: string, bytes: number): DeviceBuffer {
    let b = this.arena.get(name);
    if (!b || b.bytes < bytes) {
      b?.destroy(); // the runtime's free waits for queued work that may still use it
      this.arena.set(name, (b = this.device.alloc(Math.max(bytes, 256))));
    }
    return b;
  }

  private ok(what: string, st: number): void {
    this.device.check(what, st);
  }

  private lin(out: Pointer, x: Pointer, w: DW, T: number, o: { ldo?: number; ldx?: number; N?: number; K?: number } = {}): void {
    const N = o.N ?? w.rows, K = o.K ?? w.cols;
    this.ok("moe_linear", this.device.symbols.moe_linear(out, o.ldo ?? N, x, o.ldx ?? K, w.ptr, w.scale, w.dtype, 0, T, N, K, this.stream.handle));
  }

  private norm_(out: Pointer, x: Pointer, w: DW, T: number, D: number, ldx = D): void {
    this.ok("moe_rmsnorm", this.device.symbols.moe_rmsnorm(out, D, x, ldx, w.ptr, w.dtype, T, D, this.c.rms_norm_eps, this.stream.handle));
  }

  private mlp(m: Mlp, out: Pointer, x: Pointer, T: number): void {
    const s = this.device.symbols, g = this.A("g", T * m.I * 4).ptr, u = this.A("u", T * m.I * 4).ptr;
    this.lin(g, x, m.w1, T);
    this.lin(u, x, m.w3, T);
    this.ok("moe_silu_mul", s.moe_silu_mul(g, m.I, g, m.I, u, m.I, T, m.I, this.stream.handle));
    this.lin(out, g, m.w2, T, { N: this.c.hidden_size, K: m.I });
  }

  /** Forwards tokens at positions start.. of the sequence; the last row's logits stay on the device. */
  run(tokens: ArrayLike<number>, start: number): void {
    const { c, device } = this, s = device.symbols, st = this.stream.handle, T = tokens.length, D = c.hidden_size;
    if (start + T > this.pages * this.pageSize) throw new Error(`position ${start + T} beyond the cache`);
    const pos = Int32Array.from({ length: T }, (_, i) => start + i);
    const ids = this.A("ids", 4 * T), positions = this.A("pos", 4 * T);
    ids.upload(Int32Array.from(tokens), 0, this.stream);
    positions.upload(pos, 0, this.stream); // slots == positions: pages are 0.. in order
    const h = this.A("h", 4 * T * D).ptr, x = this.A("x", 4 * T * D).ptr, y = this.A("y", 4 * T * D).ptr;
    this.ok("moe_embed", s.moe_embed(h, ids.ptr, this.embed.ptr, this.embed.dtype, T, D, c.vocab_size, st));
    for (const L of this.layers) {
      this.norm_(x, h, L.attnNorm, T, D);
      this.mla(L, x, y, positions.ptr, T, start);
      this.ok("moe_add", s.moe_add(h, D, y, D, 1, T, D, st));
      this.norm_(x, h, L.ffnNorm, T, D);
      if (L.dense) this.mlp(L.dense, y, x, T);
      else {
        this.moe(L, x, y, T);
        if (L.shared) {
          const z = this.A("z", 4 * T * D).ptr;
          this.mlp(L.shared, z, x, T);
          this.ok("moe_add", s.moe_add(y, D, z, D, 1, T, D, st));
        }
      }
      this.ok("moe_add", s.moe_add(h, D, y, D, 1, T, D, st));
    }
    const hn = this.A("hn", 4 * D).ptr;
    this.norm_(hn, addr(h, 4 * (T - 1) * D), this.norm, 1, D);
    this.lin(this.A("logits", 4 * c.vocab_size).ptr, hn, this.head, 1);
  }

  private mla(L: Layer, x: Pointer, y: Pointer, positions: Pointer, T: number, start: number): void {
    const { c } = this, s = this.device.symbols, st = this.stream.handle;
    const H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim, C = c.kv_lora_rank;
    const q = this.A("q", 4 * T * H * (dn + dr)).ptr; // [T, H, dn+dr]
    if (L.wq) this.lin(q, x, L.wq, T);
    else {
      const qa = this.A("qa", 4 * T * c.q_lora_rank!).ptr; // [T, q_lora_rank]
      this.lin(qa, x, L.wqA!, T);
      this.norm_(qa, qa, L.qNorm!, T, c.q_lora_rank!);
      this.lin(q, qa, L.wqB!, T);
    }
    this.ok("moe_rope", s.moe_rope(q, H * (dn + dr), dn + dr, H, dn, positions, this.invFreq, T, dr, st));
    const kv = this.A("kv", 4 * T * (C + dr)).ptr; // [T, C+dr] latent | shared rope key
    this.lin(kv, x, L.wkvA, T);
    this.ok("moe_rope", s.moe_rope(kv, C + dr, 0, 1, C, positions, this.invFreq, T, dr, st));
    const lat = this.A("lat", 4 * T * C).ptr;
    this.norm_(lat, kv, L.kvNorm, T, C, C + dr);
    this.ok("moe_kv_write", s.moe_kv_write(L.kv.ptr, L.pe.ptr, null, 0, lat, C, addr(kv, 4 * C), C + dr, positions, T, C, dr, this.pages * this.pageSize, st));
    const o = this.A("o", 4 * T * H * dv).ptr, Lk = start + T; // [T, H*dv]
    if (T >= 32) { // prefill: expand kv_b over the context (model.ts's "naive")
      const gl = this.A("glat", 4 * Lk * C).ptr, gp = this.A("gpe", 4 * Lk * dr).ptr, kvx = this.A("kvx", 4 * Lk * H * (dn + dv)).ptr;
      this.ok("moe_kv_gather", s.moe_kv_gather(gl, gp, L.kv.ptr, L.pe.ptr, null, 0, this.blockTable, Lk, C, dr, this.pageSize, this.pages * this.pageSize, st));
      this.lin(kvx, gl, L.wkvB, Lk);
      this.ok("moe_mla_attend_naive", s.moe_mla_attend_naive(o, q, kvx, gp, T, Lk, start, H, dn, dr, dv, c.softmax_scale, st));
    } else { // decode: absorb kv_b into the query and the output
      const ql = this.A("qlat", 4 * T * H * C).ptr, ol = this.A("olat", 4 * T * H * C).ptr;
      this.ok("moe_mla_absorb_q", s.moe_mla_absorb_q(ql, q, L.wkvB.ptr, L.wkvB.scale, L.wkvB.dtype, T, H, dn, dr, dv, C, st));
      this.ok("moe_mla_attend", s.moe_mla_attend(ol, ql, q, L.kv.ptr, L.pe.ptr, null, 0, this.blockTable, this.pages, new Int32Array([0, T]),
        new Int32Array([Lk]), 1, H, C, dn, dr, this.pageSize, this.pages * this.pageSize, c.softmax_scale, st));
      this.ok("moe_mla_absorb_out", s.moe_mla_absorb_out(o, ol, L.wkvB.ptr, L.wkvB.scale, L.wkvB.dtype, T, H, dn, dv, C, st));
    }
    this.lin(y, o, L.wo, T);
  }

  private moe(L: Layer, x: Pointer, y: Pointer, T: number): void {
    const { c, device } = this, s = device.symbols, st = this.stream.handle, D = c.hidden_size, k = c.num_experts_per_tok;
    const E = c.n_routed_experts, grouped = c.topk_method !== "greedy", sig = c.scoring_func === "sigmoid";
    const gi = this.A("gids", 4 * T * k), gw = this.A("gw", 4 * T * k);
    this.ok("moe_gate", s.moe_gate(gi.ptr, gw.ptr, x, D, L.gate!.ptr, L.gate!.dtype, L.bias, T, D, E, grouped ? c.n_group : 1,
      grouped ? c.topk_group : 1, k, sig ? 0 : 1, sig || c.norm_topk_prob ? 1 : 0, c.routed_scaling_factor, st));
    // The router's host step: read the choices, group rows by expert (model/experts.ts's order).
    const ids = gi.download(new Int32Array(T * k), 0, this.stream), w = gw.download(new Float32Array(T * k), 0, this.stream);
    const offsets = new Int32Array(E + 1);
    for (const e of ids) offsets[e + 1]++;
    for (let e = 0; e < E; e++) offsets[e + 1] += offsets[e];
    const fill = offsets.slice(0, E), rows = new Int32Array(T * k), rw = new Float32Array(T * k);
    for (let r = 0; r < T * k; r++) {
      const at = fill[ids[r]]++;
      rows[at] = Math.floor(r / k);
      rw[at] = w[r];
    }
    const dr = this.A("rows", rows.byteLength), dw = this.A("rw", rw.byteLength);
    dr.upload(rows, 0, this.stream);
    dw.upload(rw, 0, this.stream);
    this.ok("moe_memcpy_h2d", s.moe_memcpy_h2d(y, new Float32Array(T * D), 4 * T * D, st)); // the experts accumulate
    const [t1, s1, t3, s3, t2, s2] = L.tables;
    this.ok("moe_experts", s.moe_experts(y, D, x, D, offsets, dr.ptr, dw.ptr, t1, s1, t3, s3, t2, s2, L.edtype,
      E, D, c.moe_intermediate_size, null, st));
  }

  logits(): Float32Array {
    return this.A("logits", 4 * this.c.vocab_size).download(new Float32Array(this.c.vocab_size), 0, this.stream);
  }

  /** Greedy next token, computed on the device (4 bytes come back). */
  argmax(): number {
    const id = this.A("argmax", 4);
    this.ok("moe_argmax", this.device.symbols.moe_argmax(id.ptr, this.A("logits", 4 * this.c.vocab_size).ptr, 1, this.c.vocab_size, this.stream.handle));
    return id.download(new Int32Array(1), 0, this.stream)[0];
  }

  destroy(): void {
    this.device.sync(this.stream);
    for (const b of [...this.owned, ...this.arena.values()]) b.destroy();
    this.stream.destroy();
  }
}
