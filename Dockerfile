# moe-actors: the README's set-up (npm ci, the kernel build) in an image whose CMD serves the bundled
# model (`npx moe serve`). The same image runs the expert workers (`npx moe worker --node NAME`, see
# deploy/k8s/). Bun comes from npm as a dependency; gcc and make (for the CPU kernels) are in the
# full Debian node image. A CUDA host would build from an nvidia/cuda base with nvcc instead.
FROM node:22-bookworm

WORKDIR /app

# dependencies first (runtime ones: bun, hono, zod, nats, ...): they change less often than the sources
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

COPY . .
# the CPU kernel library (kernels/build/libmoe_cpu.so); CUDA only where nvcc is present
RUN npm run build:kernels

EXPOSE 8000
# serve listens on 127.0.0.1 unless told otherwise: in a container it must take the pod's address
CMD ["npx", "moe", "serve", "--host", "0.0.0.0", "--port", "8000"]
