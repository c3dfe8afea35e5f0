"""Shared test setup: offscreen Qt, private user directories, the PulseAudio fixture, the protocol oracle."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
AUDIO = FIXTURES / "audio"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Never talk to the real cloud from tests, whatever the developer's shell has.
os.environ.pop("OPENAI_API_KEY", None)
os.environ["PARLEY_DISABLE_KEYRING"] = "1"  # nor read a key from the developer's OS keyring
os.environ["PARLEY_NO_SOUND_SERVER_START"] = "1"  # nor start the user's sound server: tests bring their own

pytest_plugins = ["tests.audio_fixtures", "tests.secret_service_fixture", "tests.bundle_build"]


@pytest.fixture
def qasync_loop(qapp):
    """A qasync event loop on the test's QApplication, for tests that run LiveSession with widgets."""
    from tests.qt_loop import close_qasync_loop, new_qasync_loop

    loop = new_qasync_loop(qapp)
    yield loop
    close_qasync_loop(loop)


@pytest.fixture(autouse=True, scope="session")
def _private_user_dirs(tmp_path_factory):
    """Settings, transcripts and logs go to a temporary home, never the developer's."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        os.environ[var] = str(home / sub)
    yield home


def pytest_report_header(config):
    return f"parley tests: python {sys.version.split()[0]}, QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')}"
