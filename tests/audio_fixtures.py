"""pytest fixtures for tests that need real audio streams (PulseAudio null sink).

Used from the shared conftest with `from tests.audio_fixtures import *` (or `pytest_plugins`).
"""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.pulse_server import PulseServer, pulse_server

__all__ = ["pulse_audio"]


@pytest.fixture(scope="session")
def pulse_audio() -> PulseServer:
    """A PulseAudio server whose default sink is the null sink `parley_sink` and default source its monitor.

    sounddevice's `default` / `pulse` devices reach it through the ALSA pulse plugin. Skips only when
    the `pulseaudio` binary is missing; any other failure to start it is an error.
    """
    if shutil.which("pulseaudio") is None:
        pytest.skip("the pulseaudio binary is not installed (Debian package: pulseaudio); "
                    "audio tests need its null sink")
    with pulse_server() as server:
        # PortAudio enumerates devices once at import; if sounddevice was imported before the server
        # was up, make it look again so `pulse` / `default` point at this server.
        if "sounddevice" in sys.modules:
            from desktop.audio.devices import refresh_devices

            refresh_devices()
        yield server
