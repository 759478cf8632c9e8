# Kernel micro-benchmark: build/bench-kernels (run by hand or from make bench).
$(eval $(call add_program,bench-kernels,tests/bench/bench-kernels.c,))
