"""The freedesktop Secret Service (GNOME Keyring, KWallet, KeePassXC...) over D-Bus, as a `keyring` backend.

keyring's own Secret Service backend goes through SecretStorage, which needs the `cryptography` package
(14 MB in the installer) only to encrypt the secret on its way over the session bus. The Secret Service
specification also defines the "plain" transfer, which libsecret itself falls back to; the session bus is
a per-user local socket. So on Linux Parley talks to the service directly with `jeepney` (pure Python),
and the installer leaves SecretStorage and cryptography out.

    backend = SecretServiceKeyring()        # keyring picks it by priority (above keyring's own, 5)
    backend.set_password("Parley", "openai-api-key", "sk-...")

Items are found by the attributes keyring uses (`service`, `username`), so a key saved by keyring's own
backend (or `secret-tool store service Parley username openai-api-key`) is found, and the other way round.
A locked collection or item is unlocked through the service's prompt (the desktop's keyring dialog);
dismissing it raises `keyring.errors.KeyringLocked`. Nothing here logs a secret.
"""

from __future__ import annotations

import sys
import time
from contextlib import closing

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import InitError, KeyringLocked, PasswordDeleteError

BUS_NAME = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
SERVICE_IFACE = "org.freedesktop.Secret.Service"
COLLECTION_IFACE = "org.freedesktop.Secret.Collection"
ITEM_IFACE = "org.freedesktop.Secret.Item"
PROMPT_IFACE = "org.freedesktop.Secret.Prompt"
NO_PROMPT = "/"
PROMPT_TIMEOUT_S = 120.0


class SecretServiceError(RuntimeError):
    pass


class _Connection:
    """One session-bus connection with an open "plain" Secret Service session."""

    def __init__(self, timeout: float = 10.0) -> None:
        from jeepney.io.blocking import open_dbus_connection

        self.timeout = timeout
        try:
            self.conn = open_dbus_connection(bus="SESSION")
        except Exception as exc:  # no session bus (no desktop session, no DBUS_SESSION_BUS_ADDRESS)
            raise SecretServiceError(f"no D-Bus session bus ({type(exc).__name__}: {exc})") from None
        try:
            _output, self.session = self.call(SERVICE_PATH, SERVICE_IFACE, "OpenSession", "sv", ("plain", ("s", "")))
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass

    def call(self, path: str, interface: str, method: str, signature: str | None = None, body: tuple = ()):
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        msg = new_method_call(DBusAddress(path, bus_name=BUS_NAME, interface=interface), method, signature, body)
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=self.timeout)
            return unwrap_msg(reply)
        except DBusErrorResponse as exc:
            raise SecretServiceError(f"{exc.name}: {' '.join(map(str, exc.data))}".strip()) from None
        except TimeoutError:
            raise SecretServiceError(f"the Secret Service did not answer {method} within {self.timeout:g} s") from None

    def get_property(self, path: str, interface: str, name: str):
        (value,) = self.call(path, "org.freedesktop.DBus.Properties", "Get", "ss", (interface, name))
        return value[1]

    def prompt(self, prompt_path: str) -> tuple[bool, object]:
        """Run a prompt (e.g. the unlock dialog) and wait for it: (dismissed, result)."""
        if prompt_path == NO_PROMPT:
            return False, None
        from jeepney import MatchRule

        rule = MatchRule(type="signal", interface=PROMPT_IFACE, member="Completed", path=prompt_path)
        with self.conn.filter(rule) as signals:
            self._add_match(rule)  # the filter routes the signal here; the bus must be asked to send it
            self.call(prompt_path, PROMPT_IFACE, "Prompt", "s", ("",))
            deadline = time.monotonic() + PROMPT_TIMEOUT_S
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KeyringLocked("The keyring's unlock prompt was not answered in time.")
                msg = self.conn.recv_until_filtered(signals, timeout=remaining)
                dismissed, result = msg.body
                return bool(dismissed), result[1]

    def _add_match(self, rule) -> None:
        from jeepney import message_bus
        from jeepney.wrappers import unwrap_msg

        unwrap_msg(self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=self.timeout))

    def unlock(self, paths: list[str]) -> None:
        unlocked, prompt = self.call(SERVICE_PATH, SERVICE_IFACE, "Unlock", "ao", (paths,))
        if set(paths) <= set(unlocked):
            return
        dismissed, _result = self.prompt(prompt)
        if dismissed:
            raise KeyringLocked("The keyring stayed locked (the unlock prompt was dismissed).")

    def search(self, attributes: dict[str, str]) -> list[str]:
        unlocked, locked = self.call(SERVICE_PATH, SERVICE_IFACE, "SearchItems", "a{ss}", (attributes,))
        if locked:
            self.unlock(list(locked))
        return list(unlocked) + list(locked)

    def secret(self, item: str) -> bytes:
        (session, _parameters, value, _content_type), = self.call(item, ITEM_IFACE, "GetSecret", "o", (self.session,))
        return bytes(value)

    def collection(self) -> str:
        """The default collection (the "login" keyring), unlocked."""
        try:
            locked = self.get_property(DEFAULT_COLLECTION, COLLECTION_IFACE, "Locked")
        except SecretServiceError as exc:
            raise InitError(f"The keyring has no default collection ({exc}).") from None
        if locked:
            self.unlock([DEFAULT_COLLECTION])
        return DEFAULT_COLLECTION

    def create(self, label: str, attributes: dict[str, str], value: bytes) -> None:
        collection = self.collection()
        properties_ = {
            f"{ITEM_IFACE}.Label": ("s", label),
            f"{ITEM_IFACE}.Attributes": ("a{ss}", attributes),
        }
        secret = (self.session, b"", value, "text/plain; charset=utf8")
        item, prompt = self.call(collection, COLLECTION_IFACE, "CreateItem", "a{sv}(oayays)b",
                                 (properties_, secret, True))
        if item == NO_PROMPT:
            dismissed, _result = self.prompt(prompt)
            if dismissed:
                raise KeyringLocked("The keyring did not store the key (the prompt was dismissed).")

    def delete(self, item: str) -> None:
        (prompt,) = self.call(item, ITEM_IFACE, "Delete")
        dismissed, _result = self.prompt(prompt)
        if dismissed:
            raise KeyringLocked("The key was not removed (the prompt was dismissed).")


def service_available(timeout: float = 2.0) -> bool:
    """Whether a Secret Service runs on the session bus, or D-Bus can start one."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import unwrap_msg

    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    try:
        with closing(open_dbus_connection(bus="SESSION")) as conn:
            (owned,) = unwrap_msg(conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", (BUS_NAME,)),
                                                          timeout=timeout))
            if owned:
                return True
            (names,) = unwrap_msg(conn.send_and_get_reply(new_method_call(bus, "ListActivatableNames"),
                                                          timeout=timeout))
            return BUS_NAME in names
    except Exception:  # noqa: BLE001 - no bus, a refused connection, a timeout: no service
        return False


class SecretServiceKeyring(KeyringBackend):
    """keyring backend: the Secret Service through jeepney with a plain session (see the module docstring)."""

    appid = "Parley"

    @properties.classproperty
    def priority(cls) -> float:
        if not sys.platform.startswith("linux"):
            raise RuntimeError("the Secret Service is a Linux desktop service")
        if not service_available():
            raise RuntimeError("The Secret Service daemon is neither running nor activatable through D-Bus")
        return 6  # above keyring's own SecretService backend (5), which needs `cryptography`

    @staticmethod
    def _query(service: str, username: str | None) -> dict[str, str]:
        query = {"service": service}
        if username is not None:
            query["username"] = username
        return query

    def _connect(self) -> _Connection:
        try:
            return _Connection()
        except SecretServiceError as exc:
            raise InitError(f"Could not open the Secret Service: {exc}") from None

    def get_password(self, service: str, username: str) -> str | None:
        with closing(self._connect()) as c:
            for item in c.search(self._query(service, username)):
                return c.secret(item).decode("utf-8")
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        with closing(self._connect()) as c:
            attributes = {**self._query(service, username), "application": self.appid}
            c.create(f"Password for '{username}' on '{service}'", attributes, password.encode("utf-8"))

    def delete_password(self, service: str, username: str) -> None:
        with closing(self._connect()) as c:
            for item in c.search(self._query(service, username)):
                c.delete(item)
                return
        raise PasswordDeleteError("No such password!")
