// Picks the kernel library for an actor's `device` setting: "cpu" (default), "cuda:N", "hip:N".
import { type Kernels, cpuKernels } from "./kernels.ts";

export function kernelsFor(device: string | undefined): Kernels {
  if (!device || device === "cpu") return cpuKernels();
  const m = /^(cuda|hip):(\d+)$/.exec(device);
  if (!m) throw new Error(`device "${device}" is not cpu, cuda:N or hip:N`);
  // The model keeps activations in host memory, so a device library cannot serve it yet.
  throw new Error(`device "${device}": this actor's model code runs on host memory; the ${m[1]} kernels are usable through src/kernels/device.ts but not yet as an actor's backend`);
}
