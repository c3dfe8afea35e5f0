"""A real Wayland desktop for tests, started and stopped here.

sway on wlroots' headless backend (no GPU, no input devices, pixman rendering), a private D-Bus session bus
with no service activation (so nothing starts that this module does not start and stop itself), PipeWire
(xdg-desktop-portal-wlr will not run without it), the permission store, and xdg-desktop-portal with two
backends: xdg-desktop-portal-wlr (Screenshot, by running grim) and xdg-desktop-portal-gtk (Access, which the
frontend requires before it offers Screenshot). Everything lives in a private XDG_RUNTIME_DIR; the portal only
sees the two .portal files copied into a private XDG_DESKTOP_PORTAL_DIR.

sway refuses to run as root, so under root (as in CI) it runs as `nobody` through setpriv; the portal, grim
and the test's own clients stay root and reach its socket anyway.

`start_kde()` gives KDE Plasma's kwin_wayland (virtual backend) with xdg-desktop-portal-kde instead: the one
portal backend on Debian 12 that offers GlobalShortcuts.

Measured on Debian 12 (2 cores): either desktop is up in about 0.2 s (sway's socket after 0.04 s, kwin's
after 0.09 s), a Qt window on it is drawn in about 1 s, a portal screenshot of 1280x720 takes about 0.1 s,
and everything is stopped in under 0.1 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

LIBEXEC = Path("/usr/libexec")
#: What has to be installed, and the Debian package that brings it (./dev's APT_TEST installs them).
REQUIRED = {
    "sway": "sway",
    "grim": "grim",
    "pipewire": "pipewire-bin",
    "dbus-daemon": "dbus-daemon",
    str(LIBEXEC / "xdg-desktop-portal"): "xdg-desktop-portal",
    str(LIBEXEC / "xdg-permission-store"): "xdg-desktop-portal",
    str(LIBEXEC / "xdg-desktop-portal-wlr"): "xdg-desktop-portal-wlr",
    str(LIBEXEC / "xdg-desktop-portal-gtk"): "xdg-desktop-portal-gtk",
}
PORTAL_FILES = ("wlr.portal", "gtk.portal")
WIDTH, HEIGHT = 1280, 720

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

_SWAY_CONFIG = f"""output HEADLESS-1 resolution {WIDTH}x{HEIGHT}
default_border none
default_floating_border none
focus_follows_mouse no
"""


#: KDE Plasma's compositor and portal backend: the one backend here that offers GlobalShortcuts.
#: Debian puts it under the architecture's lib folder.
KDE_PORTAL = next(iter(sorted(Path("/usr/lib").glob("*/libexec/xdg-desktop-portal-kde"))), LIBEXEC / "xdg-desktop-portal-kde")
KDE_REQUIRED = {
    "kwin_wayland": "kwin-wayland",
    "dbus-daemon": "dbus-daemon",
    str(LIBEXEC / "xdg-desktop-portal"): "xdg-desktop-portal",
    str(KDE_PORTAL): "xdg-desktop-portal-kde",
}


def missing(required: dict[str, str] | None = None) -> list[str]:
    """The Debian packages whose programs are not installed (empty: the desktop can run)."""
    absent = []
    if required is not None:
        for program, package in required.items():
            found = os.access(program, os.X_OK) if program.startswith("/") else shutil.which(program)
            if not found and package not in absent:
                absent.append(package)
        return absent
    for program, package in REQUIRED.items():
        found = os.access(program, os.X_OK) if program.startswith("/") else shutil.which(program)
        if not found and package not in absent:
            absent.append(package)
    for name in PORTAL_FILES:
        package = "xdg-desktop-portal-" + name.split(".")[0]
        if not (Path("/usr/share/xdg-desktop-portal/portals") / name).exists() and package not in absent:
            absent.append(package)
    return absent


class WaylandDesktop:
    """One headless sway with its portal stack. `env` is what a client of that desktop runs with."""

    def __init__(self) -> None:
        # Its own folder in /tmp, open for traversal: sway (as nobody, under root) must reach its files, and
        # pytest's own temporary folders are private to their owner.
        self.root = Path(tempfile.mkdtemp(prefix="parley-wayland-"))
        self.root.chmod(0o711)
        self.runtime = self.root / "run"
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.logs: dict[str, Path] = {}
        self.env: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------------------------ start / stop
    def start(self, timeout: float = 20.0) -> "WaylandDesktop":
        t0 = time.monotonic()
        deadline = t0 + timeout
        home = self.root / "home"
        for d in (self.runtime, home, self.root / "data", self.root / "config", self.root / "portals", self.root / "logs"):
            d.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        as_root = os.geteuid() == 0
        if as_root:  # sway runs as nobody: its runtime dir and home must be its own
            for d in (self.runtime, home):
                os.chown(d, 65534, 65534)
        for name in PORTAL_FILES:
            shutil.copy(Path("/usr/share/xdg-desktop-portal/portals") / name, self.root / "portals" / name)
        (self.root / "sway.conf").write_text(_SWAY_CONFIG)
        bus_socket = self.root / "bus"
        (self.root / "bus.conf").write_text(_BUS_CONFIG.format(socket=bus_socket))
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "DBUS_SESSION_BUS_ADDRESS")}
        env.update(
            XDG_RUNTIME_DIR=str(self.runtime), HOME=str(home), XDG_DATA_HOME=str(self.root / "data"),
            XDG_CONFIG_HOME=str(self.root / "config"), XDG_CURRENT_DESKTOP="sway", XDG_SESSION_TYPE="wayland",
            XDG_DESKTOP_PORTAL_DIR=str(self.root / "portals"), DBUS_SESSION_BUS_ADDRESS=f"unix:path={bus_socket}",
            WAYLAND_DISPLAY="wayland-parley", GDK_BACKEND="wayland", GTK_USE_PORTAL="0", NO_AT_BRIDGE="1",
        )
        self.env = env
        try:
            self._spawn("dbus", ["dbus-daemon", f"--config-file={self.root / 'bus.conf'}", "--nofork"])
            self._wait(lambda: bus_socket.exists(), deadline, "dbus-daemon made no socket")
            sway_env = dict(env, WLR_BACKENDS="headless", WLR_LIBINPUT_NO_DEVICES="1", WLR_RENDERER="pixman",
                            WLR_HEADLESS_OUTPUTS="1")
            sway_env.pop("WAYLAND_DISPLAY")
            drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if as_root else []
            self._spawn("sway", drop + ["sway", "-c", str(self.root / "sway.conf")], sway_env)
            # sway names its socket wayland-N; a symlink gives clients a fixed name.
            self._wait(lambda: any(self.runtime.glob("wayland-[0-9]")), deadline, "sway made no Wayland socket")
            socket = sorted(p for p in self.runtime.glob("wayland-[0-9]") if not p.name.endswith(".lock"))[0]
            (self.runtime / "wayland-parley").symlink_to(socket.name)
            self.timings["sway"] = time.monotonic() - t0
            self._spawn("pipewire", ["pipewire"])
            self._wait(lambda: (self.runtime / "pipewire-0").exists(), deadline, "PipeWire made no socket")
            self._spawn("permission-store", [str(LIBEXEC / "xdg-permission-store"), "--replace"])
            self._spawn("portal-wlr", [str(LIBEXEC / "xdg-desktop-portal-wlr"), "-l", "INFO"])
            self._spawn("portal-gtk", [str(LIBEXEC / "xdg-desktop-portal-gtk"), "--replace"])
            for name in ("org.freedesktop.impl.portal.PermissionStore", "org.freedesktop.impl.portal.desktop.wlr",
                         "org.freedesktop.impl.portal.desktop.gtk"):
                self._wait(lambda n=name: self.has_owner(n), deadline, f"nothing took the bus name {name}")
            self._spawn("portal", [str(LIBEXEC / "xdg-desktop-portal"), "--verbose"])
            self._wait(lambda: self.has_owner("org.freedesktop.portal.Desktop"), deadline, "xdg-desktop-portal did not start")
        except Exception:
            self.stop()
            raise
        self.timings["all"] = time.monotonic() - t0
        return self

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart_portal_backend(self, without: tuple[str, ...] = (), timeout: float = 10.0) -> None:
        """Replace xdg-desktop-portal-wlr by a new one (`--replace`) whose PATH lacks the programs in `without`
        (e.g. grim: its screenshots then fail, as a broken or refusing backend's do); the portal frontend
        follows the bus name to the new one."""
        env = dict(self.env)
        if without:
            keep = Path(self.root) / "bin-without"
            shutil.rmtree(keep, ignore_errors=True)
            keep.mkdir()
            env["PATH"] = str(keep)  # /bin/sh is called by its full path; nothing else is found
        old = [(n, p) for n, p in self.procs if n == "portal-wlr"]
        proc = self._spawn("portal-wlr", [str(LIBEXEC / "xdg-desktop-portal-wlr"), "--replace", "-l", "INFO"], env)
        deadline = time.monotonic() + timeout
        for entry in old:  # the old one hands the name over and exits
            entry[1].wait(timeout=max(0.1, deadline - time.monotonic()))
            self.procs.remove(entry)
        self._wait(lambda: self.has_owner("org.freedesktop.impl.portal.desktop.wlr"), deadline,
                   "the new xdg-desktop-portal-wlr took no bus name")
        assert proc.poll() is None, self.log_tail("portal-wlr")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.root / "logs" / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, env=env or self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def _wait(self, predicate, deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            if predicate():
                return
            dead = [(n, p.returncode) for n, p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{what}: {dead[0][0]} exited with {dead[0][1]}\n{self.log_tail(dead[0][0])}")
            time.sleep(0.02)
        raise RuntimeError(f"{what} within the time allowed\n" + "\n".join(self.log_tail(n) for n, _ in self.procs))

    def log_tail(self, name: str, chars: int = 1500) -> str:
        path = self.logs.get(name)
        return f"--- {name}:\n" + (path.read_text(errors="replace")[-chars:] if path and path.exists() else "")

    def start_kde(self, timeout: float = 20.0) -> "WaylandDesktop":
        """KDE Plasma's kwin_wayland on its virtual backend (it carries kglobalaccel, the shortcut daemon) with
        xdg-desktop-portal-kde, whose GlobalShortcuts registers with it. Its file capability (cap_sys_resource)
        cannot be granted inside a container, where exec then fails with EPERM: a copy without it is run
        then (named kwin_wayland, which its built-in Qt platform plugin insists on)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        for d in (self.runtime, self.root / "home", self.root / "data", self.root / "config", self.root / "portals", self.root / "logs"):
            d.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        shutil.copy(Path("/usr/share/xdg-desktop-portal/portals/kde.portal"), self.root / "portals" / "kde.portal")
        bus_socket = self.root / "bus"
        (self.root / "bus.conf").write_text(_BUS_CONFIG.format(socket=bus_socket))
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "DBUS_SESSION_BUS_ADDRESS", "QT_QPA_PLATFORM")}
        env.update(
            XDG_RUNTIME_DIR=str(self.runtime), HOME=str(self.root / "home"), XDG_DATA_HOME=str(self.root / "data"),
            XDG_CONFIG_HOME=str(self.root / "config"), XDG_CURRENT_DESKTOP="KDE", XDG_SESSION_TYPE="wayland",
            XDG_DESKTOP_PORTAL_DIR=str(self.root / "portals"), DBUS_SESSION_BUS_ADDRESS=f"unix:path={bus_socket}",
            WAYLAND_DISPLAY="wayland-kde", KDE_FULL_SESSION="true",
        )
        self.env = env
        try:
            self._spawn("dbus", ["dbus-daemon", f"--config-file={self.root / 'bus.conf'}", "--nofork"])
            self._wait(lambda: bus_socket.exists(), deadline, "dbus-daemon made no socket")
            argv = ["--virtual", "--socket", "wayland-kde", "--width", str(WIDTH), "--height", str(HEIGHT), "--no-lockscreen"]
            try:
                self._spawn("kwin", [shutil.which("kwin_wayland")] + argv)
            except PermissionError:
                (self.root / "bin").mkdir(exist_ok=True)
                copy = self.root / "bin" / "kwin_wayland"
                shutil.copy(shutil.which("kwin_wayland"), copy)
                self._spawn("kwin", [str(copy)] + argv)
            self._wait(lambda: (self.runtime / "wayland-kde").exists(), deadline, "kwin_wayland made no Wayland socket")
            self._wait(lambda: self.has_owner("org.kde.kglobalaccel"), deadline, "kwin_wayland did not take org.kde.kglobalaccel")
            self.timings["kwin"] = time.monotonic() - t0
            # Its Qt would want the Wayland platform plugin of Qt 5 (qtwayland5); it needs no window here.
            self._spawn("portal-kde", [str(KDE_PORTAL)], dict(env, QT_QPA_PLATFORM="offscreen"))
            self._wait(lambda: self.has_owner("org.freedesktop.impl.portal.desktop.kde"), deadline, "xdg-desktop-portal-kde did not start")
            self._spawn("portal", [str(LIBEXEC / "xdg-desktop-portal"), "--verbose"])
            self._wait(lambda: self.has_owner("org.freedesktop.portal.Desktop"), deadline, "xdg-desktop-portal did not start")
        except Exception:
            self.stop()
            raise
        self.timings["all"] = time.monotonic() - t0
        return self

    def press_kde_shortcut(self, component: str, shortcut_id: str) -> None:
        """What KWin does when the keys of a registered global shortcut are pressed: kglobalaccel's
        invokeShortcut, which sends the component's globalShortcutPressed (no keyboard on a virtual backend)."""
        self._call("org.kde.kglobalaccel", f"/component/{component}", "org.kde.kglobalaccel.Component",
                   "invokeShortcut", "ss", (shortcut_id, "default"))

    def kde_components(self) -> list[str]:
        (paths,) = self._call("org.kde.kglobalaccel", "/kglobalaccel", "org.kde.KGlobalAccel", "allComponents")
        return [p.rsplit("/", 1)[-1] for p in paths]

    # ------------------------------------------------------------------------------------ the bus
    def _call(self, bus_name: str, path: str, interface: str, method: str, signature: str | None = None, body: tuple = ()):
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        with open_dbus_connection(self.env["DBUS_SESSION_BUS_ADDRESS"]) as conn:
            msg = new_method_call(DBusAddress(path, bus_name=bus_name, interface=interface), method, signature, body)
            return unwrap_msg(conn.send_and_get_reply(msg, timeout=5))

    def has_owner(self, name: str) -> bool:
        if not Path(self.env["DBUS_SESSION_BUS_ADDRESS"].removeprefix("unix:path=")).exists():
            return False
        (owned,) = self._call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s", (name,))
        return bool(owned)

    def set_screenshot_permission(self, allowed: bool, app_id: str = "") -> None:
        """What the portal's "Allow screenshots?" dialog stores: the real permission store's answer for `app_id`
        ("" is every unsandboxed app)."""
        self._call("org.freedesktop.impl.portal.PermissionStore", "/org/freedesktop/impl/portal/PermissionStore",
                   "org.freedesktop.impl.portal.PermissionStore", "SetPermission", "sbssas",
                   ("screenshot", True, "screenshot", app_id, ["yes" if allowed else "no"]))

    # ------------------------------------------------------------------------------------ on the screen
    def show(self, text: str, background: str = "#1060e0", foreground: str = "white") -> subprocess.Popen:
        """A Qt window on the Wayland screen (Qt's wayland platform), filling it, with `text` on `background`.
        Returns once it has been drawn; the caller terminates it."""
        env = dict(self.env, QT_QPA_PLATFORM="wayland", QT_WAYLAND_DISABLE_WINDOWDECORATION="1")
        proc = subprocess.Popen([sys.executable, "-c", _WINDOW_APP, text, background, foreground], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if "READY" not in line:
            proc.kill()
            raise RuntimeError(f"the Wayland window did not start: {proc.stderr.read()[-2000:]}")
        return proc


_WINDOW_APP = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QLabel
    app = QApplication(sys.argv)
    label = QLabel(sys.argv[1])
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet(f"background: {sys.argv[2]}; color: {sys.argv[3]}; font-size: 96px; font-weight: bold;")
    label.showFullScreen()
    QTimer.singleShot(800, lambda: print("READY", flush=True))
    app.exec()
    """
)
