"""Benchmarks and GPU checks behind ``lynx bench``.

``decode``: decode-step time vs the memory roofline. ``kernels``, ``routing``, ``attention``:
correctness and timing of the Triton kernels (:mod:`lynx.bench.gpu_check` holds their shared
run context).
"""
