"""Which device and number format the models run in, decided from the hardware."""
from __future__ import annotations

from pathlib import Path


def pick_device(setting: str) -> str:
    """`auto` means CUDA when a GPU is visible, else the CPU."""
    import torch

    if setting not in ("", "auto"):
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def native_bf16(device: str) -> bool:
    """Whether bfloat16 matrix maths runs in hardware here, so bf16 is faster rather than emulated."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(flag in flags for flag in (" avx512_bf16", " amx_bf16"))


def pick_precision(setting: str, device: str) -> str:
    """nf4 on CUDA; on the CPU bf16 where the CPU has bf16 instructions, else fp32.

    On this project's CPU (AVX512-BF16) bf16 answers faster than fp32 with the same multiple-choice picks,
    while nf4 changes the picks of the 135M default model (bench/RESULTS.md, answer section).
    """
    if setting != "auto":
        return setting
    if device == "cuda":
        return "nf4"
    return "bf16" if native_bf16(device) else "fp32"
