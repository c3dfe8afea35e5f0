"""The Audio menu: microphone and speaker choice, echo handling, and local-voice barge-in. Choices persist."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from ..settings import Settings


KEY = "audio"
ECHO_MODES = (
    ("aec", "Echo cancellation (loudspeakers)"),
    ("gate", "Echo gate (half duplex)"),
    ("headset", "Headset (no echo handling)"),
)


class AudioMenu:
    def __init__(self, window, settings: Settings | None = None) -> None:
        self.window = window
        self.store = settings or Settings.shared()
        self.session = None
        self.menu: QMenu = window.menuBar().addMenu("&Audio")
        self.menu.setObjectName("audio_menu")
        self.input_menu = self.menu.addMenu("&Microphone")
        self.output_menu = self.menu.addMenu("&Speaker")
        self.input_menu.aboutToShow.connect(lambda: self._fill_devices(self.input_menu, "input"))
        self.output_menu.aboutToShow.connect(lambda: self._fill_devices(self.output_menu, "output"))
        self.menu.addSeparator()
        self.echo_group = QActionGroup(self.menu)
        self.echo_actions: dict[str, QAction] = {}
        for mode, label in ECHO_MODES:
            action = QAction(label, self.menu, checkable=True)
            action.setData(mode)
            action.triggered.connect(lambda checked, m=mode: self.set_echo_mode(m))
            self.echo_group.addAction(action)
            self.menu.addAction(action)
            self.echo_actions[mode] = action
        self.menu.addSeparator()
        self.local_vad_action = self._toggle(
            "Interrupt as soon as I speak (local voice detection)",
            "Parley listens on your microphone too and silences the answer the moment you start speaking, "
            "before the server has noticed; a cough or a click lets the answer go on.",
            self.set_local_barge_in,
        )
        self.hold_action = self._toggle(
            "Pause the answer at the first sound of my voice (fastest)",
            "A sudden rise in your microphone's level (not the assistant's echo) pauses the answer within ~20 ms, "
            "before voice detection can tell; if it was not speech the answer goes on from where it paused.",
            self.set_hold_on_onset,
        )
        self.cut_action = self._toggle(
            "Cut the speaker's buffer when I interrupt (~40 ms sooner)",
            "On an interruption the sound already queued in the speaker is dropped instead of played out: the "
            "voice stops within a few milliseconds, without a fade.",
            self.set_cut_speaker_buffer,
        )
        saved = self.saved()
        self.echo_actions.get(saved.get("echo_mode", "aec"), self.echo_actions["aec"]).setChecked(True)
        for action, key in ((self.local_vad_action, "local_barge_in"), (self.hold_action, "hold_on_onset"),
                            (self.cut_action, "cut_speaker_buffer")):
            action.blockSignals(True)  # showing the saved choice is not a change to save or apply
            action.setChecked(bool(saved.get(key, True)))
            action.blockSignals(False)
        self.hold_action.setEnabled(self.local_vad_action.isChecked())

    def _toggle(self, label: str, tip: str, slot) -> QAction:
        action = QAction(label, self.menu, checkable=True)
        action.setToolTip(tip)
        action.toggled.connect(slot)
        self.menu.addAction(action)
        return action

    # ------------------------------------------------------------------ persistence
    def saved(self) -> dict[str, Any]:
        value = self.store.get(KEY, {})
        return value if isinstance(value, dict) else {}

    def _save(self, **changes: Any) -> None:
        values = self.saved()
        values.update(changes)
        self.store.keep(KEY, values, "audio settings")

    def attach(self, session) -> None:
        """Give a session that has not started yet the saved choices (command-line choices win)."""
        from dataclasses import replace

        self.session = session
        saved = self.saved()
        options = session.options
        if options.input_device is None and saved.get("input_device"):
            options.input_device = saved["input_device"]
        if options.output_device is None and saved.get("output_device"):
            options.output_device = saved["output_device"]
        if saved.get("echo_mode") in dict(ECHO_MODES):
            options.echo_mode = saved["echo_mode"]
        enabled = bool(saved.get("local_barge_in", True))
        hold = bool(saved.get("hold_on_onset", True))
        options.local_barge_in = replace(options.local_barge_in, enabled=enabled, energy_onset=hold)
        options.cut_speaker_buffer = bool(saved.get("cut_speaker_buffer", options.cut_speaker_buffer))
        session.client.local_barge_in.configure(options.local_barge_in)

    # ------------------------------------------------------------------ devices
    def _fill_devices(self, menu: QMenu, kind: str) -> None:
        from ..audio import list_devices

        menu.clear()
        try:
            inputs, outputs = list_devices()
        except Exception as exc:  # PortAudio missing or broken: say so in the menu
            action = menu.addAction(f"No devices ({exc})")
            action.setEnabled(False)
            return
        names = inputs if kind == "input" else outputs
        current = (self.session.options.input_device if kind == "input" else self.session.options.output_device) if self.session else None
        group = QActionGroup(menu)
        for label, value in [("System default", None)] + [(n, n) for n in names]:
            action = QAction(label, menu, checkable=True)
            action.setChecked(value == current)
            action.triggered.connect(lambda checked, v=value, k=kind: self.choose_device(k, v))
            group.addAction(action)
            menu.addAction(action)
        if not names:
            empty = menu.addAction("No devices found")
            empty.setEnabled(False)

    def choose_device(self, kind: str, device: str | None) -> None:
        if kind == "input":
            self._save(input_device=device)
            if self.session is not None:
                self.session.set_input_device(device)
        else:
            self._save(output_device=device)
            if self.session is not None:
                self.session.set_output_device(device)

    def set_echo_mode(self, mode: str) -> None:
        self._save(echo_mode=mode)
        self.echo_actions[mode].setChecked(True)
        if self.session is not None:
            self.session.set_echo_mode(mode)

    def set_local_barge_in(self, enabled: bool) -> None:
        self._save(local_barge_in=bool(enabled))
        self.hold_action.setEnabled(bool(enabled))
        if self.session is not None:
            self.session.set_local_barge_in(bool(enabled))

    def set_hold_on_onset(self, enabled: bool) -> None:
        self._save(hold_on_onset=bool(enabled))
        if self.session is not None:
            self.session.set_hold_on_onset(bool(enabled))

    def set_cut_speaker_buffer(self, enabled: bool) -> None:
        self._save(cut_speaker_buffer=bool(enabled))
        if self.session is not None:
            self.session.options.cut_speaker_buffer = bool(enabled)
