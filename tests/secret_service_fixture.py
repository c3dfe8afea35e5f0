"""A real Secret Service for tests: GNOME Keyring's secrets component on a private D-Bus session bus."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import keyring
import pytest


def _wait_for_service(timeout: float = 15.0) -> None:
    """Until the daemon started here owns the Secret Service name. Not `service_available`: that is true as soon
    as D-Bus *could* start one (gnome-keyring's service file), and a request made then starts a second daemon,
    without the unlocked login keyring: the tests then meet a locked keyring (seen in a loaded full run)."""
    from contextlib import closing

    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import unwrap_msg

    from desktop.secret_service import BUS_NAME

    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    deadline = time.monotonic() + timeout
    with closing(open_dbus_connection(bus="SESSION")) as conn:
        while time.monotonic() < deadline:
            (owned,) = unwrap_msg(conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", (BUS_NAME,)),
                                                          timeout=1.0))
            if owned:
                return
            time.sleep(0.05)
    raise RuntimeError("gnome-keyring-daemon did not take the Secret Service name")


@pytest.fixture(scope="module")
def session_bus(tmp_path_factory):
    """A private session bus (dbus-daemon) with GNOME Keyring's secrets component, unlocked, on it."""
    missing = [b for b in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages: dbus-daemon, gnome-keyring)")
    home = tmp_path_factory.mktemp("keyring-home")
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_RUNTIME_DIR": str(runtime),
           "XDG_CONFIG_HOME": str(home / "config")}
    env.pop("DISPLAY", None)
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"], env=env,
                           stdout=subprocess.PIPE, text=True)
    address = bus.stdout.readline().strip()
    assert address.startswith(("unix:", "tcp:")), address
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    daemon = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    daemon.stdin.write("parley-test-password")  # the login keyring's password: creates and unlocks it
    daemon.stdin.close()
    saved = {k: os.environ.get(k) for k in ("DBUS_SESSION_BUS_ADDRESS", "PARLEY_DISABLE_KEYRING")}
    previous = keyring.get_keyring()
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    os.environ.pop("PARLEY_DISABLE_KEYRING", None)
    try:
        _wait_for_service()
        yield address
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for p in (daemon, bus):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        keyring.set_keyring(previous)
