"""Benchmarks: decode-step time vs the memory roofline (``lynx bench decode``)."""
