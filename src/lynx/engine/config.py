"""Engine configuration: one slotted dataclass, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lynx.errors import LynxError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LOAD_FORMATS = ("auto", "dummy")


@dataclass(slots=True)
class EngineConfig:
    """Everything the engine needs besides the checkpoint itself.

    Memory: on CUDA the KV cache gets ``gpu_memory_utilization`` of the device memory
    minus what the weights and activations use; on CPU it gets ``kv_cache_bytes``.
    ``num_kv_blocks`` overrides both (tests use it to force preemption).
    """

    model: str
    routing: str = "topk"
    routing_params: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    dtype: str = "auto"
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 16384
    max_model_len: int | None = None
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    kv_cache_bytes: int = 1 << 30
    num_kv_blocks: int | None = None
    enforce_eager: bool = False
    seed: int = 0
    record_stats: bool = True
    # Launch decode step n+1 before collecting step n's tokens (input ids stay on the device),
    # hiding the host's per-step work behind the GPU's. A sequence that stops on EOS or a stop
    # id costs one discarded (invalid) row in the step after its last and keeps its seat and
    # blocks one step longer; under top-k, and whenever requests end on their length, the
    # tokens are those of the synchronous loop, while under LYNX/OEA that later seat can
    # change who shares a step (as any difference in arrival timing would).
    # None: on for CUDA devices, off on the CPU (where launches are synchronous anyway).
    overlap_decode: bool | None = None
    load_format: str = "auto"  # "auto": read the checkpoint; "dummy": random weights (timing only)

    def __post_init__(self) -> None:
        def check(ok: bool, msg: str) -> None:
            if not ok:
                raise LynxError(f"invalid engine configuration: {msg}")

        check(self.device in DEVICES or self.device.startswith("cuda:"), f"device must be one of {DEVICES}, got {self.device!r}")
        check(self.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        check(self.max_num_seqs >= 1, f"max_num_seqs must be >= 1, got {self.max_num_seqs}")
        check(self.max_num_batched_tokens >= 1, f"max_num_batched_tokens must be >= 1, got {self.max_num_batched_tokens}")
        check(self.max_model_len is None or self.max_model_len >= 2, f"max_model_len must be >= 2, got {self.max_model_len}")
        check(self.block_size >= 1 and self.block_size & (self.block_size - 1) == 0, f"block_size must be a power of two, got {self.block_size}")
        check(0 < self.gpu_memory_utilization <= 1, f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        check(self.kv_cache_bytes > 0, f"kv_cache_bytes must be > 0, got {self.kv_cache_bytes}")
        check(self.num_kv_blocks is None or self.num_kv_blocks >= 1, f"num_kv_blocks must be >= 1, got {self.num_kv_blocks}")
        check(isinstance(self.routing_params, dict), "routing_params must be a dict")
        check(self.load_format in LOAD_FORMATS, f"load_format must be one of {LOAD_FORMATS}, got {self.load_format!r}")
        check(self.overlap_decode in (None, True, False), f"overlap_decode must be None, True or False, got {self.overlap_decode!r}")
