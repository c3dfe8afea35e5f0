"""The installer: build time, sizes (and what dominates them), the download's compression, and start time.

    python -m bench bundle

Builds the bundle with packaging/build.sh into a temporary folder (no PyInstaller cache survives from
an earlier build), measures its parts with packaging/bundle_report.py, then starts the bundled app's
`--self-test` several times and takes, for each run, the wall-clock time from spawning the process to
the window being connected to the bundled engine (the engine started, its WebSocket connected). The
same is measured for the app run from source in the same run, as the baseline, and for the app installed
from the Debian package (into a throwaway copy of this system, tests/system_overlay.py: the clock starts
inside it, right before `parley` is executed). The download's compression is compared on the same bundle:
gzip -6 (what the archives used before), xz -6 (what build.sh uses) and zstd -19. Set
PARLEY_BUNDLE=/path/to/dist/parley to measure an existing bundle instead of building one (then no package),
PARLEY_BENCH_SKIP_COMPRESSION=1 to leave out the compression comparison (about 5 minutes on 2 CPUs).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._common import ROOT, summarize
from tests.system_overlay import SystemOverlay

sys.path.insert(0, str(ROOT / "packaging"))
from bundle_report import BUDGET_APP_WITHOUT_MODELS_MB, BUDGET_COMPLETE_MB, measure  # noqa: E402

BUDGET_START_MS = 1500
RUNS = 5
RESULT_PREFIX = "PARLEY_SELF_TEST"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "PYTHONPATH", "VIRTUAL_ENV")}
    # No sound server start (desktop/audio/sound_server.py): a one-off on a machine where none runs, not what
    # a start costs once one does.
    env.update(PARLEY_NO_SOUND_SERVER_START="1")
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_STATE_HOME=str(home / "state"),
               XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    return env


def _self_test(cmd: list[str], home: Path) -> dict:
    """One `--self-test` run: spawn-to-connected wall time and the self-test's own figures."""
    t0 = time.time()
    done = subprocess.run(cmd + ["--self-test"], env=_env(home), cwd=str(home), capture_output=True, text=True,
                          timeout=300)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"self-test failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(lines[-1].split(" ", 1)[1])
    result["spawn_to_connected_ms"] = round((result["connected_unix"] - t0) * 1000, 1)
    if "ready_ms" in result and "connected_ms" in result:  # + local VAD, audio in/out set up after connecting
        result["spawn_to_ready_ms"] = round(result["spawn_to_connected_ms"] + result["ready_ms"] - result["connected_ms"], 1)
    return result


def _start_quit(cmd: list[str], home: Path) -> dict:
    """Start the app on the offline engine, quit as soon as the window is connected: wall time, and the CPU
    time the app and its engine child used (user + sys; not inflated by other processes' load)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd + ["--offline", "--no-speaker", "--quit-after", "0.01"], env=_env(home),
                          cwd=str(home), capture_output=True, text=True, timeout=120)
    wall = (time.perf_counter() - t0) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"connected window (\d+) ms after launch", done.stderr)
    if done.returncode != 0 or not m:
        raise RuntimeError(f"start/quit failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return {"wall_ms": wall, "cpu_ms": cpu, "in_process_connected_ms": float(m.group(1))}


def _compression(bundle: Path, tmp: Path) -> dict:
    """The bundle as one tar stream, compressed three ways: size and wall time of each."""
    tar = tmp / "bundle.tar"
    subprocess.run(["tar", "-C", str(bundle.parent), "-cf", str(tar), bundle.name], check=True)
    out = {"tar_mb": round(tar.stat().st_size / 1e6, 1)}
    for name, cmd in (("gzip -6", ["gzip", "-6", "-c"]), ("xz -6 (build.sh)", ["xz", "-T0", "-6", "-c"]),
                      ("zstd -19", ["zstd", "-T0", "-19", "-q", "-c"])):
        if shutil.which(cmd[0]) is None:
            continue
        t0 = time.perf_counter()
        with tar.open("rb") as src, (tmp / "c.out").open("wb") as dst:
            subprocess.run(cmd, stdin=src, stdout=dst, check=True)
        out[name] = {"mb": round((tmp / "c.out").stat().st_size / 1e6, 1), "s": round(time.perf_counter() - t0, 1)}
    tar.unlink()
    (tmp / "c.out").unlink(missing_ok=True)
    return out


def _installed_package(deb: Path, tmp: Path) -> dict:
    """Install the .deb into a throwaway system, start the installed app RUNS times, remove it."""
    problem = SystemOverlay.problem()
    if problem:
        return {"skipped": problem}
    overlay = SystemOverlay(tmp / "system")
    home = tmp / "deb-home"
    home.mkdir()
    env = {"HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(home),
           "PARLEY_NO_SOUND_SERVER_START": "1"}
    try:
        t0 = time.perf_counter()
        done = overlay.run(["dpkg", "-i", str(deb)], timeout=900)
        install_s = round(time.perf_counter() - t0, 1)
        if done.returncode != 0:
            raise RuntimeError(f"dpkg -i failed: {done.stderr[-2000:]}")
        installed_mb = sum(p.lstat().st_size for p in overlay.path("opt/parley").rglob("*")
                           if p.is_file() and not p.is_symlink()) / 1e6
        starts = []
        for _ in range(RUNS + 1):  # the first is the first start after installing, reported apart
            run = overlay.run(["sh", "-c", "date +PARLEY_SPAWN%s.%N; exec parley --self-test"], env, timeout=300)
            lines = run.stdout.splitlines()
            spawn = [float(ln[len("PARLEY_SPAWN"):]) for ln in lines if ln.startswith("PARLEY_SPAWN")]
            res = [json.loads(ln.split(" ", 1)[1]) for ln in lines if ln.startswith(RESULT_PREFIX)]
            if run.returncode != 0 or not spawn or not res:
                raise RuntimeError(f"installed self-test failed ({run.returncode}): {run.stderr[-2000:]}")
            starts.append(round((res[-1]["connected_unix"] - spawn[0]) * 1000, 1))
        t0 = time.perf_counter()
        removed = overlay.run(["apt-get", "remove", "-y", "parley"], timeout=600)
        remove_s = round(time.perf_counter() - t0, 1)
        if removed.returncode != 0:
            raise RuntimeError(f"apt-get remove failed: {removed.stderr[-2000:]}")
        return {"install_s": install_s, "remove_s": remove_s, "installed_mb": round(installed_mb, 1),
                "first_start_ms": starts[0], "spawn_to_connected_ms": summarize(starts[1:])}
    finally:
        overlay.remove()


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return -1.0


def _wall_ms(cmd: list[str], home: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=_env(home), cwd=str(home), capture_output=True, check=True, timeout=60)
    return (time.perf_counter() - t0) * 1000


def run() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-bundle-"))
    try:
        existing = os.environ.get("PARLEY_BUNDLE")
        build_s = None
        archives = {}
        if existing:
            bundle = Path(existing)
        else:
            t0 = time.perf_counter()
            built = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh"), "--dist", str(tmp / "dist"),
                                    "--work", str(tmp / "work")], cwd=str(ROOT),
                                   env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True,
                                   timeout=3000)
            if built.returncode != 0:
                raise RuntimeError(f"packaging/build.sh failed ({built.returncode}): {built.stderr[-3000:]}")
            build_s = round(time.perf_counter() - t0, 1)
            bundle = tmp / "dist" / "parley"
            archives = {p.name: round(p.stat().st_size / 1e6, 1)
                        for p in sorted((tmp / "dist").glob("*.tar.xz")) + sorted((tmp / "dist").glob("*.deb"))}
        sizes = measure(bundle)
        compression = {} if os.environ.get("PARLEY_BENCH_SKIP_COMPRESSION") else _compression(bundle, tmp)
        debs = sorted((tmp / "dist").glob("*.deb"))
        package = _installed_package(debs[0], tmp) if debs else {"skipped": "an existing bundle: no package built"}
        home = tmp / "home"
        home.mkdir()
        app = [str(bundle / "parley")]
        source = [sys.executable, "-m", "desktop.ui.app"]
        first = _self_test(app, home)  # cold-ish: the first start after the build
        bundled = [_self_test(app, home) for _ in range(RUNS)]
        from_source = [_self_test(source, home) for _ in range(3)]
        version_ms = [_wall_ms(app + ["--version"], home) for _ in range(RUNS)]
        load_before = _load()
        quick = [_start_quit(app, home) for _ in range(RUNS)]
        quick_source = [_start_quit(source, home) for _ in range(3)]
        load_after = _load()
        start = summarize([r["spawn_to_connected_ms"] for r in bundled])
        start_source = summarize([r["spawn_to_connected_ms"] for r in from_source])
        results = {
            "build_s": build_s,
            "sizes_mb": sizes,
            "archives_mb": archives,
            "start_to_connected_window_ms": {
                "bundled": start,
                "bundled_first_run": first["spawn_to_connected_ms"],
                "bundled_ready": summarize([r.get("spawn_to_ready_ms", 0.0) for r in bundled]),
                "from_source": start_source,
                "budget": BUDGET_START_MS,
            },
            "installed_package": package,
            "compression": compression,
            "start_quit_bundled": {k: summarize([q[k] for q in quick]) for k in quick[0]},
            "start_quit_from_source": {k: summarize([q[k] for q in quick_source]) for k in quick_source[0]},
            "load_average_1min": [load_before, load_after],
            "version_wall_ms": summarize(version_ms),
            "self_test_conversation_s": summarize([r["conversation_s"] for r in bundled], 2),
            "budgets_mb": {"app_without_models": BUDGET_APP_WITHOUT_MODELS_MB, "complete": BUDGET_COMPLETE_MB},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = "\n".join(f"| {part} | {mb:.1f} |" for part, mb in sizes["parts_mb"].items())
    comp_rows = "\n".join(f"| {k} | {v['mb']:.1f} | {v['s']:.0f} |" for k, v in compression.items() if isinstance(v, dict))
    comp = (f"""The bundle as one tar stream ({compression['tar_mb']:.1f} MB), compressed three ways in this run (the .deb's data
is xz -6 too):

| compression | MB | s (2 CPUs) |
|---|---|---|
{comp_rows}
""" if compression else "Compression comparison: skipped (PARLEY_BENCH_SKIP_COMPRESSION).\n")
    if "spawn_to_connected_ms" in package:
        pst = package["spawn_to_connected_ms"]
        pkg = (f"| installed from the Debian package (`/usr/bin/parley`; budget {BUDGET_START_MS} ms) | {pst['median']} | "
               f"{pst['p95']} | {pst['n']} |\n| installed from the Debian package, first start after installing | "
               f"{package['first_start_ms']} | | 1 |\n")
        pkg_line = (f"The Debian package installs {package['installed_mb']:.1f} MB under /opt/parley; `dpkg -i` took "
                    f"{package['install_s']} s and `apt-get remove` {package['remove_s']} s (into a throwaway copy of this system).\n")
    else:
        pkg, pkg_line = "", f"Installed package: {package.get('skipped')}.\n"
    largest = ", ".join(f"`{f['file']}` {f['mb']:.1f}" for f in sizes["largest_files"][:6])
    largest_app = ", ".join(f"`{f['file']}` {f['mb']:.1f}" for f in sizes["largest_app_part_files"][:8])
    arch = ", ".join(f"`{k}` {v:.0f} MB" for k, v in archives.items()) or "(existing bundle: not packed)"
    md = f"""Build: **{build_s if build_s is not None else '—'} s** (`packaging/build.sh`, PyInstaller, no cache, the archive and the .deb). Downloads: {arch} (budget for the .deb: 180 MB).
{pkg_line}
{comp}
| part of the unpacked bundle | MB |
|---|---|
{rows}
| **complete bundle** (budget {BUDGET_COMPLETE_MB}) | **{sizes['total_mb']:.1f}** |
| **app part**: what the app loads, without the offline engine's part (issue 8's budget: {BUDGET_APP_WITHOUT_MODELS_MB}) | **{sizes['app_part_mb']:.1f}** |
| **offline engine part**: its models and the runtimes only it loads | **{sizes['engine_part_mb']:.1f}** |
| app without the engine's models (engine runtimes counted in) | {sizes['app_without_models_mb']:.1f} |

Largest files: {largest}.
Largest in the app part: {largest_app}.

| start to a window connected to the bundled engine (spawn → connected) | median ms | p95 ms | n |
|---|---|---|---|
| bundled app (budget {BUDGET_START_MS} ms) | {start['median']} | {start['p95']} | {start['n']} |
| bundled app until start-up is complete (local VAD, audio in/out set up after connecting) | {results['start_to_connected_window_ms']['bundled_ready']['median']} | {results['start_to_connected_window_ms']['bundled_ready']['p95']} | {start['n']} |
| bundled app, first start after the build | {first['spawn_to_connected_ms']} | | 1 |
{pkg}| from source (`python -m desktop.ui.app`), same run | {start_source['median']} | {start_source['p95']} | {start_source['n']} |

Start until start-up is complete, then quit (`parley --offline --no-speaker --quit-after 0.01`): bundled {results['start_quit_bundled']['wall_ms']['median']} ms wall,
**{results['start_quit_bundled']['cpu_ms']['median']} ms CPU** (app + engine, user + sys); from source {results['start_quit_from_source']['wall_ms']['median']} ms wall,
{results['start_quit_from_source']['cpu_ms']['median']} ms CPU. The CPU figure does not grow with other processes' load; the wall figures do
(1-minute load average during these runs: {load_before} → {load_after} on {os.cpu_count()} CPUs).

`parley --version` of the bundle: {results['version_wall_ms']['median']} ms median (bootloader + Python start).
The self-test's spoken turn (recorded question → both transcripts) took {results['self_test_conversation_s']['median']} s median, most of it the engine loading its models on first use.
"""
    return {
        "benchmark": "bundle",
        "title": "Installer bundle: build time, size, start time",
        "command": "python -m bench bundle",
        "results": results,
        "markdown": md,
    }
