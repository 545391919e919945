# Builds build/libmoe_hip.so for AMD GPUs with hipcc, from the same sources as the CUDA library
# (cuda/*.cu; portability.h maps the runtime API and warp shuffles). The tensor-core tile kernel
# is CUDA-only for now, so on AMD every matmul takes the GEMV path. Incremental, parallel.
# HIP_ARCH lists the targets wanted (MI300 = gfx942, MI200 = gfx90a); those this hipcc cannot
# build are dropped with a note. Exports exactly the ABI of include/moe_kernels.h.
BUILD := build
HIPCC ?= hipcc
HIP_ARCH ?= gfx942 gfx90a
# hipcc targets NVIDIA when nvcc is installed; make 4.3 does not export to $(shell), so say it.
HIP := HIP_PLATFORM=amd $(HIPCC)
SRC := $(filter-out cuda/mma.cu,$(wildcard cuda/*.cu))
HDR := $(wildcard cuda/*.h cuda/*.cuh) include/moe_kernels.h
OBJ := $(patsubst cuda/%.cu,$(BUILD)/hip/%.o,$(SRC))
EXPORTS := $(BUILD)/moe_exports.map
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
ifndef ARCH_FLAGS
ARCHS := $(shell mkdir -p $(BUILD)/hip && echo 'int x;' > $(BUILD)/hip/probe.hip && for a in $(HIP_ARCH); do \
  $(HIP) --offload-arch=$$a -c $(BUILD)/hip/probe.hip -o $(BUILD)/hip/probe.o >/dev/null 2>&1 && echo $$a; done)
endif
HIPFLAGS ?= -O3 -std=c++17 -fPIC -Wno-unused-result

all:
	@$(MAKE) --no-print-directory -j$(JOBS) -f Makefile.hip lib ARCH_FLAGS="$(foreach a,$(ARCHS),--offload-arch=$(a))" ARCHS_OK="$(ARCHS)"

lib: $(BUILD)/libmoe_hip.so

$(EXPORTS): include/moe_kernels.h
	@mkdir -p $(dir $@)
	@{ echo '{ global:'; sed -n 's/^[a-z].*[ *]\(moe_[a-z0-9_]*\)(.*/  \1;/p' $<; echo 'local: *; };'; } > $@

$(BUILD)/hip/%.o: cuda/%.cu $(HDR)
	@mkdir -p $(dir $@)
	@[ -n "$(ARCH_FLAGS)" ] || { echo "Makefile.hip: $(HIPCC) builds none of HIP_ARCH=$(HIP_ARCH)" >&2; exit 1; }
	$(HIP) $(HIPFLAGS) $(ARCH_FLAGS) -x hip -c $< -o $@

$(BUILD)/libmoe_hip.so: $(OBJ) $(EXPORTS)
	@for a in $(HIP_ARCH); do case " $(ARCHS_OK) " in *" $$a "*) ;; *) echo "Makefile.hip: note: $(HIPCC) cannot build $$a; libmoe_hip.so will not run there" >&2;; esac; done
	$(HIP) -shared $(ARCH_FLAGS) -o $@ $(OBJ) -Wl,--version-script=$(EXPORTS)

clean:
	rm -rf $(BUILD)/hip $(BUILD)/libmoe_hip.so

.PHONY: all lib clean
