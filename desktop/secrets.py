"""API keys (OpenAI's, and each provider's under its own name): from the environment, or from the OS keyring
(through `keyring`), never from a plain file.

On Linux the keyring is the Secret Service, reached through `desktop.secret_service` (no `cryptography`).

    key, source = find_api_key()          # (None, "none") | (key, "environment") | (key, "keyring")
    store_api_key("sk-...")               # raises SecretStoreError with a message for the user
    delete_api_key()

The key is never logged: functions here log only where a key came from, and `redact` masks a key in any text.
A keyring that is missing or locked is reported in plain words (`SecretStoreError`), never as a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

SERVICE = "Parley"
USERNAME = "openai-api-key"
ENV_VAR = "OPENAI_API_KEY"


class SecretStoreError(Exception):
    """The OS keyring could not be used; the message is written for the user."""


def _keyring():
    if os.environ.get("PARLEY_DISABLE_KEYRING") == "1":  # the test suite: never touch a developer's keyring
        raise SecretStoreError("The OS keyring is turned off here (PARLEY_DISABLE_KEYRING=1). Set OPENAI_API_KEY instead.")
    try:
        import keyring
        import keyring.errors

        if sys.platform.startswith("linux"):
            _prefer_secret_service(keyring)
    except ImportError as exc:  # pragma: no cover - keyring is a dependency
        raise SecretStoreError(f"The keyring module is not installed ({exc}).") from None
    return keyring


def _prefer_secret_service(keyring) -> None:
    """On Linux, use Parley's own Secret Service backend (no `cryptography`) where keyring would have chosen its
    own Secret Service backend, or chained it with ours, or found nothing. A backend the user configured
    (PYTHON_KEYRING_BACKEND, keyringrc.cfg) or one set in code (the tests' in-memory keyring) is kept."""
    import keyring.backends.chainer
    import keyring.backends.fail

    from desktop.secret_service import SecretServiceKeyring

    current = keyring.get_keyring()
    automatic = (keyring.backends.chainer.ChainerBackend, keyring.backends.fail.Keyring)
    is_own_secret_service = type(current).__module__ == "keyring.backends.SecretService"
    if isinstance(current, SecretServiceKeyring) or not (isinstance(current, automatic) or is_own_secret_service):
        return
    if os.environ.get("PYTHON_KEYRING_BACKEND") or keyring.core.load_config() is not None:
        return
    if SecretServiceKeyring.viable:
        keyring.set_keyring(SecretServiceKeyring())


def _explain(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "NoKeyringError":
        return (
            "No OS keyring is available (on Linux: GNOME Keyring, KWallet or another Secret Service). "
            "Set OPENAI_API_KEY in the environment instead."
        )
    if name in ("KeyringLocked", "InitError"):
        return "The OS keyring is locked or could not be opened. Unlock it and try again, or set OPENAI_API_KEY."
    text = str(exc).strip() or name
    return f"The OS keyring refused: {text[:200]}. Set OPENAI_API_KEY in the environment instead."


def keyring_key() -> str | None:
    """The key saved in the OS keyring, or None (also when there is no usable keyring)."""
    return keyring_secret(USERNAME)


def keyring_backend() -> str:
    """The name of the keyring backend the key would be read from and saved to (for diagnostics), or why none."""
    try:
        return type(_keyring().get_keyring()).__name__
    except SecretStoreError as exc:
        return f"none: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken backend is reported, not raised
        return f"none: {_explain(exc)}"


def find_api_key(environ: dict[str, str] | None = None) -> tuple[str | None, str]:
    """(key, where it came from): the environment wins, then the OS keyring."""
    env = os.environ if environ is None else environ
    key = (env.get(ENV_VAR) or "").strip()
    if key:
        return key, "environment"
    key = (keyring_key() or "").strip()
    if key:
        return key, "keyring"
    return None, "none"


def validate_key_format(key: str) -> str | None:
    """A reason the text cannot be a key, or None. (Whether the server accepts it is known only on connect.)"""
    key = key.strip()
    if not key:
        return "The key is empty."
    if any(c.isspace() for c in key):
        return "The key contains spaces or line breaks."
    if len(key) < 20:
        return "The key is too short to be an API key."
    if not key.isascii():
        return "The key contains characters an API key never has."
    return None


def store_api_key(key: str) -> None:
    problem = validate_key_format(key)
    if problem:
        raise SecretStoreError(problem)
    store_secret(USERNAME, key)
    log.info("API key saved in the OS keyring")


def delete_api_key() -> bool:
    """Remove the saved key; False when there was none."""
    try:
        kr = _keyring()
        if kr.get_password(SERVICE, USERNAME) is None:
            return False
        kr.delete_password(SERVICE, USERNAME)
    except SecretStoreError:
        raise
    except Exception as exc:
        raise SecretStoreError(_explain(exc)) from None
    log.info("API key removed from the OS keyring")
    return True


def keyring_secret(name: str) -> str | None:
    """A secret saved under Parley's service in the OS keyring (the API key, a local chat server's key), or
    None (also when there is no usable keyring)."""
    try:
        return _keyring().get_password(SERVICE, name) or None
    except SecretStoreError:
        return None
    except Exception as exc:  # a broken or missing backend must not stop the app
        log.info("no %s from the OS keyring: %s", name.split(" ", 1)[0], _explain(exc))
        return None


def store_secret(name: str, value: str) -> None:
    """Save a secret in the OS keyring under Parley's service; raises SecretStoreError (the API key goes
    through store_api_key, which checks its format first)."""
    try:
        _keyring().set_password(SERVICE, name, value.strip())
    except SecretStoreError:
        raise
    except Exception as exc:
        raise SecretStoreError(_explain(exc)) from None


def redact(text: str, secrets: list[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return text


def mask_in_logs(secret: str | None) -> None:
    """Mask `secret` in everything logged from now on as well (a provider's key chosen after start): it joins the
    secrets every redacting log handler set up by `logging_setup` masks."""
    if not secret or len(secret) < 8:
        return
    from .logging_setup import RedactSecrets

    for handler in logging.getLogger().handlers:
        for flt in handler.filters:
            if isinstance(flt, RedactSecrets) and secret not in flt.secrets:
                flt.secrets.append(secret)
