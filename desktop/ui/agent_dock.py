"""The *Instructions and voice* dock: what the assistant is told and how it sounds, applied live.

Instructions apply on *Apply* (Ctrl+Enter in the box): one `session.update` per decision, not per keystroke.
Voice, speed and noise reduction apply when changed. The settings persist (the "agent" key). The dock's
last line says what the server reports it uses, and when a new voice has to wait for the next session.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core.actions import ConversationCleared, Notice, SessionChanged, StateChanged, ToolCalled, TurnState
from ..core.agent_settings import (
    ANSWER_MODES,
    NOISE_REDUCTION_CHOICES,
    TRANSCRIPTION_MODELS,
    OPENAI_VOICES,
    SPEED_MAX,
    SPEED_MIN,
    AgentSettings,
    describe_agent,
)
from ..core.agent_profiles import MAX_FILE_BYTES, AgentProfile, ProfileProblem, clean_name, profiles_from_store, profiles_to_store
from ..core.tools import ToolSettings, answer_for
from ..core.turn_taking import TurnSettings
from ..settings import Settings
from .menus import menu_named
from .profile_bar import ProfileBar
from .tools_panel import PendingCall, ToolsPanel

log = logging.getLogger(__name__)
SETTINGS_KEY = "agent"
TOOLS_KEY = "tools"
PROFILES_KEY = "profiles"
CURRENT_PROFILE_KEY = "profiles.current"
DEFAULT_VOICE_LABEL = "Default (the server's)"


class AgentDock(QDockWidget):
    changed = Signal(object)  # AgentSettings

    def __init__(self, settings: AgentSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Instructions and voice", parent)
        self.setObjectName("agent_dock")
        self.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self._settings = settings or AgentSettings()
        self._loading = False

        body = QWidget()
        outer = QVBoxLayout(body)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(QLabel("Instructions"))
        self.instructions = QPlainTextEdit()
        self.instructions.setPlaceholderText("Blank: the model's own default instructions.\n"
                                             "Say who the assistant is and how it should talk. Ctrl+Enter applies.")
        self.instructions.setAccessibleName("Instructions")
        self.instructions.setMinimumHeight(110)
        self.instructions.setTabChangesFocus(True)
        outer.addWidget(self.instructions, 1)
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply (Ctrl+Enter)")
        self.apply_button.setToolTip("Send the instructions to the session now (session.update)")
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip("Put back the instructions last applied")
        self.pending_label = QLabel("")
        self.pending_label.setStyleSheet("color:#8a6d00")
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.pending_label, 1)
        outer.addLayout(buttons)

        form = QFormLayout()
        self.voice = QComboBox()
        self.voice.setEditable(True)  # any voice id the server knows, not only the built-in list
        self.voice.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.voice.setAccessibleName("Voice")
        self.voice.setToolTip("The voice of the answers. A session keeps its voice once it has spoken: a new "
                              "one is then used from the next session.")
        self.speed = QDoubleSpinBox()
        self.speed.setRange(SPEED_MIN, SPEED_MAX)
        self.speed.setSingleStep(0.05)
        self.speed.setDecimals(2)
        self.speed.setSuffix(" ×")
        self.speed.setKeyboardTracking(False)
        self.speed.setAccessibleName("Speaking speed")
        self.speed.setToolTip("How fast the answers are spoken (audio.output.speed, 0.25 to 1.5)")
        self.noise = QComboBox()
        for key, label in NOISE_REDUCTION_CHOICES.items():
            self.noise.addItem(label, key)
        self.noise.setAccessibleName("Input noise reduction")
        self.noise.setToolTip("The server's filter on your microphone audio before its VAD and the model hear it")
        self.answer_mode = QComboBox()
        for key, label in ANSWER_MODES.items():
            self.answer_mode.addItem(label, key)
        self.answer_mode.setAccessibleName("Answer with")
        self.answer_mode.setToolTip("output_modalities: text-only answers cost no audio tokens (handy while tuning)")
        self.transcription = QComboBox()
        self.transcription.setEditable(True)  # any transcription model the server knows
        self.transcription.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.transcription.addItem(f"Default ({TRANSCRIPTION_MODELS[0]})", "")
        for model in TRANSCRIPTION_MODELS:
            self.transcription.addItem(model, model)
        self.transcription.addItem("Off (no transcripts of your speech)", "off")
        self.transcription.setAccessibleName("Transcription model")
        self.language = QLineEdit()
        self.language.setPlaceholderText("detected (or e.g. en, de, fr)")
        self.language.setMaxLength(8)
        self.language.setAccessibleName("Transcription language")
        for combo in (self.voice, self.noise, self.answer_mode, self.transcription):  # long labels must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        form.addRow("Voice", self.voice)
        form.addRow("Speed", self.speed)
        form.addRow("Noise reduction", self.noise)
        form.addRow("Answer with", self.answer_mode)
        form.addRow("Transcription", self.transcription)
        form.addRow("Language", self.language)
        outer.addLayout(form)

        self._outer = outer
        self.server_label = QLabel("Server: not connected")
        self.server_label.setWordWrap(True)
        self.server_label.setAccessibleName("What the server uses")
        outer.addWidget(self.server_label)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the fields fit the dock's width
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.set_voices(OPENAI_VOICES)
        self.set_settings(self._settings)
        self.apply_button.clicked.connect(self.apply_instructions)
        self.revert_button.clicked.connect(self._revert)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self.instructions, activated=self.apply_instructions,
                      context=Qt.ShortcutContext.WidgetShortcut)
        self.instructions.textChanged.connect(self._show_pending)
        self.voice.activated.connect(self._edited)
        self.voice.lineEdit().editingFinished.connect(self._edited)
        self.speed.valueChanged.connect(self._edited)
        self.noise.currentIndexChanged.connect(self._edited)
        self.answer_mode.currentIndexChanged.connect(self._edited)
        self.transcription.activated.connect(self._edited)
        self.transcription.lineEdit().editingFinished.connect(self._edited)
        self.language.editingFinished.connect(self._edited)

    # ------------------------------------------------------------------ model <-> widgets
    def settings(self) -> AgentSettings:
        return self._settings

    def set_settings(self, s: AgentSettings) -> None:
        self._loading = True
        try:
            self._settings = s
            self.instructions.setPlainText(s.instructions)
            self._set_voice_text(s.voice)
            self.speed.setValue(s.speed)
            self.noise.setCurrentIndex(max(0, self.noise.findData(s.noise_reduction)))
            self.answer_mode.setCurrentIndex(max(0, self.answer_mode.findData(s.answer_mode)))
            index = self.transcription.findData(s.transcription)
            if index >= 0:
                self.transcription.setCurrentIndex(index)
            else:
                self.transcription.setEditText(s.transcription)
            self.language.setText(s.language)
        finally:
            self._loading = False
        self._show_pending()

    def set_voices(self, voices: tuple[str, ...] | list[str]) -> None:
        """The voices offered (the provider's); the current choice is kept, whatever it is."""
        current = self._voice_value()
        self._loading = True
        try:
            self.voice.clear()
            self.voice.addItem(DEFAULT_VOICE_LABEL, "")
            for v in voices:
                self.voice.addItem(v, v)
            self._set_voice_text(current if current is not None else self._settings.voice)
        finally:
            self._loading = False

    def _set_voice_text(self, voice: str) -> None:
        index = self.voice.findData(voice)
        if index >= 0:
            self.voice.setCurrentIndex(index)
        else:
            self.voice.setEditText(voice)

    def _voice_value(self) -> str | None:
        if self.voice.count() == 0:
            return None
        text = self.voice.currentText().strip()
        return "" if text in ("", DEFAULT_VOICE_LABEL) else text

    def _transcription_value(self) -> str:
        index = self.transcription.currentIndex()
        text = self.transcription.currentText().strip()
        if index >= 0 and text == self.transcription.itemText(index):
            return self.transcription.itemData(index) or ""
        return text  # a model name typed in

    def _read(self, instructions: str) -> AgentSettings:
        return AgentSettings(instructions=instructions, voice=self._voice_value() or "",
                             speed=round(self.speed.value(), 2), noise_reduction=self.noise.currentData() or "default",
                             answer_mode=self.answer_mode.currentData() or "audio",
                             transcription=self._transcription_value(), language=self.language.text().strip())

    # ------------------------------------------------------------------ edits
    def apply_instructions(self) -> None:
        self._emit(self._read(self.instructions.toPlainText()))

    def _revert(self) -> None:
        self.instructions.setPlainText(self._settings.instructions)

    def _edited(self, *_args: Any) -> None:
        if not self._loading:
            self._emit(self._read(self._settings.instructions))  # typed instructions wait for Apply

    def _emit(self, s: AgentSettings) -> None:
        self._show_pending()
        if s == self._settings:
            return
        self._settings = s
        self._show_pending()
        self.changed.emit(s)

    def _show_pending(self) -> None:
        edited = self.instructions.toPlainText() != self._settings.instructions
        self.apply_button.setEnabled(edited)
        self.revert_button.setEnabled(edited)
        self.pending_label.setText("edited, not applied" if edited else "")

    def add_top(self, widget: QWidget) -> None:
        """A row above everything else (the agent profiles)."""
        self._outer.insertWidget(0, widget)

    def add_section(self, widget: QWidget) -> None:
        """Another part of the dock (the tools), above the server's line."""
        self._outer.insertWidget(self._outer.indexOf(self.server_label), widget)

    # ------------------------------------------------------------------ server view
    def show_server(self, text: str) -> None:
        self.server_label.setText(text)


class AgentUi:
    """Binds the dock to a LiveSession and the settings file."""

    def __init__(self, window, settings: Settings | None = None) -> None:
        self.window = window
        self.store = settings or Settings.shared()
        self.session = None
        self.dock = AgentDock(AgentSettings.from_dict(self.store.get(SETTINGS_KEY, {})))  # parented by addDockWidget
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        turn_dock = getattr(getattr(window, "turn_ui", None), "dock", None)
        if turn_dock is not None:  # one column of docks: tabs, turn detection in front
            window.tabifyDockWidget(turn_dock, self.dock)
            turn_dock.raise_()
        toggle = self.dock.toggleViewAction()
        toggle.setText("Instructions and voice")
        toggle.setShortcut("Ctrl+I")
        toggle.triggered.connect(lambda on: on and self.dock.raise_())
        menu_named(window, "&View").addAction(toggle)
        self.dock.changed.connect(self._changed)
        self.tools = ToolsPanel(ToolSettings.from_dict(self.store.get(TOOLS_KEY, {})))
        self.dock.add_section(self.tools)
        self.tools.changed.connect(self._tools_changed)
        self.tools.result_typed.connect(self._send_result)
        self.profiles = profiles_from_store(self.store.get(PROFILES_KEY, []))
        current = self.store.get(CURRENT_PROFILE_KEY)
        self.profile_bar = ProfileBar(on_load=self.load_profile, on_save=self.save_profile, on_delete=self.delete_profile,
                                      on_import=self.import_profile, on_export=self.export_profile)
        self.profile_bar.set_names(sorted(self.profiles, key=str.lower), current if current in self.profiles else None)
        self.dock.add_top(self.profile_bar)

    def attach(self, session) -> None:
        self.session = session
        self._offer_voices()
        session.update_config(self._config())
        session.subscribe(self._on_note)

    def _offer_voices(self) -> None:
        """The voices of the provider in use (Gemini's are not OpenAI's); the engine has one, named once connected."""
        self._voices_of = self.session.client.capabilities
        if self.session.options.provider.kind == "engine":
            self.dock.set_voices(())
        else:
            self.dock.set_voices(self._voices_of.voices or OPENAI_VOICES)

    def _config(self):
        """The session Parley asks for: what it asks now, with these settings and tools applied."""
        client = self.session.client
        config = self.dock.settings().session_config(client.requested, client.server_defaults)
        tools = self.tools.settings()
        wire = tools.wire_tools()
        if not wire and not client.requested.tools:
            return config  # never had tools: send nothing about them
        return replace(config, tools=wire, tool_choice=tools.choice)

    def _on_note(self, note: Any) -> None:
        if self.session is None:
            return
        if isinstance(note, ToolCalled):
            self._answer_call(note)
            return
        if isinstance(note, ConversationCleared) or isinstance(note, StateChanged) and note.state == TurnState.DISCONNECTED:
            self.tools.forget_pending()  # a new session cannot take results for the old one's calls
            return
        if not isinstance(note, SessionChanged):
            return
        client = self.session.client
        if client.capabilities is not getattr(self, "_voices_of", None):  # another provider (Connection → Provider)
            self._offer_voices()
        effective = client.effective
        if effective is not None and effective.voice and self.session.options.provider.kind == "engine":
            if self.dock.voice.findData(effective.voice) < 0:
                self.dock.set_voices((effective.voice,))
        text = f"Server: {describe_agent(effective)}"
        if client.voice_waits:
            text += (f". The voice {client.requested.voice} is used from the next session: this one has spoken, "
                     "and a session keeps its voice.")
        self.dock.show_server(text)

    def _save(self, key: str, value: Any) -> None:
        self.store.set(key, value)
        try:
            self.store.save()
        except OSError as exc:
            self.window.on_notification(Notice("warning", f"Settings could not be saved: {exc}"))

    def _tools_changed(self, tools: ToolSettings) -> None:
        self._save(TOOLS_KEY, tools.to_dict())
        if self.session is not None:
            self.session.update_config(self._config())
            log.info("session.update: %d tool(s), choice %s", len(tools.tools), tools.choice)

    def _answer_call(self, call: ToolCalled) -> None:
        output = answer_for(self.tools.settings(), call.name, call.arguments)
        if output is not None:
            tool = self.tools.settings().find(call.name)
            delay_ms = tool.delay_ms if tool is not None else 0
            log.info("tool %s answered with its canned result%s", call.name,
                     f" after {delay_ms} ms" if delay_ms else "")
            self.session.send_tool_output(call.call_id, output, delay_ms / 1000)
            return
        self.tools.ask(PendingCall(call.call_id, call.name, call.arguments))
        self.dock.show()
        self.dock.raise_()
        self.window.on_notification(Notice("info", f"The model called {call.name}: type its result under Tools "
                                                   "(Instructions and voice, Ctrl+I)."))

    # ------------------------------------------------------------------ agent profiles
    def _turn_ui(self):
        return getattr(self.window, "turn_ui", None)

    def current_profile(self, name: str) -> AgentProfile:
        """What is set now, as a profile named `name`."""
        turn_ui = self._turn_ui()
        turn = turn_ui.dock.settings() if turn_ui is not None else TurnSettings()
        return AgentProfile(clean_name(name), self.dock.settings(), self.tools.settings(), turn)

    def save_profile(self, name: str) -> None:
        try:
            profile = self.current_profile(name)
        except ProfileProblem as exc:
            self.window.on_notification(Notice("warning", str(exc)))
            return
        self.profiles[profile.name] = profile
        self._store_profiles(profile.name)
        self.window.on_notification(Notice("info", f"Saved the agent profile {profile.name!r}."))

    def load_profile(self, name: str) -> None:
        profile = self.profiles.get(name)
        if profile is None:
            return
        self.apply_profile(profile)
        self._store_profiles(profile.name)

    def apply_profile(self, profile: AgentProfile) -> None:
        """Instructions, voice, tools and turn detection of `profile`: shown, saved, and sent in one update."""
        self.dock.set_settings(profile.agent)
        self.tools.set_settings(profile.tools)
        self._save(SETTINGS_KEY, profile.agent.to_dict())
        self._save(TOOLS_KEY, profile.tools.to_dict())
        if self.session is not None:
            self.session.update_config(self._config())
        turn_ui = self._turn_ui()
        if turn_ui is not None:
            turn_ui.apply(profile.turn)
        log.info("agent profile %r applied", profile.name)

    def delete_profile(self, name: str) -> None:
        if self.profiles.pop(name, None) is not None:
            self._store_profiles(None)

    def import_profile(self, path: str) -> AgentProfile | None:
        """Read a profile file, keep it (a name already used gets a number) and apply it."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(MAX_FILE_BYTES + 1)
            profile = AgentProfile.from_json(text, fallback_name=Path(path).stem)
        except (OSError, UnicodeDecodeError, ProfileProblem) as exc:
            self.window.on_notification(Notice("error", f"Cannot import {Path(path).name}: {exc}"))
            return None
        name, n = profile.name, 1
        while name in self.profiles and self.profiles[name] != replace(profile, name=name):
            n += 1
            name = f"{profile.name} ({n})"
        profile = replace(profile, name=name)
        self.profiles[name] = profile
        self.apply_profile(profile)
        self._store_profiles(name)
        self.window.on_notification(Notice("info", f"Imported and applied the agent profile {name!r}."))
        return profile

    def export_profile(self, path: str, name: str) -> bool:
        try:
            profile = self.current_profile(name)
            Path(path).write_text(profile.to_json(), encoding="utf-8")
        except (OSError, ProfileProblem) as exc:
            self.window.on_notification(Notice("error", f"Cannot export to {path}: {exc}"))
            return False
        self.window.on_notification(Notice("info", f"Exported the agent {profile.name!r} to {path}."))
        return True

    def _store_profiles(self, current: str | None) -> None:
        self.store.set(CURRENT_PROFILE_KEY, current)
        self._save(PROFILES_KEY, profiles_to_store(self.profiles))
        self.profile_bar.set_names(sorted(self.profiles, key=str.lower), current)

    def _send_result(self, call_id: str, output: str) -> None:
        if self.session is not None:
            self.session.send_tool_output(call_id, output)

    def _changed(self, s: AgentSettings) -> None:
        self._save(SETTINGS_KEY, s.to_dict())
        if self.session is None:
            return
        config = self._config()
        self.session.update_config(config)
        log.info("session.update: %s", describe_agent(config))
        if self.session.client.voice_waits:
            self.window.on_notification(Notice("info", f"The voice {config.voice} will be used from the next session: "
                                                       "this one has already spoken, and a session keeps its voice."))
