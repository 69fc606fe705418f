"""Where and in which precision to run, and whether to compile: one code path, only the autocast
flag and dtype, and the torch.compile wrapper around the training loss, differ."""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Callable

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    autocast_enabled: bool
    compile_backend: str | None = None  # torch.compile backend of the training loss; None = eager

    @property
    def precision(self) -> str:
        return "bf16-autocast" if self.autocast_enabled else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast_enabled)

    def compiled(self, loss_fn: Callable) -> Callable:
        """The training loss as torch.compile'd by `compile_backend` (itself when None). Data-dependent
        shapes (the supervised positions of a window batch) split the graph; they do not fail."""
        return loss_fn if self.compile_backend is None else torch.compile(loss_fn, backend=self.compile_backend)

    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        """A host batch on the device: on CUDA through pinned memory with a non-blocking copy (the
        copy overlaps the previous step's kernels); on the CPU the tensor itself, no copy."""
        if self.device.type != "cuda":
            return batch
        return batch.pin_memory().to(self.device, non_blocking=True)


def cpu_threads(cores: int | None = None) -> int:
    """Leave one core free: on a small shared CPU, torch's OpenMP workers spin against the other
    processes (measured here: a training step 10x slower with 2 threads than with 1 on 2 busy cores)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores - 1)


def resolve_device(device: str = "auto", precision: str = "auto", compile: str = "off") -> DeviceChoice:
    """`compile`: 'auto' compiles the training loss with inductor on CUDA only (on this 2-core CPU
    the first compile of even a tiny encoder took 74 s, more than the training it would speed up);
    'off'; or a torch.compile backend name ('inductor', 'aot_eager', ...) to force it anywhere."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cpu" and "ADFLOW_TORCH_THREADS" not in os.environ:
        torch.set_num_threads(cpu_threads())
    elif "ADFLOW_TORCH_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["ADFLOW_TORCH_THREADS"]))
    if precision == "auto":
        use_bf16 = resolved.type == "cuda"
    elif precision in ("bf16", "fp32"):
        use_bf16 = precision == "bf16"
    else:
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    if compile == "auto":
        backend = "inductor" if resolved.type == "cuda" else None
    else:
        backend = None if compile == "off" else compile
    choice = DeviceChoice(resolved, use_bf16, backend)
    log.info("interest encoder runs on %s with %s, %s", choice.device, choice.precision,
             f"training loss compiled by {backend}" if backend else "eager")
    return choice
