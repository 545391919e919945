// The device library's own entry points: identity, memory and copies, streams, the errors a
// kernel finds in device data (reported by moe_sync with the CPU's status and message), and
// the TS owners of device memory.
import { expect, test } from "bun:test";
import { Device, DeviceError, parseDevice } from "../../src/kernels/device.ts";
import { cpu, forTargets } from "./harness.ts";

test("parseDevice reads scaling-config device names", () => {
  expect(parseDevice("cpu")).toEqual({ backend: "cpu", index: 0 });
  expect(parseDevice("cuda:3")).toEqual({ backend: "cuda", index: 3 });
  expect(parseDevice("hip")).toEqual({ backend: "hip", index: 0 });
  expect(() => parseDevice("tpu:0")).toThrow(DeviceError);
  expect(() => parseDevice("cpu:1")).toThrow(DeviceError);
});

test("a missing library is a clear DeviceError", () => {
  expect(() => Device.open("cuda", 0, "/nonexistent/libmoe_cuda.so")).toThrow(/libmoe_cuda.so is missing/);
});

forTargets("device library", ({ device }) => {
  const s = device.symbols, c = cpu();

  test("identity", () => {
    expect(s.moe_abi_version()).toBe(c.moe_abi_version());
    expect(["cuda", "hip", "emu"]).toContain(String(s.moe_backend()));
    expect(s.moe_set_threads(4)).toBe(0);
    const n = new Int32Array(1);
    expect(s.moe_device_count(n)).toBe(0);
    expect(n[0]).toBeGreaterThan(0);
    expect(s.moe_set_device(n[0])).toBe(3);
    expect(String(s.moe_last_error())).toContain(`no device ${n[0]}`);
    expect(s.moe_set_device(device.index)).toBe(0);
  });

  test("copies round-trip through device memory; bad copies fail as on the CPU", () => {
    const a = device.upload(new Float32Array([1, 2, 3, 4]));
    const b = device.alloc(16);
    device.check("d2d", s.moe_memcpy_d2d(b.ptr, a.ptr, 16, null));
    expect(Array.from(b.download(new Float32Array(4)))).toEqual([1, 2, 3, 4]);
    expect(s.moe_memcpy_h2d(b.ptr, null, 4, null)).toBe(c.moe_memcpy_h2d(new Uint8Array(4), null, 4, null));
    expect(String(s.moe_last_error())).toBe(String(c.moe_last_error()));
    expect(s.moe_alloc(null, 4)).toBe(1);
    a.destroy();
    a.destroy(); // idempotent
    expect(() => a.ptr).toThrow(DeviceError);
    b.destroy();
  });

  test("work on a stream, then sync", () => {
    const st = device.stream();
    const x = device.alloc(4 * 64);
    x.upload(new Float32Array(64).fill(2), 0, st);
    device.check("add", s.moe_add(x.ptr, 64, x.ptr, 64, 1.5, 1, 64, st.handle));
    expect(x.download(new Float32Array(64), 0, st)[63]).toBe(5);
    st.destroy();
    st.destroy();
    x.destroy();
  });

  test("bad device data is reported by the next sync", () => {
    const table = device.upload(new Float32Array(8)), out = device.alloc(32), ids = device.upload(new Int32Array([1, 9]));
    expect(s.moe_embed(out.ptr, ids.ptr, table.ptr, 0, 2, 4, 2, null)).toBe(0);
    expect(s.moe_sync(null)).toBe(4);
    expect(String(s.moe_last_error())).toBe("moe_embed: token id 9 outside the vocabulary [0, 2)");
    expect(s.moe_sync(null)).toBe(0);
    const slots = device.upload(new Int32Array([-2]));
    expect(s.moe_kv_write(out.ptr, out.ptr, null, 0, table.ptr, 4, table.ptr, 4, slots.ptr, 1, 2, 2, 4, null)).toBe(0);
    expect(s.moe_sync(null)).toBe(1);
    expect(String(s.moe_last_error())).toBe("moe_kv_write: slot -2 outside the KV cache [0, 4)");
    for (const b of [table, out, ids, slots]) b.destroy();
  });
});
