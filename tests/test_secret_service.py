"""The API key in a real Secret Service: GNOME Keyring on a private D-Bus session bus, reached through
desktop.secret_service (jeepney, plain session; no `cryptography`)."""

from __future__ import annotations

from contextlib import closing

import keyring
import keyring.backends.fail
import pytest

from desktop import secrets
from desktop.secret_service import DEFAULT_COLLECTION, SERVICE_IFACE, SERVICE_PATH, SecretServiceKeyring, _Connection

KEY = "sk-test-" + "Kp4" * 12  # looks like a key, is not one


def test_keyring_picks_the_secret_service_backend_and_the_key_round_trips(session_bus, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    import keyring.backends.SecretService

    keyring.set_keyring(keyring.backends.SecretService.Keyring())  # keyring's own choice here (needs cryptography)...
    secrets._keyring()  # ...which Parley replaces with its own backend
    assert isinstance(keyring.get_keyring(), SecretServiceKeyring)
    assert secrets.find_api_key() == (None, "none")
    secrets.store_api_key(KEY)
    assert secrets.find_api_key() == (KEY, "keyring")
    secrets.store_api_key(KEY[::-1])  # saving again replaces, never duplicates
    with closing(_Connection()) as c:
        items = c.search({"service": secrets.SERVICE, "username": secrets.USERNAME})
        assert len(items) == 1
        assert c.get_property(items[0], "org.freedesktop.Secret.Item", "Label") == \
            f"Password for '{secrets.USERNAME}' on '{secrets.SERVICE}'"
    assert secrets.find_api_key() == (KEY[::-1], "keyring")
    assert secrets.delete_api_key() is True
    assert secrets.find_api_key() == (None, "none")
    assert secrets.delete_api_key() is False


def test_a_key_saved_by_another_client_is_found(session_bus):
    """Items are matched on keyring's attributes (service, username), whoever wrote them."""
    backend = SecretServiceKeyring()
    with closing(_Connection()) as c:
        c.create("stored by another tool", {"service": "Parley", "username": "openai-api-key",
                                              "application": "Python keyring library"}, KEY.encode())
    assert backend.get_password("Parley", "openai-api-key") == KEY
    backend.delete_password("Parley", "openai-api-key")
    assert backend.get_password("Parley", "openai-api-key") is None
    with pytest.raises(keyring.errors.PasswordDeleteError):
        backend.delete_password("Parley", "openai-api-key")


def test_a_locked_keyring_that_cannot_prompt_is_reported_in_plain_words(session_bus):
    backend = SecretServiceKeyring()
    backend.set_password("Parley", "openai-api-key", KEY)
    with closing(_Connection()) as c:
        c.call(SERVICE_PATH, SERVICE_IFACE, "Lock", "ao", ([DEFAULT_COLLECTION],))
        assert c.get_property(DEFAULT_COLLECTION, "org.freedesktop.Secret.Collection", "Locked")
    keyring.set_keyring(backend)
    # No display here: the unlock prompt cannot be shown, so the keyring stays locked.
    assert secrets.keyring_key() is None  # reading: no key, no crash
    with pytest.raises(secrets.SecretStoreError, match="locked|refused"):
        secrets.store_api_key(KEY)


def test_without_a_secret_service_there_is_no_key_and_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.delenv("PARLEY_DISABLE_KEYRING", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    from desktop.secret_service import service_available

    assert service_available(timeout=1.0) is False
    with pytest.raises(RuntimeError):
        SecretServiceKeyring.priority  # noqa: B018 - keyring reads it to choose a backend
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # what keyring chooses when no backend is viable
    try:
        secrets._keyring()
        assert not isinstance(keyring.get_keyring(), SecretServiceKeyring)
        assert secrets.find_api_key() == (None, "none")
        with pytest.raises(secrets.SecretStoreError, match="keyring"):
            secrets.store_api_key(KEY)
    finally:
        keyring.set_keyring(previous)
