"""Helpers shared by the benchmarks: machine description, sample summaries, result files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def machine_summary(machine: dict[str, Any]) -> str:
    """One line for the docs: "AMD EPYC 7B13, 2 CPUs, Linux-…, Python 3.11.7, numpy 2.1.0"."""
    parts = [str(machine.get("processor") or "unknown CPU")]
    if machine.get("cpu_count"):
        parts.append(f"{machine['cpu_count']} CPUs")
    if machine.get("platform"):
        parts.append(str(machine["platform"]))
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    if machine.get("numpy"):
        parts.append(f"numpy {machine['numpy']}")
    return ", ".join(parts)


def summarize(samples: list[float], digits: int = 1) -> dict[str, float | int]:
    """Median, 95th percentile (linear interpolation), min, max and count of `samples`."""
    if not samples:
        return {"median": None, "p95": None, "min": None, "max": None, "n": 0}
    a = np.asarray(samples, dtype=float)
    return {
        "median": round(float(np.median(a)), digits),
        "p95": round(float(np.percentile(a, 95)), digits),
        "min": round(float(a.min()), digits),
        "max": round(float(a.max()), digits),
        "n": int(a.size),
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_result(name: str, report: dict[str, Any]) -> Path:
    """Write `report` to bench/results/<name>.json (adding "date" and "machine" when missing)."""
    report.setdefault("benchmark", name)
    report.setdefault("date", now_iso())
    report.setdefault("machine", machine_info())
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
