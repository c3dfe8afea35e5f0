"""A throwaway copy of this machine's own system, for installing a package without touching the real one.

`SystemOverlay` mounts an overlay file system whose lower layer is `/` (read-only to it) and whose upper
layer is a fresh folder, in a private mount namespace (`unshare --mount`), and runs a command chrooted into
it: `dpkg -i`, `apt-get remove` and the installed program itself see the real system's packages, its dpkg
database, its libraries, and write only into the upper folder. Each `run` makes the namespace anew over the
same upper folder, so what one command installed the next one finds. `/proc`, `/dev`, `/sys` and `/tmp`
are the host's (bind mounts): the PulseAudio socket and the test's home live under `/tmp`.

`changes()` lists what the overlay holds that the real system does not (files, folders, and whiteouts:
files of the real system that were deleted in the copy). Needs root, `unshare` (util-linux) and overlayfs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

BINDS = ("proc", "dev", "sys", "tmp", "run")


class SystemOverlay:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.upper = folder / "upper"
        self.work = folder / "work"
        self.merged = folder / "merged"
        for d in (self.upper, self.work, self.merged):
            d.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def problem() -> str | None:
        """Why an overlay cannot be made here, or None."""
        if os.geteuid() != 0:
            return "installing a package into a system overlay needs root"
        if shutil.which("unshare") is None:
            return "unshare (util-linux) is missing"
        return None

    def _script(self, argv: list[str], env: dict[str, str]) -> str:
        m = shlex.quote(str(self.merged))
        lines = [
            "set -e",
            f"mount -t overlay overlay -o lowerdir=/,upperdir={shlex.quote(str(self.upper))},"
            f"workdir={shlex.quote(str(self.work))} {m}",
        ]
        lines += [f"mount --rbind /{d} {m}/{d}" for d in BINDS if os.path.isdir(f"/{d}")]
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        lines.append(f"exec chroot {m} /usr/bin/env -i {exports} {shlex.join(argv)}")
        return "\n".join(lines)

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 300,
            **kwargs) -> subprocess.CompletedProcess:
        """Run `argv` chrooted into the overlay, with exactly `env` (PATH defaults to the system's)."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})}
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", self._script(argv, env)],
                              capture_output=True, text=True, timeout=timeout, **kwargs)

    def popen_argv(self, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        """The command line that runs `argv` in the overlay (for a caller that spawns and times it itself)."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})}
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", self._script(argv, env)]

    def changes(self) -> list[str]:
        """Paths (relative to /) that the overlay added or changed; a deleted real file shows as 'deleted PATH'."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.upper):
            rel_dir = os.path.relpath(dirpath, self.upper)
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                st = os.lstat(full)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    out.append(f"deleted {rel}")
                elif stat.S_ISDIR(st.st_mode) and os.path.isdir(os.path.join("/", rel)):
                    continue  # a real folder, copied up because something inside it changed
                else:
                    out.append(rel)
        return sorted(out)

    def path(self, rel: str) -> Path:
        """Where the overlay keeps a file it added (its upper layer)."""
        return self.upper / rel.lstrip("/")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
