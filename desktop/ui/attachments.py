"""Images into the conversation from the window: attach button, drag-and-drop, paste, "what's on my screen".

Every source goes through the one pipeline (`desktop.media.image_pipeline`) on a worker thread; the result comes
back to the UI thread by a queued signal and is sent with `LiveSession.send_content` as one user message: the
`input_image` parts, then the typed question (the text box's contents) as `input_text`, then `response.create`.
Anything that goes wrong — a damaged or huge file, a non-image, a file that vanished, an empty clipboard, a failed
screen grab — becomes a message in the window, and nothing is sent.

`install(window)` adds the toolbar, the shortcuts (Ctrl+O attach, Ctrl+V paste, Ctrl+Shift+S screen) and the
drop handling to a `MainWindow`; the settings (size limit, high detail, prompt, capture target, hide during grab)
persist in QSettings.
"""

from __future__ import annotations

import itertools
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QObject, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QClipboard, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QToolBar, QToolButton

from ..core.actions import Notice
from ..core.conversation import ImageInfo
from ..core.events import text_part
from ..media import screen_capture
from ..media.image_pipeline import (
    FORMATS_TEXT,
    SUPPORTED_SUFFIXES,
    ImageError,
    PipelineSettings,
    PreparedImage,
    prepare_bytes,
    prepare_file,
)
from ..media.screen_capture import CaptureError, CaptureTarget
from .file_voice_ui import is_sound_file as _is_sound_file

if TYPE_CHECKING:
    from .main_window import MainWindow

log = logging.getLogger(__name__)

DEFAULT_SCREEN_PROMPT = "What's on my screen?"
SCREEN_SHORTCUT = "Ctrl+Shift+S"
IMAGE_SCHEME = "parley-image"
#: How long the window stays hidden before the grab, so the desktop can repaint what was under it.
HIDE_SETTLE_MS = 250
THUMBNAIL_HEIGHT = 96
_SIDE_CHOICES = (768, 1024, 1536, 2048)
#: One message's images: at most this many, and this many encoded bytes (base64 adds a third; the engine accepts
#: 32 MiB messages, OpenAI documents no limit and large messages have failed silently).
MAX_IMAGES_PER_MESSAGE = 10
MAX_MESSAGE_IMAGE_BYTES = 12 * 1024 * 1024


# ------------------------------------------------------------------------------------------------ the store
class ImageStore:
    """The images sent in this run, by key: the transcript's thumbnails and the viewer read them from here.

    The transcript keeps only `ImageInfo` (size, never pixels); the store maps each `ImageInfo` object it made
    to its encoded bytes. It holds the info objects, so their ids stay unique.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[ImageInfo, PreparedImage]] = {}
        self._key_of: dict[int, str] = {}
        self._thumbs: dict[str, QImage] = {}
        self._counter = itertools.count(1)

    def add(self, image: PreparedImage) -> ImageInfo:
        info = image.info()
        key = f"{IMAGE_SCHEME}:{next(self._counter)}"
        self._by_key[key] = (info, image)
        self._key_of[id(info)] = key
        return info

    def key_for(self, info: ImageInfo) -> str | None:
        return self._key_of.get(id(info))

    def image(self, key: str) -> PreparedImage | None:
        entry = self._by_key.get(key)
        return entry[1] if entry else None

    def full(self, key: str) -> QImage | None:
        image = self.image(key)
        if image is None:
            return None
        q = QImage.fromData(QByteArray(image.data))
        return None if q.isNull() else q

    def thumbnail(self, key: str) -> QImage | None:
        if key not in self._thumbs:
            full = self.full(key)
            if full is None:
                return None
            self._thumbs[key] = full.scaledToHeight(min(THUMBNAIL_HEIGHT, full.height()), Qt.TransformationMode.SmoothTransformation)
        return self._thumbs[key]

    def __len__(self) -> int:
        return len(self._by_key)


# ------------------------------------------------------------------------------------------------ settings
@dataclass
class ImageSettings:
    max_side: int = 1024
    high_detail: bool = False
    jpeg_quality: int = 80
    screen_prompt: str = DEFAULT_SCREEN_PROMPT
    #: "cursor" | "all" | "window" | "monitor:N"
    capture_target: str = "cursor"
    hide_during_grab: bool = True

    @classmethod
    def load(cls) -> "ImageSettings":
        q = QSettings("Parley", "Parley")
        s = cls()
        try:
            s.max_side = int(q.value("images/max_side", s.max_side))
            s.high_detail = str(q.value("images/high_detail", s.high_detail)).lower() in ("true", "1")
            s.jpeg_quality = int(q.value("images/jpeg_quality", s.jpeg_quality))
            s.screen_prompt = str(q.value("images/screen_prompt", s.screen_prompt)) or DEFAULT_SCREEN_PROMPT
            s.capture_target = str(q.value("images/capture_target", s.capture_target))
            s.hide_during_grab = str(q.value("images/hide_during_grab", s.hide_during_grab)).lower() in ("true", "1")
        except (TypeError, ValueError) as exc:
            log.warning("image settings unreadable, using defaults: %s", exc)
            return cls()
        return s

    def save(self) -> None:
        q = QSettings("Parley", "Parley")
        for name in ("max_side", "high_detail", "jpeg_quality", "screen_prompt", "capture_target", "hide_during_grab"):
            q.setValue(f"images/{name}", getattr(self, name))
        q.sync()

    def pipeline(self) -> PipelineSettings:
        return PipelineSettings(max_side=self.max_side, high_detail=self.high_detail, jpeg_quality=self.jpeg_quality)

    def target(self) -> CaptureTarget:
        kind = self.capture_target
        if kind.startswith("monitor:"):
            try:
                return CaptureTarget("monitor", monitor=int(kind.split(":", 1)[1]))
            except ValueError:
                return CaptureTarget()
        return CaptureTarget(kind if kind in ("cursor", "all", "window") else "cursor")


# ------------------------------------------------------------------------------------------------ the work
@dataclass
class Batch:
    """One user action's images: what was prepared, what failed, and the question to send along."""

    origin: str
    question: str
    images: list[PreparedImage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Run on the UI thread before the result is handled (show the window again after a grab).
    after: Callable[[], None] | None = None
    #: A raw screen grab waiting for the user to drag a region of it.
    grab: Any = None


def prepare_paths(paths: list[str], settings: PipelineSettings) -> tuple[list[PreparedImage], list[str]]:
    images: list[PreparedImage] = []
    errors: list[str] = []
    for path in paths:
        try:
            images.append(prepare_file(path, settings))
        except ImageError as exc:
            errors.append(str(exc))
        except Exception as exc:  # a Pillow plugin bug must not take the app down: report it
            log.exception("image pipeline failed on %s", path)
            errors.append(f"“{os.path.basename(path)}” could not be read ({type(exc).__name__}: {exc}).")
    return images, errors


def _limit_message_size(batch: Batch) -> None:
    kept: list[PreparedImage] = []
    total = 0
    for image in batch.images:
        if len(kept) >= MAX_IMAGES_PER_MESSAGE or total + image.byte_count > MAX_MESSAGE_IMAGE_BYTES:
            batch.errors.append(
                f"“{image.source}” was not sent: one message carries at most {MAX_IMAGES_PER_MESSAGE} images "
                f"and {MAX_MESSAGE_IMAGE_BYTES // 2**20} MB; send it on its own."
            )
            continue
        kept.append(image)
        total += image.byte_count
    batch.images = kept


def qimage_to_png(image: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    # Fast PNG (quality 100 = least compression in Qt): the pipeline re-encodes anyway.
    image.save(buf, "PNG", 100)
    buf.close()
    return bytes(data.data())


class AttachmentController(QObject):
    """Owns the image features of one window."""

    #: (Batch) from a worker thread: handled on the UI thread.
    _prepared = Signal(object)
    #: Emitted after a batch was handled (sent, or refused with messages); tests wait on it.
    finished = Signal(object)
    #: The system-wide hotkey was pressed (emitted from the hotkey's thread).
    global_pressed = Signal()
    #: The desktop portal answered the system-wide hotkey's request: the new status sentence (from its thread).
    global_status = Signal(str)

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.settings = ImageSettings.load()
        self.store = ImageStore()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="parley-images")
        self._prepared.connect(self._on_prepared, Qt.ConnectionType.QueuedConnection)
        self.global_pressed.connect(lambda: self.capture_screen(), Qt.ConnectionType.QueuedConnection)
        self.global_status.connect(self._set_hotkey_status, Qt.ConnectionType.QueuedConnection)
        self._busy = 0
        self.global_hotkey_status = "System-wide hotkey: not available"
        self._hotkey = None
        window.destroyed.connect(lambda *_: self._pool.shutdown(wait=False, cancel_futures=True))

    # -------------------------------------------------------------------------------- entry points
    def choose_files(self) -> None:
        patterns = " ".join(f"*{s}" for s in SUPPORTED_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Attach images", "", f"Images ({patterns});;All files (*)")
        if paths:
            self.attach_paths(paths, "attach")

    def attach_paths(self, paths: list[str], origin: str = "drop") -> None:
        question = self._take_question()
        settings = self.settings.pipeline()

        def work() -> Batch:
            images, errors = prepare_paths(paths, settings)
            return Batch(origin, question, images, errors)

        self._run(work, f"Preparing {len(paths)} image{'s' if len(paths) != 1 else ''}…")

    def attach_qimage(self, image: QImage, origin: str = "clipboard") -> None:
        question = self._take_question()
        settings = self.settings.pipeline()
        image = image.copy()  # our own copy for the worker thread (QImage is reentrant)

        def work() -> Batch:
            batch = Batch(origin, question)
            try:
                if image.isNull() or image.width() == 0 or image.height() == 0:
                    raise ImageError(f"The {origin} image is empty.")
                batch.images.append(prepare_bytes(qimage_to_png(image), origin, settings, screenshot=True))
            except ImageError as exc:
                batch.errors.append(str(exc))
            return batch

        self._run(work, "Preparing the pasted image…")

    def paste(self) -> bool:
        """Paste an image (or image files) from the clipboard. False when the clipboard holds neither."""
        mime = QGuiApplication.clipboard().mimeData(QClipboard.Mode.Clipboard)
        if mime is not None and mime.hasImage():
            image = QImage(mime.imageData())
            if not image.isNull():
                self.attach_qimage(image, "clipboard")
                return True
        if mime is not None and mime.hasUrls():
            paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if paths:
                self.attach_paths(paths, "paste")
                return True
        return False

    def paste_or_explain(self) -> None:
        if not self.paste():
            self._notify("warning", "The clipboard has no image to paste. Copy an image (or an image file) first.")

    def capture_screen(self, target: CaptureTarget | None = None, prompt: str | None = None) -> None:
        """ "What's on my screen?": grab (hiding the window first if so set), then send with the prompt."""
        target = target or self.settings.target()
        question = self._take_question() or (prompt if prompt is not None else self.settings.screen_prompt)
        reason = screen_capture.unavailable_reason()
        if reason:
            self._notify("error", reason)
            self.finished.emit(Batch("screen", question, errors=[reason]))
            return
        if target.kind == "cursor" and target.point is None:
            pos = self._cursor_pixels()
            target = CaptureTarget("cursor", point=pos) if pos else target
        settings = self.settings.pipeline()
        hide = self.settings.hide_during_grab and self.window.isVisible() and QGuiApplication.platformName() not in ("offscreen", "minimal")

        def work() -> Batch:
            batch = Batch("screen", question)
            try:
                batch.images.append(screen_capture.capture_prepared(target, settings))
            except (CaptureError, ImageError) as exc:
                batch.errors.append(str(exc))
            return batch

        if hide:
            self.window.hide()

            def grab_then_show() -> None:
                self._run(work, "Capturing the screen…", after=self._show_window_again)

            QTimer.singleShot(HIDE_SETTLE_MS, grab_then_show)
        else:
            self._run(work, "Capturing the screen…")

    def capture_region(self) -> None:
        """Grab all screens, let the user drag a region of the grab, send that region."""
        question = self._take_question() or self.settings.screen_prompt
        reason = screen_capture.unavailable_reason()
        if reason:
            self._notify("error", reason)
            self.finished.emit(Batch("region", question, errors=[reason]))
            return
        hide = self.settings.hide_during_grab and self.window.isVisible() and QGuiApplication.platformName() not in ("offscreen", "minimal")

        def work() -> Batch:
            batch = Batch("region", question)
            try:
                batch.grab = screen_capture.capture(CaptureTarget("all"))
            except CaptureError as exc:
                batch.errors.append(str(exc))
            return batch

        if hide:
            self.window.hide()
            QTimer.singleShot(HIDE_SETTLE_MS, lambda: self._run(work, "Capturing the screen…"))
        else:
            self._run(work, "Capturing the screen…")

    def _choose_region(self, batch: Batch) -> None:
        from .region_selector import RegionSelector

        grab = batch.grab
        image = QImage(bytes(grab.bgra), grab.width, grab.height, grab.width * 4, QImage.Format.Format_RGB32).copy()
        screen = QGuiApplication.primaryScreen()
        geometry = screen.virtualGeometry() if screen is not None else image.rect()
        selector = RegionSelector(image, geometry)
        self.region_selector = selector
        settings = self.settings.pipeline()

        def chosen(region: tuple[int, int, int, int]) -> None:
            if self.settings.hide_during_grab:
                self._show_window_again()

            def work() -> Batch:
                from PIL import Image

                from ..media.image_pipeline import prepare_pil

                out = Batch("region", batch.question)
                left, top, width, height = region
                try:
                    full = Image.frombuffer("RGB", (grab.width, grab.height), grab.bgra, "raw", "BGRX", 0, 1)
                    out.images.append(prepare_pil(full.crop((left, top, left + width, top + height)), "a screen region", settings, screenshot=True))
                except ImageError as exc:
                    out.errors.append(str(exc))
                return out

            self._run(work, "Preparing the region…")

        def cancelled() -> None:
            self._show_window_again()
            self.window.statusBar().showMessage("Region capture cancelled: nothing was sent.", 4000)
            self.finished.emit(Batch("region", batch.question))

        selector.selected.connect(chosen)
        selector.cancelled.connect(cancelled)
        selector.show()
        selector.activateWindow()
        self.finished.emit(batch)

    def _show_window_again(self) -> None:
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def _cursor_pixels(self) -> tuple[int, int] | None:
        from PySide6.QtGui import QCursor

        if QGuiApplication.platformName() in ("offscreen", "minimal"):
            return None
        pos = QCursor.pos()
        screen = QGuiApplication.screenAt(pos)
        ratio = screen.devicePixelRatio() if screen else 1.0
        return int(pos.x() * ratio), int(pos.y() * ratio)

    # -------------------------------------------------------------------------------- plumbing
    def _take_question(self) -> str:
        """The typed question to send along. The box is cleared only once the message is sent (nothing is lost)."""
        return self.window.text_input.text().strip()

    def _run(self, work: Callable[[], Batch], status: str, after: Callable[[], None] | None = None) -> None:
        self._busy += 1
        self.window.statusBar().showMessage(status, 5000)

        def job() -> None:
            try:
                batch = work()
            except Exception as exc:  # never lose the error in the thread
                log.exception("image work failed")
                batch = Batch("image", "", errors=[f"The image could not be prepared ({type(exc).__name__}: {exc})."])
            batch.after = after
            self._prepared.emit(batch)

        self._pool.submit(job)

    def _on_prepared(self, batch: Batch) -> None:
        self._busy -= 1
        after = batch.after
        if after is not None:
            after()
        self.window.statusBar().clearMessage()
        if batch.grab is not None and not batch.errors:
            self._choose_region(batch)
            return
        if batch.origin == "region" and batch.errors and not self.window.isVisible():
            self._show_window_again()
        _limit_message_size(batch)
        if batch.errors:
            sent_note = ""
            if batch.images:
                sent_note = f" Sent the other {len(batch.images)}." if len(batch.errors) else ""
            self._notify("error", " ".join(batch.errors) + sent_note)
        if batch.images:
            self.send(batch)
        self.finished.emit(batch)

    def send(self, batch: Batch) -> None:
        session = self.window.session
        if session is None:
            self._notify("warning", "Not connected: the image was not sent.")
            return
        infos = [self.store.add(image) for image in batch.images]
        content: list[dict[str, Any]] = [image.content_part() for image in batch.images]
        if batch.question:
            content.append(text_part(batch.question))
        log.info("sending %d image(s) from %s: %s", len(infos), batch.origin, "; ".join(i.describe() for i in batch.images))
        accepted = session.send_content(content, images=infos)  # sent, or kept for the reconnect
        if accepted and batch.question and self.window.text_input.text().strip() == batch.question:
            self.window.text_input.clear()
        self.window.transcript.schedule_render()

    def _notify(self, level: str, message: str) -> None:
        self.window.on_notification(Notice(level, message))

    @property
    def busy(self) -> bool:
        return self._busy > 0

    # -------------------------------------------------------------------------------- drag and drop, paste keys
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            mime = event.mimeData()
            if mime is not None and (mime.hasUrls() or mime.hasImage()):
                event.setDropAction(Qt.DropAction.CopyAction)
                event.accept()
                return True
        elif kind == QEvent.Type.Drop:
            mime = event.mimeData()
            if mime is not None and (mime.hasUrls() or mime.hasImage()):
                event.setDropAction(Qt.DropAction.CopyAction)
                event.accept()
                self.handle_drop(mime)
                return True
        elif kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and obj is self.window.text_input:
            if event.matches(QKeySequence.StandardKey.Paste):
                mime = QGuiApplication.clipboard().mimeData()
                has_text = mime is not None and mime.hasText() and not mime.hasUrls() and not mime.hasImage()
                if not has_text:
                    if kind == QEvent.Type.KeyPress:
                        self.paste_or_explain()
                    event.accept()
                    return True
        return False

    def handle_drop(self, mime) -> None:
        if mime.hasUrls():
            urls: list[QUrl] = list(mime.urls())
            paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
            remote = [u.toString() for u in urls if not u.isLocalFile()]
            if remote and not paths:
                self._notify("warning", "Only files on this computer can be dropped; save the image first, then drop the file.")
                self.finished.emit(Batch("drop", "", errors=["remote"]))
                return
            sounds = [p for p in paths if _is_sound_file(p)]
            if sounds:  # a recorded utterance: spoken as the user's voice (Audio → Speak a sound file)
                paths = [p for p in paths if p not in sounds]
                speaker = getattr(self.window, "file_voice_ui", None)
                if speaker is not None:
                    speaker.speak(sounds[0])
                    if len(sounds) > 1:
                        self._notify("warning", f"Only one sound file is spoken at a time: {os.path.basename(sounds[0])}.")
                if not paths:
                    return
            if paths:
                self.attach_paths(paths, "drop")
                return
        if mime.hasImage():
            image = QImage(mime.imageData())
            self.attach_qimage(image, "dropped image")
            return
        self._notify("warning", f"Nothing to attach in what was dropped: drop image files ({FORMATS_TEXT}), "
                               "or a WAV file to speak it as your voice.")

    # -------------------------------------------------------------------------------- toolbar and menus
    def build_toolbar(self) -> QToolBar:
        bar = QToolBar("Images", self.window)
        bar.setObjectName("images_toolbar")
        bar.setMovable(False)
        w = self.window

        self.attach_action = QAction("Attach image…", w)
        self.attach_action.setShortcut(QKeySequence.StandardKey.Open)
        self.attach_action.setToolTip(f"Send images ({FORMATS_TEXT}); you can also drop or paste them (Ctrl+O)")
        self.attach_action.triggered.connect(self.choose_files)
        self.paste_action = QAction("Paste image", w)
        self.paste_action.setToolTip("Send the image on the clipboard (Ctrl+V)")
        self.paste_action.triggered.connect(self.paste_or_explain)
        self.screen_action = QAction("What's on my screen?", w)
        self.screen_action.setShortcut(QKeySequence(SCREEN_SHORTCUT))
        self.screen_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.screen_action.triggered.connect(lambda: self.capture_screen())
        self.paste_window_action = QAction("Paste image", w)  # Ctrl+V anywhere in the window (the toolbar button has no key)
        self.paste_window_action.setShortcut(QKeySequence.StandardKey.Paste)
        self.paste_window_action.triggered.connect(self.paste_or_explain)
        w.addAction(self.paste_window_action)

        bar.addAction(self.attach_action)
        bar.addAction(self.paste_action)
        screen_button = QToolButton(bar)
        screen_button.setDefaultAction(self.screen_action)
        screen_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.screen_menu = QMenu(screen_button)
        self.screen_menu.aboutToShow.connect(self._fill_screen_menu)
        screen_button.setMenu(self.screen_menu)
        bar.addWidget(screen_button)
        self.screen_button = screen_button
        self._fill_screen_menu()
        self._update_tooltips()
        return bar

    def _set_hotkey_status(self, status: str) -> None:
        self.global_hotkey_status = status
        self._update_tooltips()

    def _update_tooltips(self) -> None:
        self.screen_action.setToolTip(
            f"Send a screenshot with “{self.settings.screen_prompt}” ({SCREEN_SHORTCUT} in this window). "
            f"{self.global_hotkey_status}."
        )

    def _fill_screen_menu(self) -> None:
        menu = self.screen_menu
        menu.clear()
        group = QActionGroup(menu)
        choices = [("cursor", "Screen under the cursor"), ("all", "All screens")]
        portal = screen_capture.uses_portal()
        try:
            monitors = screen_capture.list_monitors() if screen_capture.unavailable_reason() is None and not portal else []
        except CaptureError:
            monitors = []
        if len(monitors) > 1:
            choices += [(f"monitor:{i}", f"Screen {i} ({m['width']}×{m['height']})") for i, m in enumerate(monitors, 1)]
        choices.append(("window", "The active window"))
        for value, label in choices:
            act = menu.addAction(label)
            act.setCheckable(True)
            act.setChecked(self.settings.capture_target == value)
            act.triggered.connect(lambda _=False, v=value: self._set("capture_target", v))
            group.addAction(act)
        menu.addSeparator()
        menu.addAction("Drag a region now…", self.capture_region)
        hide = menu.addAction("Hide Parley during the grab")
        hide.setCheckable(True)
        hide.setChecked(self.settings.hide_during_grab)
        hide.toggled.connect(lambda on: self._set("hide_during_grab", bool(on)))
        menu.addAction(f"Edit the prompt (“{self.settings.screen_prompt}”)…", self.edit_prompt)
        menu.addSeparator()
        size_menu = menu.addMenu(f"Image size: long side {self.settings.max_side} px")
        sizes = QActionGroup(size_menu)
        for side in _SIDE_CHOICES:
            act = size_menu.addAction(f"{side} px" + (" (default)" if side == 1024 else ""))
            act.setCheckable(True)
            act.setChecked(self.settings.max_side == side)
            act.triggered.connect(lambda _=False, v=side: self._set("max_side", v))
            sizes.addAction(act)
        detail = menu.addAction("High detail (up to 2048 px, detail: high)")
        detail.setCheckable(True)
        detail.setChecked(self.settings.high_detail)
        detail.toggled.connect(lambda on: self._set("high_detail", bool(on)))
        menu.addSeparator()
        if portal:
            menu.addAction("Wayland: grabs go through the desktop portal (the whole desktop)").setEnabled(False)
        status = menu.addAction(self.global_hotkey_status)
        status.setEnabled(False)

    def _set(self, name: str, value: Any) -> None:
        setattr(self.settings, name, value)
        self.settings.save()
        self._update_tooltips()

    def edit_prompt(self) -> None:
        text, ok = QInputDialog.getText(self.window, "What's on my screen?", "Prompt sent with the screenshot:", text=self.settings.screen_prompt)
        if ok:
            self._set("screen_prompt", text.strip() or DEFAULT_SCREEN_PROMPT)

    # -------------------------------------------------------------------------------- viewer
    def open_image(self, key: str) -> None:
        from .image_viewer import ImageViewer

        image = self.store.image(key)
        full = self.store.full(key)
        if image is None or full is None:
            self._notify("warning", "That image is no longer available.")
            return
        viewer = ImageViewer(full, f"{image.source} — {image.describe()}", self.window)
        viewer.show()
        self.last_viewer = viewer


def install(window: "MainWindow") -> AttachmentController:
    """Give a MainWindow its image features: toolbar, shortcuts, drop and paste, thumbnails in the transcript."""
    controller = AttachmentController(window)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, controller.build_toolbar())
    window.setAcceptDrops(True)
    for widget in (window, window.transcript, window.transcript.viewport(), window.text_input):
        widget.installEventFilter(controller)
    window.transcript.viewport().setAcceptDrops(True)
    window.transcript.image_store = controller.store
    window.transcript.image_clicked.connect(controller.open_image)
    _start_global_hotkey(controller)
    return controller


def _start_global_hotkey(controller: AttachmentController) -> None:
    """A system-wide Ctrl+Shift+S where the platform allows it (X11); otherwise the UI says why not."""
    platform = QGuiApplication.platformName()
    if platform in ("offscreen", "minimal"):
        controller.global_hotkey_status = f"System-wide hotkey: not available (no desktop session; Qt platform “{platform}”)"
        controller._update_tooltips()
        return
    from ..media.global_hotkey import start_global_hotkey

    hotkey, status = start_global_hotkey(SCREEN_SHORTCUT, lambda: controller.global_pressed.emit(), controller.global_status.emit)
    controller._hotkey = hotkey
    controller.global_hotkey_status = status
    controller._update_tooltips()
    if hotkey is not None:
        controller.window.destroyed.connect(lambda *_: hotkey.stop())

