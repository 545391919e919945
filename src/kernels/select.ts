// Picks the kernel library for an actor's `device` setting: "cpu" (default), "cuda:N", "hip:N".
// A device that is missing (no library built, no GPU present) is a clear DeviceError at activation.
import { Device, parseDevice } from "./device.ts";
import { type Kernels, cpuKernels } from "./kernels.ts";
import { stagedKernels } from "./staged.ts";

const opened = new Map<string, Kernels>();

export function kernelsFor(device: string | undefined): Kernels {
  if (!device || device === "cpu") return cpuKernels();
  let k = opened.get(device);
  if (!k) {
    const { backend, index } = parseDevice(device);
    if (backend === "cpu") return cpuKernels();
    k = stagedKernels(Device.open(backend, index));
    opened.set(device, k);
  }
  return k;
}
