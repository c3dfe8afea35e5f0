"""Parley's app settings: one JSON file in the platform's user config directory.

    settings = Settings.load()                # never raises; a corrupt file is backed up and defaults used
    threshold = settings.get("turn.threshold", 0.5)
    settings.set("turn.threshold", 0.6)
    settings.save()                           # atomic: temp file in the same directory + os.replace

Keys are dotted strings ("turn.profile", "window.geometry"); values must be JSON types. Secrets (API
keys, tokens) do not belong here: `set` refuses keys that look like one, so a plain file never holds them.
`Settings.problem` says why the file on disk was not used (shown to the user once).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger(__name__)

FILE_NAME = "settings.json"
_SECRET_WORDS = ("api_key", "apikey", "token", "secret", "password")


def settings_dir() -> Path:
    return Path(platformdirs.user_config_dir("Parley", appauthor=False))


class Settings:
    def __init__(self, path: Path | None = None, values: dict[str, Any] | None = None) -> None:
        self.path = Path(path) if path is not None else settings_dir() / FILE_NAME
        self._values: dict[str, Any] = dict(values or {})
        #: Why the file on disk could not be used (None when it loaded fine or did not exist).
        self.problem: str | None = None

    # ------------------------------------------------------------------ load / save
    _shared: "dict[Path, Settings]" = {}

    @classmethod
    def shared(cls, path: Path | str | None = None) -> "Settings":
        """One instance per file for the whole process, so parts of the app saving their own keys
        never overwrite each other's with a stale copy. Loaded on first use."""
        key = Path(path) if path is not None else settings_dir() / FILE_NAME
        if key not in cls._shared:
            cls._shared[key] = cls.load(key)
        return cls._shared[key]

    @classmethod
    def load(cls, path: Path | str | None = None) -> "Settings":
        s = cls(Path(path) if path is not None else None)
        try:
            raw = s.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return s
        except OSError as exc:
            s.problem = f"Could not read the settings file {s.path} ({exc}); using defaults."
            log.warning("%s", s.problem)
            return s
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("the top level is not an object")
        except ValueError as exc:
            backup = s.path.with_name(f"{s.path.stem}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}{s.path.suffix}")
            try:
                os.replace(s.path, backup)
                where = f"it was kept as {backup.name}"
            except OSError as move_exc:
                where = f"it could not be moved aside ({move_exc})"
            s.problem = f"The settings file was damaged ({exc}); {where} and defaults are used."
            log.warning("%s", s.problem)
            return s
        s._values = data
        return s

    def save(self) -> None:
        """Write atomically; raises OSError if the directory cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self._values, indent=2, sort_keys=True, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                log.debug("temporary settings file %s already gone", tmp)
            raise

    # ------------------------------------------------------------------ values
    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` when missing or of a different JSON kind than the default."""
        value = self._values.get(key, default)
        if default is None or value is None:
            return value
        if isinstance(default, bool) != isinstance(value, bool):
            return default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            return value if isinstance(value, (int, float)) else default
        if isinstance(default, (str, list, dict)) and not isinstance(value, type(default)):
            return default
        return value

    def set(self, key: str, value: Any) -> None:
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            raise ValueError(f"{key!r} looks like a secret; secrets are never stored in the settings file")
        json.dumps(value)  # raises TypeError for values JSON cannot hold
        self._values[key] = value

    def keep(self, key: str, value: Any, what: str = "settings") -> bool:
        """Set `key` and write the file at once; a failed write is logged ("<what> not saved"), not raised: the
        choice still applies for this run. False when it could not be written."""
        self.set(key, value)
        try:
            self.save()
        except OSError as exc:
            log.warning("%s not saved: %s", what, exc)
            return False
        return True

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.set(key, value)

    def remove(self, key: str) -> None:
        self._values.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)
