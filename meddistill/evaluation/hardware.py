"""Which CPU a figure came from: model name, vector instruction sets, and any ISA limit in force."""

from __future__ import annotations

import os
import platform
from pathlib import Path

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    fields = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def cpu_name() -> str:
    """``AMD EPYC 9R14`` (or the platform's processor string)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Which of AVX2, AVX-512, AVX-512 BF16 and AMX the CPU has."""
    flags = set(_cpuinfo().get("flags", "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def isa_limits() -> dict[str, str]:
    """ISA limits set in the environment (``ATEN_CPU_CAPABILITY=avx2``...)."""
    return {name: os.environ[name] for name in ISA_LIMITS if name in os.environ}


def describe_cpu() -> str:
    """One line: the model, its flags, the usable cores and any ISA limit."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limits = ", ".join(f"{k}={v}" for k, v in isa_limits().items()) or "none"
    return f"{cpu_name()} ({cores} cores; {' '.join(cpu_flags()) or 'no AVX2'}; ISA limit: {limits})"
