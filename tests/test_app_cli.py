"""The app's command line where there is no display: a clear message and exit code 2, not Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys


def test_no_display_gives_a_clear_message_instead_of_an_abort():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["OPENAI_API_KEY"] = "sk-test-never-printed"
    result = subprocess.run([sys.executable, "-m", "desktop.ui.app", "--offline"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    assert "no display found" in result.stderr and "QT_QPA_PLATFORM=offscreen" in result.stderr
    assert "sk-test-never-printed" not in result.stderr + result.stdout


def test_start_up_objects_are_frozen_out_of_the_garbage_collector(tmp_path):
    """A full collection over start-up's objects holds the GIL for ~20 ms, which the audio callbacks need."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PARLEY_DISABLE_KEYRING="1")
    env.pop("OPENAI_API_KEY", None)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        env[var] = str(tmp_path / sub)
    result = subprocess.run([sys.executable, "-m", "desktop.ui.app", "--url", "ws://127.0.0.1:9/v1/realtime",
                             "--no-speaker", "--quit-after", "0.5"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [ln for ln in result.stderr.splitlines() if "frozen out of the garbage collector" in ln]
    assert lines, result.stderr[-2000:]
    frozen = int(lines[0].split("garbage collector: ", 1)[1].split(" ", 1)[0])
    assert frozen > 10_000  # Qt, numpy and Parley's own modules at least


def test_a_series_from_the_command_line_writes_the_report_and_says_by_its_exit_code(tmp_path):
    """`parley --series …`: for a script or a CI job. Every file answered: 0; one that was not: 3."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PARLEY_DISABLE_KEYRING="1")
    env.pop("OPENAI_API_KEY", None)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        env[var] = str(tmp_path / sub)
    audio = os.path.join(os.path.dirname(__file__), "fixtures", "audio")
    report = tmp_path / "report.md"
    result = subprocess.run([sys.executable, "-m", "desktop.ui.app", "--offline", "--no-speaker",
                             "--input-device", "no such microphone", "--series", os.path.join(audio, "what_time.wav"),
                             os.path.join(audio, "manifest.json"), "--report", str(report)],
                            env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 3, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert result.stdout.startswith("2 files: 1 answered, 1 cannot speak"), result.stdout
    text = report.read_text()
    assert "| 1 | what_time.wav | answered | What time is it?" in text and "| 2 | manifest.json | cannot speak" in text
    assert str(tmp_path / "data") in result.stdout  # the report's own copy, among the series reports
    # A folder: its sound files by name (numbers in order); run again, the same files: compared with the last run.
    folder = tmp_path / "turns"
    folder.mkdir()
    for name, fixture in (("10 thanks.wav", "thank_you.wav"), ("2 time.wav", "what_time.wav")):
        (folder / name).write_bytes(open(os.path.join(audio, fixture), "rb").read())
    (folder / "notes.txt").write_text("not a sound file")
    runs = []
    for _ in range(2):
        runs.append(subprocess.run([sys.executable, "-m", "desktop.ui.app", "--offline", "--no-speaker",
                                    "--input-device", "no such microphone", "--series", str(folder)],
                                   env=env, capture_output=True, text=True, timeout=180))
        assert runs[-1].returncode == 0, (runs[-1].stdout[-500:], runs[-1].stderr[-2000:])
    assert runs[0].stdout.startswith("2 files: 2 answered") and "compared with" not in runs[0].stdout
    compared = runs[1].stdout.splitlines()[1]
    assert compared.startswith("compared with the run of ") and compared.endswith("of 2 turns changed"), runs[1].stdout
    report = runs[1].stdout.splitlines()[-1].split("report: ", 1)[1]
    rows = [ln for ln in open(report).read().splitlines() if ln.startswith("| 1 ") or ln.startswith("| 2 ")]
    assert "2 time.wav" in rows[0] and "10 thanks.wav" in rows[1]
