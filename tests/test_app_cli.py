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
