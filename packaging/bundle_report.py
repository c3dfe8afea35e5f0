"""Sizes of a built bundle, sorted into parts, and the size budgets they are held to.

    .venv/bin/python packaging/bundle_report.py [dist/parley]

Used by packaging/build.sh (prints the table after a build), tests/test_bundle.py and bench/bundle.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundle_rules import MODEL_PARTS, in_engine_part, part_of  # noqa: E402

MB = 1_000_000

#: Issue 8's budgets: unpacked sizes on Linux, in MB (10^6 bytes).
BUDGET_APP_WITHOUT_MODELS_MB = 120
BUDGET_COMPLETE_MB = 450
#: What the build is held to today. Issue 8's budgets are out of reach with today's dependencies (Qt ~64 MB,
#: numpy ~43 MB, the engine's onnxruntime ~37 MB; OCR, HEIC, echo cancellation and the wake word add
#: ~130 MB; see docs/packaging.md), so the test and the build enforce these ceilings instead: the size
#: measured when they were last lowered plus ~10 MB of room. The app ceiling applies to the app part (the
#: app without the engine's part: no engine models, no engine runtimes). They catch a lost exclusion (PyAV alone is
#: ~105 MB, the rest of Qt ~80 MB, Silero's own runtime 23 MB, the float16 Whisper file +37 MB, an engine
#: runtime slipping back into the app part); lower them whenever something is dropped, raise them only on
#: purpose.
#: Measured after the engine's runtimes moved to the engine part and ICU's data was trimmed: app part
#: 296.4 MB, complete 533.0 MB (before: 446.2 / 555.9); after the local VAD moved to numpy and ONNX Runtime
#: to the engine part: app part 236.9 MB; after the Piper voice went float16 and pydantic/sqlite3 were left out:
#: app part 229.1 MB, complete 471.2 MB; after SecretStorage and cryptography were left out (Parley's own Secret
#: Service backend): app part 214.5 MB, complete 456.7 MB; after the Rust tokenizers gave way to a Python BPE:
#: complete 445.5 MB, inside issue 8's 450 MB budget, which is now also the enforced ceiling.
CEILING_APP_PART_MB = 224
CEILING_COMPLETE_MB = 450
#: Older name of the app ceiling.
CEILING_APP_WITHOUT_MODELS_MB = CEILING_APP_PART_MB


def bundle_root(dist: Path) -> Path:
    """The folder whose files are "the bundle" (dist/parley, or Parley.app/Contents on macOS)."""
    return dist


def internal_dir(root: Path) -> Path:
    """PyInstaller ≥ 6 puts everything but the executable in `_internal/`."""
    internal = root / "_internal"
    return internal if internal.is_dir() else root


def measure(root: Path | str, top: int = 15) -> dict:
    root = Path(root)
    internal = internal_dir(root)
    parts: dict[str, int] = {}
    files: list[tuple[int, str]] = []
    total = engine = 0
    app_files: list[tuple[int, str]] = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            size = path.stat().st_size
            total += size
            try:
                rel = path.relative_to(internal).as_posix()
            except ValueError:
                rel = path.relative_to(root).as_posix()
            part = part_of(rel)
            parts[part] = parts.get(part, 0) + size
            files.append((size, rel))
            if in_engine_part(rel):
                engine += size
            else:
                app_files.append((size, rel))
    models = sum(v for k, v in parts.items() if k in MODEL_PARTS)
    files.sort(reverse=True)
    app_files.sort(reverse=True)
    return {
        "total_mb": round(total / MB, 1),
        "models_mb": round(models / MB, 1),
        "app_without_models_mb": round((total - models) / MB, 1),
        # The app part, and the offline engine's part (models and the runtimes only the engine loads;
        # bundle_rules.ENGINE_PART): both ship in the one archive and the .deb since issue 18.
        "app_part_mb": round((total - engine) / MB, 1),
        "engine_part_mb": round(engine / MB, 1),
        "parts_mb": {k: round(v / MB, 1) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
        "largest_files": [{"file": rel, "mb": round(size / MB, 1)} for size, rel in files[:top]],
        "largest_app_part_files": [{"file": rel, "mb": round(size / MB, 1)} for size, rel in app_files[:top]],
        "file_count": len(files),
        "budgets_mb": {"app_without_models": BUDGET_APP_WITHOUT_MODELS_MB, "complete": BUDGET_COMPLETE_MB},
        "ceilings_mb": {"app_part": CEILING_APP_PART_MB, "complete": CEILING_COMPLETE_MB},
    }


def _over(report: dict, app_limit: float, complete_limit: float, what: str) -> list[str]:
    problems = []
    if report["app_part_mb"] > app_limit:
        problems.append(
            f"the app part (without the offline engine's part) is {report['app_part_mb']} MB "
            f"({what} {app_limit} MB)"
        )
    if report["total_mb"] > complete_limit:
        problems.append(f"the complete bundle is {report['total_mb']} MB ({what} {complete_limit} MB)")
    return problems


def over_budget(report: dict) -> list[str]:
    """Violations of the enforced ceilings (empty when the bundle is within them)."""
    return _over(report, CEILING_APP_PART_MB, CEILING_COMPLETE_MB, "ceiling")


def over_issue_budget(report: dict) -> list[str]:
    """How far the bundle is from issue 8's budgets (reported, not enforced: see the ceilings)."""
    return _over(report, BUDGET_APP_WITHOUT_MODELS_MB, BUDGET_COMPLETE_MB, "issue 8's budget")


def table(report: dict) -> str:
    lines = [f"{'part':<75} {'MB':>7}"]
    for part, mb in report["parts_mb"].items():
        lines.append(f"{part:<75} {mb:>7.1f}")
    lines.append(
        f"{'complete bundle':<75} {report['total_mb']:>7.1f}  "
        f"(issue budget {BUDGET_COMPLETE_MB}, enforced ceiling {CEILING_COMPLETE_MB})"
    )
    lines.append(
        f"{'app part (what the app loads, without the offline engine)':<75} {report['app_part_mb']:>7.1f}  "
        f"(issue budget {BUDGET_APP_WITHOUT_MODELS_MB}, enforced ceiling {CEILING_APP_PART_MB})"
    )
    lines.append(f"{'offline engine part (its models + the runtimes only it loads)':<75} "
                 f"{report['engine_part_mb']:>7.1f}")
    lines.append(f"{'app without the engine models':<75} {report['app_without_models_mb']:>7.1f}")
    lines.append("largest files: " + ", ".join(f"{f['file']} {f['mb']}" for f in report["largest_files"][:8]))
    lines.append("largest in the app part: "
                 + ", ".join(f"{f['file']} {f['mb']}" for f in report["largest_app_part_files"][:8]))
    return "\n".join(lines)


def engine_files(root: Path | str) -> list[str]:
    """The offline engine part's files, relative to `_internal/` (bundle_rules.ENGINE_PART)."""
    internal = internal_dir(Path(root))
    out = []
    for dirpath, _dirs, names in os.walk(internal):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(internal).as_posix()
            if in_engine_part(rel):
                out.append(rel)
    return sorted(out)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--list-engine"]:  # the engine part's files, relative to the bundle's parent
        root = Path(argv[1])
        rel = internal_dir(root).relative_to(root.parent).as_posix()
        print("\n".join(f"{rel}/{f}" for f in engine_files(root)))
        return 0
    argv = [a for a in argv if a != "--json"] + (["--json"] if "--json" in argv else [])
    root = Path(argv[0]) if argv and argv[0] != "--json" else Path(__file__).resolve().parent.parent / "dist" / "parley"
    if not root.is_dir():
        print(f"no bundle at {root}: build it with packaging/build.sh", file=sys.stderr)
        return 2
    report = measure(root)
    if "--json" in argv:
        print(json.dumps(report, indent=2))
    else:
        print(table(report))
    for p in over_issue_budget(report):
        print("over issue 8's budget:", p, file=sys.stderr)
    problems = over_budget(report)
    for p in problems:
        print("OVER THE ENFORCED CEILING:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
