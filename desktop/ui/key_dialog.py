"""Settings → API key: enter the OpenAI key once; it is kept in the OS keyring, never in a file or a log."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import secrets


class KeyDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, environ: dict[str, str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("OpenAI API key")
        self.setMinimumWidth(480)
        self._environ = environ
        self.saved = False

        self.where = QLabel()
        self.where.setWordWrap(True)
        self.where.setAccessibleName("Where the key comes from")

        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("sk-…")
        self.key_edit.setAccessibleName("API key")
        self.show_button = QPushButton("Show")
        self.show_button.setCheckable(True)
        self.show_button.toggled.connect(self._toggle_shown)
        row = QHBoxLayout()
        row.addWidget(self.key_edit, 1)
        row.addWidget(self.show_button)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Key message")

        self.buttons = QDialogButtonBox()
        self.save_button = self.buttons.addButton("Save in keyring", QDialogButtonBox.ButtonRole.AcceptRole)
        self.remove_button = self.buttons.addButton("Remove saved key", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.save_button.clicked.connect(self.save)
        self.remove_button.clicked.connect(self.remove)
        self.buttons.rejected.connect(self.reject)

        note = QLabel(
            "The key is stored in your operating system's keyring and sent only in the Authorization header. "
            "It is never written to Parley's settings file, logs or event inspector. "
            "OPENAI_API_KEY in the environment, when set, takes precedence. A new key is used from the next start."
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: #555")

        layout = QVBoxLayout(self)
        layout.addWidget(self.where)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.refresh()

    def refresh(self) -> None:
        _, source = secrets.find_api_key(self._environ)
        self.where.setText(
            {
                "environment": "A key is set in the environment (OPENAI_API_KEY); it is used first.",
                "keyring": "A key is saved in the OS keyring.",
                "none": "No key is set: Parley uses its offline engine.",
            }[source]
        )
        self.remove_button.setEnabled(source == "keyring")

    def _toggle_shown(self, shown: bool) -> None:
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_button.setText("Hide" if shown else "Show")

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(f'<span style="color:{"#c62828" if error else "#2e7d32"}">{text}</span>')

    def save(self) -> None:
        try:
            secrets.store_api_key(self.key_edit.text())
        except secrets.SecretStoreError as exc:
            self._say(str(exc), error=True)
            return
        self.key_edit.clear()
        self.saved = True
        self._say("Saved in the OS keyring. Restart Parley to connect with it.")
        self.refresh()

    def remove(self) -> None:
        try:
            removed = secrets.delete_api_key()
        except secrets.SecretStoreError as exc:
            self._say(str(exc), error=True)
            return
        self._say("The saved key was removed." if removed else "No key was saved.")
        self.refresh()
