"""Where and in which precision to run: one code path, only the autocast flag and dtype differ."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    autocast_enabled: bool

    @property
    def precision(self) -> str:
        return "bf16-autocast" if self.autocast_enabled else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast_enabled)


def resolve_device(device: str = "auto", precision: str = "auto") -> DeviceChoice:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if precision == "auto":
        use_bf16 = resolved.type == "cuda"
    elif precision in ("bf16", "fp32"):
        use_bf16 = precision == "bf16"
    else:
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    choice = DeviceChoice(resolved, use_bf16)
    log.info("interest encoder runs on %s with %s", choice.device, choice.precision)
    return choice
