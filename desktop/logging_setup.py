"""Logging to stderr and to a rotating file in the user's log directory, with secrets redacted."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import platformdirs


class RedactSecrets(logging.Filter):
    """Replaces every configured secret (API keys) in log records with '***'."""

    def __init__(self, secrets: list[str | None]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for s in self.secrets:
                    message = message.replace(s, "***")
                record.msg, record.args = message, None
        return True


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir("Parley", "Parley"))


def setup_logging(level: str = "info", secrets: list[str | None] | None = None) -> Path | None:
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact = RedactSecrets(secrets or [])
    console = logging.StreamHandler()
    console.setFormatter(fmt)
    console.addFilter(redact)
    root.addHandler(console)
    path: Path | None = None
    try:
        directory = log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "parley.log"
        file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        file_handler.setFormatter(fmt)
        file_handler.addFilter(redact)
        root.addHandler(file_handler)
    except OSError:
        path = None
    for noisy in ("websockets", "faster_whisper", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return path
