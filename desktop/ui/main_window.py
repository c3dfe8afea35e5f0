"""Parley's main window: transcript, input level, turn state, a text box, and a status bar."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from ..core.actions import (
    BargeInHappened,
    ConversationCleared,
    ItemChanged,
    ItemRemoved,
    Notice,
    SessionChanged,
    SpeechBoundary,
    StateChanged,
    TurnState,
    UsageUpdated,
)
from ..core.session_config import describe_turn_detection
from ..core.usage import describe_usage
from ..session import ConnectionStatus, InputLevel, LiveSession, SessionTimeLeft, Timing
from ..settings import Settings
from .level_meter import LevelMeter
from .menus import menu_named
from .transcript_view import TranscriptView

log = logging.getLogger(__name__)

_STATE_STYLE = {
    TurnState.DISCONNECTED: ("Disconnected", "#9e9e9e"),
    TurnState.LISTENING: ("Listening", "#1565c0"),
    TurnState.USER_SPEAKING: ("You are speaking", "#6a1b9a"),
    TurnState.THINKING: ("Thinking…", "#ef6c00"),
    TurnState.ASSISTANT_SPEAKING: ("Assistant speaking", "#2e7d32"),
    TurnState.INTERRUPTED: ("Interrupted", "#c62828"),
}


LAYOUT_GEOMETRY_KEY = "window.geometry"
LAYOUT_STATE_KEY = "window.state"
#: How many points larger (or smaller) than normal the transcript's text is (View → Larger text).
TEXT_SIZE_KEY = "transcript.text_size"


class MainWindow(QMainWindow):
    #: Emitted with each notification the window handled (tests wait on it).
    notified = Signal(object)

    def __init__(self, parent: QWidget | None = None, settings: Settings | None = None, keep_layout: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Parley")
        self.resize(760, 560)
        self.session: LiveSession | None = None
        self.timings: dict[str, float] = {}
        self.notices: list[Notice] = []
        #: No microphone is capturing (none found, or it was unplugged): the state chip says so for as long
        #: as it lasts, instead of "Listening" (the notice about it goes away after a few seconds).
        self.microphone_missing = False
        self._state = TurnState.DISCONNECTED

        from ..core.conversation import Conversation

        self.transcript = TranscriptView(Conversation())

        self.state_label = QLabel()
        self.state_label.setAccessibleName("Turn state")
        self.state_label.setMinimumWidth(150)
        self.level_meter = LevelMeter()
        level_row = QHBoxLayout()
        level_row.addWidget(self.state_label)
        level_row.addWidget(QLabel("Mic"))
        level_row.addWidget(self.level_meter, 1)

        self.notice_label = QLabel()
        self.notice_label.setWordWrap(True)
        self.notice_label.setVisible(False)
        self.notice_label.setAccessibleName("Notice")
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(lambda: self.notice_label.setVisible(False))

        self.text_input = QLineEdit()
        self.text_input.setPlaceholderText("Type a message and press Enter…")
        self.text_input.setAccessibleName("Message")
        self.text_input.returnPressed.connect(self._send_text)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self._send_text)
        self.stop_button = QPushButton("Stop answer")
        self.stop_button.setToolTip("Stop the assistant's answer (Ctrl+.)")
        self.stop_button.clicked.connect(self._stop_answer)
        input_row = QHBoxLayout()
        input_row.addWidget(self.text_input, 1)
        input_row.addWidget(self.send_button)
        input_row.addWidget(self.stop_button)
        self.again_button = QPushButton("Answer again")
        self.again_button.setToolTip("Replace the last answer with a new one, e.g. after changing the instructions "
                                     "or the voice (Ctrl+Shift+A)")
        self.again_button.clicked.connect(self._answer_again)
        input_row.addWidget(self.again_button)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.notice_label)
        layout.addLayout(level_row)
        layout.addLayout(input_row)
        self.setCentralWidget(central)

        self.connection_label = QLabel("Starting…")
        self.connection_label.setAccessibleName("Connection")
        self.turn_label = QLabel()
        self.devices_label = QLabel()
        self.devices_label.setAccessibleName("Audio devices")
        status = QStatusBar()
        status.addWidget(self.connection_label, 1)
        #: The voice latency of this conversation's spoken answers: median, with the spread in the tooltip.
        self.latency_label = QLabel()
        self.latency_label.setAccessibleName("Voice latency")
        status.addPermanentWidget(self.latency_label)
        self._latencies: tuple[int, ...] = ()
        #: Tokens the answers have used so far (response.done's usage), summed over the conversation.
        self.usage_label = QLabel()
        self.usage_label.setAccessibleName("Token usage")
        status.addPermanentWidget(self.usage_label)
        #: What they cost in dollars (`price_dialog.CostUi`: the price table, the budget).
        self.cost_label = QLabel()
        self.cost_label.setAccessibleName("Conversation cost")
        status.addPermanentWidget(self.cost_label)
        #: How long the provider lets this server session last (OpenAI: 60 min); Parley renews it before then.
        self.session_time_label = QLabel()
        self.session_time_label.setAccessibleName("Session time left")
        status.addPermanentWidget(self.session_time_label)
        status.addPermanentWidget(self.turn_label)
        status.addPermanentWidget(self.devices_label)
        self.setStatusBar(status)

        stop = QAction("Stop answer", self)
        stop.setShortcut(QKeySequence("Ctrl+."))
        stop.triggered.connect(self._stop_answer)
        self.addAction(stop)
        self.again_action = QAction("Answer again", self)
        self.again_action.setShortcut(QKeySequence("Ctrl+Shift+A"))
        self.again_action.triggered.connect(self._answer_again)
        self.addAction(self.again_action)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))  # the standard key is unbound on some platforms (offscreen, Windows)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)
        self.save_action = QAction("Save transcript…", self)
        self.save_action.setShortcut(QKeySequence("Ctrl+S"))
        self.save_action.setToolTip("Save the conversation as Markdown: both sides, with interruptions marked")
        self.save_action.triggered.connect(self._choose_transcript_file)
        self.addAction(self.save_action)
        self.new_action = QAction("New conversation", self)
        self.new_action.setShortcut(QKeySequence("Ctrl+N"))
        self.new_action.setToolTip("Start over: a fresh session that remembers nothing of this conversation "
                                   "(which stays saved). Your instructions, voice, tools and turn settings are kept.")
        self.new_action.triggered.connect(self.new_conversation)
        self.addAction(self.new_action)
        self.mute_action = QAction("Mute microphone", self)
        self.mute_action.setCheckable(True)
        self.mute_action.setShortcut(QKeySequence("Ctrl+M"))
        self.mute_action.setToolTip("Send silence instead of your microphone until you unmute (Ctrl+M again)")
        self.mute_action.toggled.connect(self.set_muted)
        self.addAction(self.mute_action)
        file_menu = menu_named(self, "&File")  # made first, so it leads the menu bar
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.save_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        self._show_state(TurnState.DISCONNECTED)
        from .turn_ui import TurnUi

        #: Turn detection: the settings dock, the waveform, push-to-talk (Space) and Esc to discard.
        self.turn_ui = TurnUi(self)
        from .agent_dock import AgentUi

        #: Instructions, voice, speaking speed, noise reduction (Ctrl+I), applied live and persisted.
        self.agent_ui = AgentUi(self, settings)
        # Images: toolbar (attach, paste, what's on my screen), drop/paste handling, Ctrl+Shift+S, thumbnails.
        from .attachments import install as install_attachments

        self.attachments = install_attachments(self)
        from .audio_menu import AudioMenu

        #: Microphone / speaker choice, echo handling, local-voice barge-in (persisted).
        self.audio_menu = AudioMenu(self)
        first = self.audio_menu.menu.actions()[0]
        self.audio_menu.menu.insertAction(first, self.mute_action)
        self.audio_menu.menu.insertSeparator(first)
        from .file_voice_ui import FileVoiceUi

        #: Audio → Speak a sound file (Ctrl+Shift+P, again: Ctrl+P): a recorded utterance as your voice.
        self.file_voice_ui = FileVoiceUi(self, settings)
        from .compare_ui import CompareUi

        #: Audio → Compare providers on a series… (Ctrl+Shift+C).
        self.compare_ui = CompareUi(self, self.file_voice_ui, settings)
        from .noise_menu import NoiseMenu

        #: Audio → Background noise (simulated): a noisy room mixed into the microphone (persisted).
        self.noise_menu = NoiseMenu(self, settings)
        from .turn_menu import add_turn_actions

        #: Right-click a turn: copy it, speak it again, keep it as a sound file, delete it from the conversation.
        self.transcript.turn_actions = lambda item, menu: add_turn_actions(self, item, menu)
        from .reliability_ui import ReliabilityUi

        #: Connection banner (reconnecting, Retry), event inspector (Ctrl+Shift+E), API key, saved transcript.
        self.reliability_ui = ReliabilityUi(self)
        from .price_dialog import CostUi

        #: The conversation's cost in the status bar, Connection → Prices and budget…, the budget's mute.
        self.cost_ui = CostUi(self, settings)
        from .brain_menu import BrainMenu

        #: Connection → Offline brain: the engine's rules or a local model found on this computer.
        self.brain_menu = BrainMenu(self)
        from .provider_menu import ProviderMenu

        #: Connection → Provider: OpenAI, Azure OpenAI, Gemini Live, an OpenAI-compatible server, the offline engine.
        self.provider_menu = ProviderMenu(self, settings)
        from .recording_ui import RecordingUi

        #: File → Record audio (Ctrl+Shift+R): both sides into a stereo WAV.
        self.recording_ui = RecordingUi(self)
        from .help_menu import HelpMenu

        #: Help: keyboard shortcuts (F1), About Parley (version, licence, third-party notices).
        self.help_menu = HelpMenu(self)
        #: Where the window's size and position and its docks' layout are kept between runs (keep_layout=False:
        #: neither read nor written, for the self-test and benchmarks, which must not resize the user's window).
        self.layout_store = settings or Settings.shared()
        self._add_text_size_actions()
        self.keep_layout = keep_layout
        if keep_layout:
            self._restore_layout()

    # ------------------------------------------------------------------ transcript text size (demos on a projector)
    def _add_text_size_actions(self) -> None:
        view = menu_named(self, "&View")
        view.addSeparator()
        for text, keys, step in (("Larger text", ("Ctrl++", "Ctrl+="), 1), ("Smaller text", ("Ctrl+-",), -1),
                                 ("Normal text size", ("Ctrl+0",), 0)):
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.triggered.connect(lambda _checked=False, s=step: self.change_text_size(s))
            view.addAction(action)
            self.addAction(action)
        saved = self.layout_store.get(TEXT_SIZE_KEY, 0)
        self._text_steps = 0
        if isinstance(saved, int) and not isinstance(saved, bool) and saved:
            self.change_text_size(max(-4, min(12, saved)), save=False)

    def change_text_size(self, step: int, save: bool = True) -> None:
        """The transcript's text `step` points larger (0: back to normal); kept for the next start."""
        steps = 0 if step == 0 else max(-4, min(12, self._text_steps + step))
        delta = steps - self._text_steps
        if delta > 0:
            self.transcript.zoomIn(delta)
        elif delta < 0:
            self.transcript.zoomOut(-delta)
        self._text_steps = steps
        if save:
            self.layout_store.set(TEXT_SIZE_KEY, steps)
            try:
                self.layout_store.save()
            except OSError as exc:  # a read-only config directory: the size still changes now
                log.warning("could not save the text size: %s", exc)

    # ------------------------------------------------------------------ window layout, kept between runs
    def _restore_layout(self) -> None:
        """Size, position, and which docks are shown where and how big, as the window was last closed."""
        for key, restore in ((LAYOUT_GEOMETRY_KEY, self.restoreGeometry), (LAYOUT_STATE_KEY, self.restoreState)):
            saved = self.layout_store.get(key)
            if not isinstance(saved, str):
                continue
            if not restore(QByteArray.fromBase64(saved.encode("ascii", "replace"))):
                log.info("the saved window layout (%s) could not be used; keeping the default", key)

    def save_layout(self) -> None:
        self.layout_store.set(LAYOUT_GEOMETRY_KEY, bytes(self.saveGeometry().toBase64()).decode("ascii"))
        self.layout_store.set(LAYOUT_STATE_KEY, bytes(self.saveState().toBase64()).decode("ascii"))
        try:
            self.layout_store.save()
        except OSError as exc:  # a read-only config directory must not stop the app from closing
            log.warning("could not save the window layout to %s: %s", self.layout_store.path, exc)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if self.keep_layout and self.isVisible():  # by the user or at quit; closing a hidden window changes nothing
            self.save_layout()
        super().closeEvent(event)

    # ------------------------------------------------------------------ wiring
    def attach(self, session: LiveSession) -> None:
        self.session = session
        self.audio_menu.attach(session)
        self.transcript.set_conversation(session.client.conversation)
        session.subscribe(self.on_notification)
        self.turn_ui.attach(session)
        self.agent_ui.attach(session)
        self.recording_ui.attach(session)
        self.file_voice_ui.attach(session)
        self.compare_ui.attach(session)
        self.noise_menu.attach(session)
        self.reliability_ui.attach(session)
        self.cost_ui.attach(session)
        self.brain_menu.attach(session)
        self.provider_menu.attach(session)

    def on_notification(self, note: Any) -> None:
        if isinstance(note, InputLevel):
            self.level_meter.set_level(note.dbfs)
            return
        if isinstance(note, (ItemChanged, ItemRemoved)):
            self.transcript.schedule_render()
            self._show_reply_latency()
        elif isinstance(note, StateChanged):
            self._show_state(note.state)
        elif isinstance(note, ConnectionStatus):
            self._show_connection(note)
        elif isinstance(note, SessionChanged):
            self._show_session(note)
        elif isinstance(note, ConversationCleared):
            self.transcript.schedule_render()
            self._show_reply_latency()
            self.notice_label.setVisible(False)
        elif isinstance(note, UsageUpdated):
            total = note.total
            self.usage_label.setText(f"tokens {describe_usage(total, short=True)}" if total.total else "")
            self.usage_label.setToolTip(f"Token usage of {total.responses} response{'s' if total.responses != 1 else ''} "
                                        f"in this conversation: {describe_usage(total)}")
        elif isinstance(note, Notice):
            self._show_notice(note)
        elif isinstance(note, SessionTimeLeft):
            self._show_session_time(note)
        elif isinstance(note, Timing):
            self.timings[note.name] = note.seconds
            log.info("timing %s: %.0f ms", note.name, note.seconds * 1000)
        elif isinstance(note, BargeInHappened):
            log.info("barge-in: heard %d of %d ms of %s", note.heard_ms, note.received_ms, note.item_id)
        elif isinstance(note, SpeechBoundary):
            pass
        self.notified.emit(note)

    # ------------------------------------------------------------------ rendering
    def _show_state(self, state: TurnState) -> None:
        self._state = state
        text, color = _STATE_STYLE[state]
        tip = ""
        if state == TurnState.LISTENING and self.microphone_missing:
            text, color = "No microphone", "#ef6c00"
            tip = "No microphone is capturing: type below. Parley listens again once a microphone is connected."
        elif state == TurnState.LISTENING and self.session is not None and self.session.muted:
            text, color = "Muted", "#c62828"
            tip = "Your microphone is muted: the model hears silence. Ctrl+M unmutes."
        self.state_label.setText(f'<b style="color:{color}">● {text}</b>')
        self.state_label.setToolTip(tip)
        self.state_label.setProperty("turn_state", state.value)

    def _show_session_time(self, note: SessionTimeLeft) -> None:
        if note.seconds is None:
            self.session_time_label.setText("")
            self.session_time_label.setToolTip("")
            return
        left = max(0, int(note.seconds))
        text = f"{left // 60} min left" if left >= 300 else f"{left // 60}:{left % 60:02d} left"
        self.session_time_label.setText(f"session {text}")
        limit = f"after {note.limit_s / 60:.0f} minutes" if note.limit_s else "soon"
        self.session_time_label.setToolTip(
            f"The provider ends a session {limit}. Before then Parley opens the next one at a pause in the "
            "conversation and carries the conversation over: nothing you say is lost.")

    def _show_connection(self, status: ConnectionStatus) -> None:
        phase_text = {
            "starting engine": f"Starting the {status.provider}…",
            "connecting": f"Connecting to {status.provider}…",
            "connected": f"Connected to {status.provider}",
            "reconnecting": f"Reconnecting to {status.provider}…",
            "disconnected": f"Disconnected from {status.provider}",
            "failed": f"Could not connect to {status.provider}",
        }.get(status.phase, status.phase)
        if status.detail and status.phase in ("disconnected", "failed", "reconnecting"):
            phase_text += f": {status.detail}"
        self.connection_label.setText(phase_text)
        # Which model this window talks to, in the title: builders compare two windows side by side.
        self.setWindowTitle(f"Parley — {status.provider}")
        if status.devices is not None:
            self.devices_label.setText(status.devices.summary)
            self.devices_label.setToolTip("\n".join(status.devices.problems) or "Audio devices found")
            missing = status.devices.input_name is None
            if missing != self.microphone_missing:
                self.microphone_missing = missing
                self._show_state(self._state)
        if status.phase == "failed":
            self._show_notice(Notice("error", phase_text))

    def _show_session(self, note: SessionChanged) -> None:
        if self.session is None or self.session.client.effective is None:
            return
        td = self.session.client.effective.turn_detection
        self.turn_label.setText(describe_turn_detection(td))
        if note.differences:
            self._show_notice(Notice("warning", "The server kept different settings: " + "; ".join(note.differences)))

    def _show_notice(self, note: Notice) -> None:
        self.notices.append(note)
        color = {"error": "#c62828", "warning": "#ef6c00"}.get(note.level, "#455a64")
        code = f" [{note.code}]" if note.code else ""
        self.notice_label.setText(f'<span style="color:{color}">{note.message}{code}</span>')
        self.notice_label.setVisible(True)
        self._notice_timer.start(12000 if note.level == "error" else 6000)
        getattr(log, "error" if note.level == "error" else "warning" if note.level == "warning" else "info")(
            "%s%s", note.message, code
        )

    # ------------------------------------------------------------------ user intent
    def _send_text(self) -> None:
        text = self.text_input.text().strip()
        if not text or self.session is None:
            return
        if self.session.send_text(text):  # refused (not connected, too many waiting): the text stays
            self.text_input.clear()

    def save_transcript(self, path: str | Path) -> bool:
        """Write the conversation as Markdown to `path`; a notice says where, or why it could not."""
        from ..transcript_export import conversation_markdown

        provider = self.session.options.provider.label if self.session is not None else "not connected"
        text = conversation_markdown(self.transcript.conversation, provider, prices=self.cost_ui.table,
                                     model=self.cost_ui.model_of(None))
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            self._show_notice(Notice("error", f"Could not save the transcript to {path}: {exc.strerror or exc}"))
            return False
        self._show_notice(Notice("info", f"Transcript saved to {path}"))
        return True

    def _show_reply_latency(self) -> None:
        """"voice 640 ms" in the status bar: the median time from the end of a spoken turn to the answer's voice."""
        if self.session is None:
            return
        values = tuple(i.reply_latency_ms for i in self.session.client.conversation if i.reply_latency_ms is not None)
        if values == self._latencies:
            return
        self._latencies = values
        if not values:
            self.latency_label.setText("")
            self.latency_label.setToolTip("")
            return
        import statistics

        ordered = sorted(values)
        median = round(statistics.median(ordered))
        self.latency_label.setText(f"voice {median} ms")
        self.latency_label.setToolTip(f"From the end of your spoken turn to the answer's first audio, over {len(values)} "
                                      f"answer{'s' if len(values) != 1 else ''}: median {median} ms, fastest {ordered[0]} ms, "
                                      f"slowest {ordered[-1]} ms. The silence setting's own wait comes before this.")

    def set_muted(self, muted: bool) -> None:
        """Audio → Mute microphone (Ctrl+M)."""
        if self.session is None:
            return
        self.session.muted = muted
        self.mute_action.setChecked(muted)
        self._show_state(self._state)
        self._show_notice(Notice("info", "Microphone muted: the model hears silence. Ctrl+M unmutes." if muted
                                 else "Microphone on."))

    def new_conversation(self) -> None:
        """File → New conversation (Ctrl+N)."""
        if self.session is None:
            return
        import asyncio

        asyncio.ensure_future(self.session.new_conversation())

    def _choose_transcript_file(self) -> None:
        from datetime import datetime

        from PySide6.QtCore import QStandardPaths
        from PySide6.QtWidgets import QFileDialog

        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
        name = f"Parley conversation {datetime.now():%Y-%m-%d %H-%M}.md"
        path, _ = QFileDialog.getSaveFileName(self, "Save transcript", str(Path(folder) / name),
                                              "Markdown (*.md);;Text (*.txt)")
        if path:
            self.save_transcript(path)

    def _answer_again(self) -> None:
        if self.session is not None:
            self.session.answer_again()

    def _stop_answer(self) -> None:
        if self.session is not None:
            self.session.cancel_response()

    def transcript_text(self) -> str:
        self.transcript.render_now()
        return self.transcript.plain_text()
