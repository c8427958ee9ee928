"""What a run reports: the machine it ran on, a plain-text table, and the figures as JSON."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import cached_tts

from .cases import (
    CLIP_SECONDS,
    DISK_HIT_REPEATS,
    DISK_HIT_TARGET_S,
    IDLE_REPEATS,
    IDLE_SECONDS,
    MEMORY_HIT_REPEATS,
    MEMORY_HIT_TARGET_S,
    NEW_WRAPPER_REPEATS,
)
from .checkpoint import CHECKPOINT_REPEATS
from .timing import Bench, fmt


def machine(device: torch.device) -> dict[str, Any]:
    """What ran the benchmark."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cached_tts": cached_tts.__version__,
        "device": str(device),
        "load_average_at_start": load_average(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def table(bench: Bench, info: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    gpu = f", {info['gpu']}" if "gpu" in info else ""
    where = (
        f"cached-tts {info['cached_tts']} on {info['cpu']} ({info['cores']} cores, "
        f"{info['torch_threads']} torch threads), torch {info['torch']}, "
        f"device {info['device']}{gpu}"
    )
    what = (
        f"{CLIP_SECONDS:.0f} s clip, full architecture (T3 with "
        f"{bench.sizes['t3_parameters'] / 1e6:.0f}M parameters), random weights"
    )
    load = f"load average {info['load_average_at_start']} at start, {load_average()} at end"
    lines = [where, what, load, ""]
    width = max(len(r.label) for r in bench.results.values())
    header = f"{'case':<{width}}  {'median':>10}  {'min':>10}  {'n':>4}  {'preempt':>7}  target"
    lines += [header, "-" * (len(header) + 28)]
    for r in bench.results.values():
        verdict = "" if r.met is None else ("  ok" if r.met else "  MISSED")
        lines.append(
            f"{r.label:<{width}}  {fmt(r.median):>10}  {fmt(r.min):>10}  "
            f"{len(r.seconds):>4}  {r.timings.preemptions:>7}  {r.target}{verdict}"
        )
    lines += [
        "",
        "preempt: involuntary context switches during the timed calls, from other work",
        "on the machine; where they are many, the median measures the machine's load.",
        "",
        "sizes:",
    ]
    lines += [f"  {name}: {value:,}" for name, value in bench.sizes.items()]
    return "\n".join(lines)


def report(bench: Bench, info: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The figures, the machine and the settings, ready for JSON."""
    return {
        "when": datetime.now(tz=timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "settings": {
            "clip_seconds": CLIP_SECONDS,
            "repeat_miss": args.repeat_miss,
            "memory_hit_repeats": MEMORY_HIT_REPEATS,
            "disk_hit_repeats": DISK_HIT_REPEATS,
            "new_wrapper_repeats": NEW_WRAPPER_REPEATS,
            "idle_seconds": IDLE_SECONDS,
            "idle_repeats": IDLE_REPEATS,
            "checkpoint_repeats": CHECKPOINT_REPEATS,
            "checkpoint": args.checkpoint,
        },
        "targets": {
            "memory_hit_median_s": MEMORY_HIT_TARGET_S,
            "disk_hit_median_s": DISK_HIT_TARGET_S,
            "disk_hit_faster_than_upstream_load": True,
        },
        "results": {key: r.as_json() for key, r in bench.results.items()},
        "sizes_bytes": bench.sizes,
        "setup_seconds": bench.setup_seconds,
        "load_average_at_end": load_average(),
    }
