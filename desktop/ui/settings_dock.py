"""The turn-detection dock: mode, profile, VAD values, dynamic rules, semantic cues, wake phrase.

Every edit emits `changed(TurnSettings)` at once (the window sends `session.update` and saves the
settings); `show_server()` displays what the server confirmed in `session.updated`, and says when its
values differ from the requested ones.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core import turn_taking as tt
from ..core.provider_capabilities import OPENAI, ProviderCapabilities
from ..core.session_config import EAGERNESS_VALUES, ManualTurns, TurnDetection, describe_turn_detection

_PROFILE_LABELS = {
    "fast": "Fast (0.6 / 200 / 300)",
    "balanced": "Balanced (0.5 / 300 / 500)",
    "patient": "Patient (0.4 / 400 / 800)",
    "noisy": "Noisy room (0.7 / 300 / 600)",
    "custom": "Custom",
}


def _spin(lo: int, hi: int, step: int, suffix: str = " ms") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setSuffix(suffix)
    s.setKeyboardTracking(False)  # typed digits apply on Enter/focus-out, not one session.update per digit
    return s


class _PhraseEdit(QPlainTextEdit):
    """A comma-separated phrase list that wraps onto as many lines as it needs (up to 4, then it scrolls), so a
    long list is seen whole in a narrow dock. Speaks QLineEdit's few words used here: text, setText, the cursor
    position and editingFinished (on Enter or leaving the field); Enter does not add a line."""

    editingFinished = Signal()
    MAX_LINES = 4

    def __init__(self) -> None:
        super().__init__()
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setTabChangesFocus(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self.textChanged.connect(self._fit_height)
        self._fit_height()

    def text(self) -> str:
        return " ".join(self.toPlainText().split("\n"))

    def setText(self, text: str) -> None:
        self.setPlainText(text)

    def cursorPosition(self) -> int:
        return self.textCursor().position()

    def setCursorPosition(self, position: int) -> None:
        cursor = self.textCursor()
        cursor.setPosition(max(0, min(position, len(self.toPlainText()))))
        self.setTextCursor(cursor)

    def _fit_height(self, *_args) -> None:
        """As tall as the wrapped text (the blocks' laid-out heights), between one line and MAX_LINES."""
        line = self.fontMetrics().height()
        text_height, block = 0.0, self.document().firstBlock()
        while block.isValid():
            text_height += self.blockBoundingRect(block).height()
            block = block.next()
        text_height = min(max(text_height, line), self.MAX_LINES * line)
        margins = self.contentsMargins()
        frame = margins.top() + margins.bottom() + 2 * self.document().documentMargin()
        self.setFixedHeight(int(text_height + frame + 0.999) + 2)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_height()  # a new width wraps the list anew

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.editingFinished.emit()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().focusOutEvent(event)
        self.editingFinished.emit()


class SettingsDock(QDockWidget):
    changed = Signal(object)  # TurnSettings

    def __init__(self, settings: tt.TurnSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Turn detection", parent)
        self.setObjectName("turn_detection_dock")
        self.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self._settings = settings or tt.TurnSettings()
        self._loading = False
        #: The provider whose knobs these are (set_provider): what it lacks is disabled, with the reason.
        self.capabilities: ProviderCapabilities = OPENAI

        body = QWidget()
        outer = QVBoxLayout(body)
        outer.setContentsMargins(6, 6, 6, 6)

        self.mode = QComboBox()
        for key in tt.MODES:
            self.mode.addItem(tt.MODE_LABELS[key], key)
        self.mode.setAccessibleName("Turn mode")
        top = QFormLayout()
        top.addRow("Mode", self.mode)
        outer.addLayout(top)

        # -- voice activity (server) ------------------------------------------------------------
        self.vad_box = QGroupBox("Server turn detection")
        vad = QFormLayout(self.vad_box)
        self.detection = QComboBox()
        self.detection.addItem("Server VAD (silence)", "server_vad")
        self.detection.addItem("Semantic VAD (meaning)", "semantic_vad")
        self.profile = QComboBox()
        for key in tt.PROFILES:
            self.profile.addItem(_PROFILE_LABELS[key], key)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setKeyboardTracking(False)
        self.prefix = _spin(0, 2000, 50)
        self.silence = _spin(0, 5000, 50)
        self.idle = _spin(0, 30000, 1000)
        self.idle.setSpecialValueText("off")
        self.idle.setToolTip("Prompt the user after this much silence (5000–30000 ms; off = never)")
        self.create_response = QCheckBox("Answer automatically (create_response)")
        self.interrupt_response = QCheckBox("Speech interrupts the answer (interrupt_response)")
        self.eagerness = QComboBox()
        for e in EAGERNESS_VALUES:
            self.eagerness.addItem(e, e)
        vad.addRow("Detector", self.detection)
        vad.addRow("Profile", self.profile)
        vad.addRow("Threshold", self.threshold)
        vad.addRow("Prefix padding", self.prefix)
        vad.addRow("Silence duration", self.silence)
        vad.addRow("Idle timeout", self.idle)
        vad.addRow("Eagerness", self.eagerness)
        vad.addRow(self.create_response)
        vad.addRow(self.interrupt_response)
        self._vad_form = vad
        #: Whose knobs these are, under the mode: what differs on this provider is in its tooltip.
        self.provider_label = QLabel()
        self.provider_label.setWordWrap(True)
        self.provider_label.setAccessibleName("Provider knobs")
        self.provider_label.setStyleSheet("color:#555")
        outer.addWidget(self.provider_label)
        outer.addWidget(self.vad_box)

        # -- dynamic rules ------------------------------------------------------------------------
        self.rules_box = QGroupBox("Dynamic silence (per turn)")
        self.rules_box.setCheckable(True)
        rules = QFormLayout(self.rules_box)
        self.think_phrases = _PhraseEdit()  # wraps: the default list is wider than the dock
        self.think_phrases.setAccessibleName("Thinking phrases")
        self.think_phrases.setToolTip("When your words end with one of these, wait longer before ending your next turn")
        self.think_ms = _spin(0, 10000, 100)
        self.yes_no_ms = _spin(0, 10000, 50)
        self.yes_no_ms.setToolTip("After the assistant asks a yes/no question, end your reply after this much silence")
        think_label = QLabel("Thinking phrases")
        think_label.setBuddy(self.think_phrases)
        rules.addRow(think_label)  # above its field, which takes the dock's whole width
        rules.addRow(self.think_phrases)
        rules.addRow("…then silence", self.think_ms)
        rules.addRow("Reply to yes/no", self.yes_no_ms)
        outer.addWidget(self.rules_box)

        # -- client semantic ----------------------------------------------------------------------
        self.semantic_box = QGroupBox("Semantic turns (client)")
        sem = QFormLayout(self.semantic_box)
        self.completion = QLineEdit()
        self.completion.setToolTip("Your turn ends at once when you end with one of these (comma-separated)")
        self.hesitation = QLineEdit()
        self.hesitation.setToolTip("Your turn is held when you pause after one of these (comma-separated)")
        self.fallback = _spin(300, 10000, 100)
        sem.addRow("Completion cues", self.completion)
        sem.addRow("Hesitation cues", self.hesitation)
        sem.addRow("Fallback silence", self.fallback)
        outer.addWidget(self.semantic_box)

        # -- wake word ----------------------------------------------------------------------------
        self.wake_box = QGroupBox("Wake word")
        wake = QFormLayout(self.wake_box)
        self.wake_phrase = QLineEdit()
        self.detector_label = QLabel("pocketsphinx keyphrase spotting (offline)")
        self.detector_label.setWordWrap(True)
        self.detector_label.setAccessibleName("Wake word detector")
        wake.addRow("Phrase", self.wake_phrase)
        wake.addRow("Detector", self.detector_label)
        outer.addWidget(self.wake_box)

        # -- what the server uses -----------------------------------------------------------------
        self.server_label = QLabel("Server: not connected")
        self.server_label.setWordWrap(True)
        self.server_label.setAccessibleName("Server turn detection")
        outer.addWidget(self.server_label)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(200)
        self.log_view.setPlaceholderText("Turn decisions and rule changes appear here.")
        self.log_view.setAccessibleName("Turn log")
        # It takes the room left over (at least ~4 lines): the dock needs no scrolling at the default window size.
        self.log_view.setMinimumHeight(60)
        self.log_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        outer.addWidget(self.log_view, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.set_settings(self._settings)
        self.mode.currentIndexChanged.connect(self._edited)
        self.detection.currentIndexChanged.connect(self._edited)
        self.profile.currentIndexChanged.connect(self._profile_picked)
        for w in (self.threshold, self.prefix, self.silence, self.idle, self.think_ms, self.yes_no_ms, self.fallback):
            w.valueChanged.connect(self._value_edited)
        for c in (self.create_response, self.interrupt_response):
            c.toggled.connect(self._edited)
        self.rules_box.toggled.connect(self._edited)
        self.eagerness.currentIndexChanged.connect(self._edited)
        for e in (self.think_phrases, self.completion, self.hesitation, self.wake_phrase):
            e.editingFinished.connect(self._text_edited)

    # ------------------------------------------------------------------ model <-> widgets
    def settings(self) -> tt.TurnSettings:
        return self._settings

    def set_settings(self, s: tt.TurnSettings) -> None:
        """Show `s` without emitting `changed`."""
        self._loading = True
        try:
            self._settings = s
            self.mode.setCurrentIndex(max(0, self.mode.findData(s.mode)))
            self.detection.setCurrentIndex(max(0, self.detection.findData(s.detection)))
            self.profile.setCurrentIndex(max(0, self.profile.findData(s.profile)))
            self.threshold.setValue(s.threshold)
            self.prefix.setValue(s.prefix_padding_ms)
            self.silence.setValue(s.silence_duration_ms)
            self.idle.setValue(s.idle_timeout_ms or 0)
            self.create_response.setChecked(s.create_response)
            self.interrupt_response.setChecked(s.interrupt_response)
            self.eagerness.setCurrentIndex(max(0, self.eagerness.findData(s.eagerness)))
            self.rules_box.setChecked(s.dynamic_rules)
            think = next((r for r in s.rules if r.trigger == "user_said"), None)
            yes_no = next((r for r in s.rules if r.trigger == "assistant_yes_no"), None)
            self.think_phrases.setText(", ".join(think.phrases) if think else "")
            self.think_ms.setValue(think.silence_ms if think else 2000)
            self.yes_no_ms.setValue(yes_no.silence_ms if yes_no else 300)
            self.completion.setText(", ".join(s.completion_cues))
            self.hesitation.setText(", ".join(s.hesitation_cues))
            self.fallback.setValue(s.semantic_fallback_ms)
            self.wake_phrase.setText(s.wake_phrase)
            for edit in (self.think_phrases, self.completion, self.hesitation, self.wake_phrase):
                edit.setCursorPosition(0)  # show a long list from its start, not scrolled to its end
        finally:
            self._loading = False
        self._enable_for_mode()

    # ------------------------------------------------------------------ the provider's knobs
    _KNOB_WIDGETS = (("threshold", "threshold", "Threshold"), ("prefix_padding_ms", "prefix", "Prefix padding"),
                     ("silence_duration_ms", "silence", "Silence duration"), ("idle_timeout_ms", "idle", "Idle timeout"),
                     ("eagerness", "eagerness", "Eagerness"),
                     ("interrupt_response", "interrupt_response", "Speech interrupts the answer (interrupt_response)"))

    def set_provider(self, capabilities: ProviderCapabilities) -> None:
        """Show the knobs as this provider has them: named for what they do there, disabled with the reason
        where it has no such setting, and the profiles as its own values."""
        self.capabilities = capabilities
        for name, attr, default_label in self._KNOB_WIDGETS:
            knob = capabilities.knob(name)
            widget = getattr(self, attr)
            label = knob.label or default_label
            form_label = self._vad_form.labelForField(widget)
            if isinstance(form_label, QLabel):
                form_label.setText(label)
            elif isinstance(widget, QCheckBox):
                widget.setText(label)
            widget.setToolTip(knob.meaning if knob.offered else f"Not offered by {capabilities.name}: {knob.reason}")
            widget.setProperty("offered", knob.offered)
        semantic_item = self.detection.model().item(self.detection.findData("semantic_vad"))
        if semantic_item is not None:
            semantic_item.setEnabled(capabilities.semantic_vad)
            semantic_item.setToolTip("" if capabilities.semantic_vad else
                                     f"{capabilities.name} has no semantic turn detection.")
        missing = [n for n, k in capabilities.knobs.items() if not k.offered]
        renamed = [capabilities.knob(n).label for n, _, _ in self._KNOB_WIDGETS if capabilities.knob(n).label]
        short = [f"Knobs of {capabilities.name}"]
        full = [f"The knobs as {capabilities.name} has them."]
        if renamed:
            short.append("renamed for what they do")
            full.append("Named for what they do there: " + ", ".join(renamed) + ".")
        if missing:
            short.append("greyed if absent")
            full.append("Not offered: " + ", ".join(n.replace("_ms", "").replace("_", " ") for n in missing) + ".")
        if not capabilities.live_session_update:
            full.append("Changes apply at the next session, which Parley opens at the next pause.")
        text = ", ".join(short) + (" (hover: why)." if len(short) > 1 else ".")
        if not capabilities.live_session_update:
            text += " Changes apply at the next session."
        self.provider_label.setText(text)
        self.provider_label.setToolTip(" ".join(full))
        # Nothing differs from the knobs as labelled (OpenAI's): no line.
        self.provider_label.setVisible(bool(renamed or missing or not capabilities.live_session_update))
        for n in range(self.profile.count()):  # the profiles as this provider's values
            key = self.profile.itemData(n)
            p = capabilities.profiles.get(key)
            if p is not None:
                name = _PROFILE_LABELS[key].split(" (")[0]
                self.profile.setItemText(n, f"{name} ({p.threshold:g} / {p.prefix_padding_ms} / {p.silence_duration_ms})")
        # A named profile means that profile on this provider: its values here (sent like any edit).
        s = self._settings
        own = capabilities.profiles.get(s.profile)
        if own is not None and (s.threshold, s.prefix_padding_ms, s.silence_duration_ms) != (
                own.threshold, own.prefix_padding_ms, own.silence_duration_ms):
            s = replace(s, threshold=own.threshold, prefix_padding_ms=own.prefix_padding_ms,
                        silence_duration_ms=own.silence_duration_ms)
            self.set_settings(s)
            self.changed.emit(s)
        self._enable_for_mode()

    def _offered(self, attr: str) -> bool:
        widget = getattr(self, attr)
        return widget.property("offered") is not False

    def _enable_for_mode(self) -> None:
        s = self._settings
        vad_mode = s.mode == "vad"
        semantic = s.detection == "semantic_vad"
        self.vad_box.setEnabled(True)
        for w in (self.profile, self.threshold, self.prefix, self.silence, self.idle):
            w.setEnabled(not semantic or not vad_mode)
        self.eagerness.setEnabled(vad_mode and semantic)
        for attr in ("threshold", "prefix", "silence", "idle", "eagerness", "interrupt_response"):
            if not self._offered(attr):
                getattr(self, attr).setEnabled(False)
        self.detection.setEnabled(vad_mode)
        # Show only what applies to the mode (the VAD values stay: leaving a manual mode restores them).
        self.rules_box.setVisible(vad_mode)
        self.rules_box.setEnabled(not semantic)
        self.semantic_box.setVisible(s.mode == "client_semantic")
        self.wake_box.setVisible(s.mode == "wake_word")
        self.vad_box.setTitle("Server turn detection" if vad_mode else "Voice activity values (used again when you leave this mode)")

    def _read(self) -> tt.TurnSettings:
        s = self._settings
        idle = self.idle.value()
        idle_ms = None if idle == 0 else min(30000, max(5000, idle))
        think_phrases = tt.parse_cue_list(self.think_phrases.text())
        rules = []
        for r in s.rules:
            if r.trigger == "user_said":
                r = replace(r, phrases=think_phrases, silence_ms=self.think_ms.value())
            elif r.trigger == "assistant_yes_no":
                r = replace(r, silence_ms=self.yes_no_ms.value())
            rules.append(r)
        return replace(
            s,
            mode=self.mode.currentData(),
            detection=self.detection.currentData(),
            threshold=round(self.threshold.value(), 2),
            prefix_padding_ms=self.prefix.value(),
            silence_duration_ms=self.silence.value(),
            idle_timeout_ms=idle_ms,
            create_response=self.create_response.isChecked(),
            interrupt_response=self.interrupt_response.isChecked(),
            eagerness=self.eagerness.currentData(),
            dynamic_rules=self.rules_box.isChecked(),
            rules=tuple(rules),
            completion_cues=tt.parse_cue_list(self.completion.text()) or s.completion_cues,
            hesitation_cues=tt.parse_cue_list(self.hesitation.text()),
            semantic_fallback_ms=self.fallback.value(),
            wake_phrase=" ".join(self.wake_phrase.text().lower().split()) or s.wake_phrase,
        )

    # ------------------------------------------------------------------ edits
    def _emit(self, s: tt.TurnSettings) -> None:
        if s == self._settings:
            return
        self._settings = s
        self._enable_for_mode()
        self.changed.emit(s)

    def _edited(self, *_args) -> None:
        if not self._loading:
            self._emit(self._read())

    def _text_edited(self) -> None:
        self._edited()

    def _value_edited(self, *_args) -> None:
        if self._loading:
            return
        s = self._read()
        s = replace(s, profile=self.capabilities.matching_profile(s.threshold, s.prefix_padding_ms,
                                                                   s.silence_duration_ms))
        self._loading = True
        self.profile.setCurrentIndex(self.profile.findData(s.profile))
        self._loading = False
        self._emit(s)

    def _profile_picked(self, *_args) -> None:
        if self._loading:
            return
        name = self.profile.currentData()
        s = self._read()
        s = s.with_profile(name) if name != "custom" else replace(s, profile="custom")
        own = self.capabilities.profiles.get(name)
        if own is not None:  # the provider's own values for this profile
            s = replace(s, threshold=own.threshold, prefix_padding_ms=own.prefix_padding_ms,
                        silence_duration_ms=own.silence_duration_ms)
        if s == self._settings:
            return
        self.set_settings(s)  # shows the profile's values (without emitting)
        self.changed.emit(s)

    # ------------------------------------------------------------------ server view
    def show_server(self, requested: TurnDetection, effective: TurnDetection | None, differences: tuple[str, ...]) -> None:
        if effective is None:
            self.server_label.setText("Server: not connected")
            return
        what = describe_turn_detection(effective)
        if isinstance(requested, ManualTurns) and isinstance(effective, ManualTurns):
            what += " (the client decides)"
        if differences:
            self.server_label.setText(
                f'<span style="color:#c62828"><b>Server uses:</b> {what}<br>differs: {"; ".join(differences)}</span>'
            )
            self.server_label.setProperty("differs", True)
        else:
            self.server_label.setText(f'<span style="color:#2e7d32"><b>Server confirmed:</b> {what}</span>')
            self.server_label.setProperty("differs", False)

    def set_detector(self, text: str) -> None:
        self.detector_label.setText(text)

    def append_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)
