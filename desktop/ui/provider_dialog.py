"""Connection → Provider → (a provider that lacks something): asks for what it needs.

Azure OpenAI: its endpoint, deployment, an optional API version (the preview route) and its key. An
OpenAI-compatible server: its WebSocket URL, key and how the key is sent. Gemini Live and OpenAI: the key. The key
goes to the OS keyring under the provider's own name (`providers.key_name`), the rest to the settings file; the
dialog says which keyring backend keeps the key. A key the keyring refuses is used for this run only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QWidget

from .. import secrets
from ..providers import (
    AZURE_API_VERSION_KEY,
    AZURE_DEPLOYMENT_KEY,
    AZURE_ENDPOINT_KEY,
    COMPATIBLE_AUTH_KEY,
    COMPATIBLE_URL_KEY,
    KEY_ENV,
    PROVIDER_NAMES,
    azure_base,
    key_name,
)

#: The auth styles a compatible server may want, as the dialog names them.
AUTH_CHOICES = (("bearer", "Authorization: Bearer KEY"), ("api-key", "api-key: KEY"), ("none", "no key"))


class ProviderDialog(QDialog):
    """`kind`'s missing pieces. After `accept()`: `settings` holds what is not secret, `key` the key typed (also
    saved in the keyring unless `key_problem` says why not)."""

    def __init__(self, parent: QWidget | None, kind: str, settings: Any, missing: tuple[str, ...] = ()) -> None:
        super().__init__(parent)
        self.kind = kind
        self.settings = settings
        self.key: str | None = None
        self.key_problem: str | None = None
        self.setWindowTitle(f"{PROVIDER_NAMES[kind]}: connection")
        self.setMinimumWidth(480)
        form = QFormLayout(self)
        self.form = form
        self.endpoint = self.deployment = self.api_version = self.url = None
        self.auth: QComboBox | None = None
        saved = lambda key: settings.get(key) if settings is not None and isinstance(settings.get(key), str) else ""  # noqa: E731
        if kind == "azure":
            self.endpoint = self._line("Endpoint:", saved(AZURE_ENDPOINT_KEY), "https://NAME.openai.azure.com")
            self.deployment = self._line("Deployment:", saved(AZURE_DEPLOYMENT_KEY), "gpt-realtime")
            self.api_version = self._line("API version (optional):", saved(AZURE_API_VERSION_KEY),
                                          "empty: the GA route (/openai/v1/realtime)")
        elif kind == "compatible":
            self.url = self._line("WebSocket URL:", saved(COMPATIBLE_URL_KEY), "ws://host:port/v1/realtime")
            self.auth = QComboBox()
            self.auth.setAccessibleName("How the key is sent")
            for value, text in AUTH_CHOICES:
                self.auth.addItem(text, value)
            index = self.auth.findData(saved(COMPATIBLE_AUTH_KEY) or "bearer")
            self.auth.setCurrentIndex(max(0, index))
            form.addRow("Key header:", self.auth)
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setAccessibleName("API key")
        env = " or ".join(KEY_ENV.get(kind, ()))
        have_key = "key" not in missing and kind != "compatible"
        self.key_edit.setPlaceholderText("(a key is set; type to replace it)" if have_key else
                                         "kept in the OS keyring" + (f"; {env} wins when set" if env else ""))
        form.addRow("API key:" if kind != "compatible" else "API key (optional):", self.key_edit)
        #: Which keyring backend keeps the key (or why none can).
        self.backend = QLabel(f"Keys are kept in the OS keyring: {secrets.keyring_backend()}. Never in a file.")
        self.backend.setWordWrap(True)
        self.backend.setAccessibleName("Keyring backend")
        self.backend.setStyleSheet("color: #555")
        form.addRow(self.backend)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Provider message")
        form.addRow(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self._missing = missing

    def _line(self, label: str, text: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit(text)
        edit.setPlaceholderText(placeholder)
        edit.setAccessibleName(label.rstrip(":").split(" (")[0])
        self.form.addRow(label, edit)
        return edit

    def _say(self, text: str) -> None:
        self.message.setText(f'<span style="color:#c62828">{text}</span>')

    def problem(self) -> str | None:
        """Why the fields cannot be used yet, or None."""
        key = self.key_edit.text().strip()
        if self.kind == "azure":
            assert self.endpoint is not None and self.deployment is not None
            try:
                azure_base(self.endpoint.text())
            except ValueError as exc:
                return str(exc)
            if not self.deployment.text().strip():
                return "The deployment's name is needed."
        if self.kind == "compatible":
            assert self.url is not None
            parts = urlsplit(self.url.text().strip())
            if parts.scheme not in ("ws", "wss") or not parts.hostname:
                return "The URL must be a ws:// or wss:// URL."
            if key and any(c.isspace() for c in key):
                return "The key contains spaces or line breaks."
        elif key:
            return secrets.validate_key_format(key)
        elif "key" in self._missing:
            return "The API key is needed."
        return None

    def accept(self) -> None:
        problem = self.problem()
        if problem:
            self._say(problem)
            return
        values: dict[str, str] = {}
        if self.kind == "azure":
            assert self.endpoint and self.deployment and self.api_version
            values = {AZURE_ENDPOINT_KEY: self.endpoint.text().strip(), AZURE_DEPLOYMENT_KEY: self.deployment.text().strip(),
                      AZURE_API_VERSION_KEY: self.api_version.text().strip()}
        elif self.kind == "compatible":
            assert self.url and self.auth
            values = {COMPATIBLE_URL_KEY: self.url.text().strip(), COMPATIBLE_AUTH_KEY: self.auth.currentData()}
        if self.settings is not None:
            for name, value in values.items():
                if value:
                    self.settings.set(name, value)
                else:
                    self.settings.remove(name)
        key = self.key_edit.text().strip()
        if key and not (self.kind == "compatible" and self.auth is not None and self.auth.currentData() == "none"):
            self.key = key
            try:
                secrets.store_secret(key_name(self.kind, values.get(COMPATIBLE_URL_KEY)), key)
            except secrets.SecretStoreError as exc:
                self.key_problem = str(exc)
        self.key_edit.clear()
        super().accept()
