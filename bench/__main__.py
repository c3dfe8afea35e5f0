"""Run the benchmarks and rebuild docs/performance.md from bench/results/*.json.

    python -m bench                 every module bench/*.py (not `_`-prefixed) that defines run()
    python -m bench NAME [NAME...]  only those modules, e.g. `python -m bench latency`
    python -m bench --list          the benchmark modules
    python -m bench --docs-only     only rebuild docs/performance.md from the stored results

Each run() returns a dict with at least "benchmark", "command", "results" and "markdown"; the runner
stores it (with date and machine) in bench/results/<benchmark>.json, then regenerates the whole of
docs/performance.md from every results file, including benchmarks that were not re-run this time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ._common import BENCH, RESULTS, ROOT, machine_summary, write_result

DOC = ROOT / "docs" / "performance.md"
REQUIRED = ("benchmark", "command", "results", "markdown")

HEADER = """# Performance

Every figure on this page is produced by a benchmark in `bench/` and regenerated from
`bench/results/*.json` each time benchmarks run. To reproduce them:

```sh
./dev bench              # every benchmark (sets up .venv first), then rewrites this page
./dev bench NAME         # only bench/NAME.py, e.g. ./dev bench latency; the other sections are kept
```

(`.venv/bin/python -m bench [NAME...]` does the same without the setup step.) The raw numbers, with
medians, p95 and the machine they were measured on, are in `bench/results/<benchmark>.json`. These
machines are shared and noisy, so compare figures measured in the same run rather than across runs.
"""


def discover() -> list[str]:
    """Module names of bench/*.py that may hold a benchmark (run() is checked on import)."""
    return sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_"))


def load(name: str):
    module = importlib.import_module(f"bench.{name}")
    run = getattr(module, "run", None)
    return module if callable(run) else None


def run_one(name: str) -> dict[str, Any]:
    module = load(name)
    if module is None:
        raise RuntimeError(f"bench/{name}.py defines no run()")
    t0 = time.perf_counter()
    report = module.run()
    elapsed = time.perf_counter() - t0
    if not isinstance(report, dict):
        raise TypeError(f"bench/{name}.py: run() returned {type(report).__name__}, not a dict")
    missing = [k for k in REQUIRED if k not in report]
    if missing:
        raise ValueError(f"bench/{name}.py: run() result lacks {', '.join(missing)}")
    report.setdefault("module", f"bench/{name}.py")
    report["duration_s"] = round(elapsed, 1)
    write_result(report["benchmark"], report)  # stored with its markdown, so the doc can be rebuilt
    return report


def _untitled(text: str) -> str:
    """Markdown without a leading heading of its own (the section already has its title)."""
    text = text.strip()
    if text.startswith("#"):
        text = text.split("\n", 1)[1].strip() if "\n" in text else ""
    return text


def _section(report: dict[str, Any], source: Path) -> str:
    title = report.get("title") or report["benchmark"]
    lines = [f"## {title}", ""]
    facts = [f"- **Command:** `{report.get('command', '?')}`"]
    module = report.get("module")
    facts.append(f"- **Module / raw results:** `{module or 'bench/'}` → `{source.relative_to(ROOT).as_posix()}`")
    if report.get("date"):
        facts.append(f"- **Measured:** {report['date']}" + (f" (took {report['duration_s']} s)" if report.get("duration_s") else ""))
    if report.get("machine"):
        facts.append(f"- **Machine:** {machine_summary(report['machine'])}")
    lines += facts + [""]
    notes = _untitled(report.get("notes") or "")
    if notes:
        lines += [notes, ""]
    lines += [_untitled(report.get("markdown") or "") or "_(no table stored in this result file)_", ""]
    return "\n".join(lines)


def render_docs() -> str:
    sections = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"[bench] skipping {path.name}: {exc}", file=sys.stderr)
            continue
        if not isinstance(report, dict) or "benchmark" not in report:
            print(f"[bench] skipping {path.name}: not a benchmark result", file=sys.stderr)
            continue
        sections.append(_section(report, path))
    body = "\n".join(sections) if sections else "_No results yet: run `./dev bench`._\n"
    return HEADER + "\n" + body


def write_docs() -> Path:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render_docs(), encoding="utf-8")
    return DOC


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run Parley's benchmarks.")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    parser.add_argument("--docs-only", action="store_true", help="only rebuild docs/performance.md")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    available = discover()
    if args.list:
        print("\n".join(n for n in available if load(n) is not None))
        return 0
    if not args.docs_only:
        unknown = [n for n in args.names if n not in available]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
        names = args.names or available
        failed = []
        for name in names:
            if not args.names and load(name) is None:
                continue  # a helper module without run()
            print(f"[bench] {name} …", file=sys.stderr, flush=True)
            try:
                report = run_one(name)
            except Exception:  # keep going: one broken benchmark must not hide the others
                traceback.print_exc()
                failed.append(name)
                continue
            print(report["markdown"])
            print(f"[bench] {name}: {report['duration_s']} s → bench/results/{report['benchmark']}.json\n",
                  file=sys.stderr, flush=True)
    else:
        failed = []
    doc = write_docs()
    print(f"[bench] wrote {doc.relative_to(ROOT)}", file=sys.stderr)
    if failed:
        print(f"[bench] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
