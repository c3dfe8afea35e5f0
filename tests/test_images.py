"""Images as input: the one pipeline (unit), the engine's OCR, and the window end to end against the real engine
(a real drop of a PNG, a paste, bad files) with every client event validated against the SDK types."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from desktop.core.events import ClientEvents
from desktop.engine.vision import describe_data_url
from desktop.media.image_pipeline import ImageError, PipelineSettings, prepare_bytes, prepare_file, prepare_pil
from tests.conftest import FIXTURES
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until as _wait_until

IMAGES = FIXTURES / "images"


def _decode(prepared) -> Image.Image:
    return Image.open(io.BytesIO(prepared.data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height, with a tiny (invalid) body: the decompression-bomb shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------------ pipeline
def test_exif_orientation_is_applied():
    prepared = prepare_file(IMAGES / "rotated.jpg")
    assert (prepared.width, prepared.height) == (200, 300)
    img = _decode(prepared).convert("RGB")
    r, g, b = img.getpixel((100, 20))  # the red band is at the top once upright
    assert r > 150 and g < 80 and b < 80
    assert img.getpixel((100, 250))[1] > 200  # white below


def test_alpha_is_flattened_onto_white_for_jpeg():
    prepared = prepare_file(IMAGES / "alpha.png", PipelineSettings(output_format="jpeg"))
    assert prepared.mime_type == "image/jpeg"
    img = _decode(prepared).convert("RGB")
    assert min(img.getpixel((5, 5))) > 240  # was transparent: now white, not black
    assert img.getpixel((60, 60))[0] > 200 and img.getpixel((60, 60))[1] < 60


def test_gif_first_frame():
    img = _decode(prepare_file(IMAGES / "animated.gif")).convert("RGB")
    r, g, b = img.getpixel((10, 10))
    assert r > 200 and b < 50  # first frame red, not the blue second frame


def test_downscale_to_the_long_side_and_high_detail():
    big = Image.new("RGB", (4000, 3000), (30, 120, 200))
    normal = prepare_pil(big, "big.png")
    assert (normal.width, normal.height) == (1024, 768)
    assert (normal.source_width, normal.source_height) == (4000, 3000)
    assert normal.detail is None and "detail" not in normal.content_part()
    high = prepare_pil(big, "big.png", PipelineSettings(high_detail=True))
    assert (high.width, high.height) == (2048, 1536) and high.content_part()["detail"] == "high"
    custom = prepare_pil(big, "big.png", PipelineSettings(max_side=512))
    assert max(custom.width, custom.height) == 512
    small = prepare_pil(Image.new("RGB", (300, 200)), "small.png")
    assert (small.width, small.height) == (300, 200)  # never enlarged


def test_jpeg_quality_and_format_choice():
    photo = Image.effect_noise((800, 600), 40).convert("RGB")
    q80 = prepare_pil(photo, "p.jpg")
    q30 = prepare_pil(photo, "p.jpg", PipelineSettings(jpeg_quality=30))
    assert q80.mime_type == q30.mime_type == "image/jpeg"
    assert q30.byte_count < q80.byte_count
    # A flat screenshot of text: PNG is tried and wins.
    doc = prepare_file(IMAGES / "document.png")
    assert doc.mime_type == "image/png"
    jpeg = prepare_file(IMAGES / "document.png", PipelineSettings(output_format="jpeg"))
    assert doc.byte_count < jpeg.byte_count


def test_encoded_size_limit_lowers_quality_then_refuses():
    noise = Image.effect_noise((1024, 1024), 90).convert("RGB")
    full = prepare_pil(noise, "n.jpg")
    capped = prepare_pil(noise, "n.jpg", PipelineSettings(max_encoded_bytes=int(full.byte_count * 0.7)))
    assert capped.byte_count <= int(full.byte_count * 0.7)
    with pytest.raises(ImageError, match="after compression"):
        prepare_pil(noise, "n.jpg", PipelineSettings(max_encoded_bytes=10_000))


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda tmp: IMAGES / "corrupt.png", "looks damaged"),
        (lambda tmp: IMAGES / "not_image.png", "is not an image"),
        (lambda tmp: tmp / "gone.png", "no longer there"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: _write(tmp / "empty.png", b""), "is empty"),
        (lambda tmp: _write(tmp / "bomb.png", _png_header_only(10_000, 10_000)), "100 megapixels"),
    ],
    ids=["corrupt", "not-image", "vanished", "folder", "empty", "100-megapixel"],
)
def test_bad_input_gives_a_clear_message(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(ImageError) as info:
        prepare_file(path)
    assert expected in str(info.value)
    assert Path(path).name in str(info.value) or str(path) in str(info.value)


def test_huge_pixel_count_is_refused_before_decoding():
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="megapixels"):
        prepare_bytes(_png_header_only(40_000, 40_000), "huge.png")  # 1.6 gigapixels: decoding would take GBs
    assert time.perf_counter() - t0 < 2.0


def test_content_part_is_a_valid_ga_input_image():
    prepared = prepare_file(IMAGES / "document.png")
    event = ClientEvents().user_message([prepared.content_part(), {"type": "input_text", "text": "Read this"}], previous_item_id=None)
    validate_client_event(event)
    part = event["item"]["content"][0]
    assert part["type"] == "input_image" and part["image_url"].startswith("data:image/png;base64,")
    assert base64.b64decode(part["image_url"].split(",", 1)[1]) == prepared.data
    info = prepared.info()
    assert (info.width, info.height, info.byte_count) == (640, 240, len(prepared.data))


def test_engine_vision_reads_text_and_size():
    prepared = prepare_file(IMAGES / "document.png")
    answer = describe_data_url(prepared.data_url())
    assert answer.startswith("The image is 640 by 240 pixels. It says:")
    assert "INVOICE 4821" in answer and "TOTAL DUE 96 EUR" in answer
    blank = prepare_pil(Image.new("RGB", (300, 200), "white"), "blank.png")
    assert describe_data_url(blank.data_url()) == "The image is 300 by 200 pixels. I can't find any text in it."
    assert "couldn't decode" in describe_data_url("data:image/png;base64,AAAA")


# ------------------------------------------------------------------------------------------------ the window


def _drop(window, paths: list[Path]) -> bool:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    center = window.rect().center()
    enter = QDragEnterEvent(center, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    drop = QDropEvent(QPointF(center), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    return enter.isAccepted() and drop.isAccepted()


def _sent_of(session, kind: str) -> list[dict]:
    return [e for e in session.sent_events if e["type"] == kind]


@pytest.mark.slow
def test_drop_paste_and_bad_files_in_the_window(qtbot, qasync_loop, tmp_path):
    from desktop.providers import choose_provider
    from desktop.session import LiveSession, SessionOptions
    from desktop.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    session = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
    session.record_sent = True
    window.attach(session)
    controller = window.attachments
    handled: list = []
    controller.finished.connect(handled.append)

    def assistant_texts() -> list[str]:
        return [i.text for i in session.client.conversation if i.role == "assistant" and i.text_final]

    async def scenario():
        assert await session.start()
        await _wait_until(lambda: session.client.effective is not None, 20)

        # 1. Bad files: a damaged PNG, a text file, a file that vanished. Message shown, nothing sent.
        before = len(session.client.conversation)
        window.text_input.setText("Is this my invoice?")
        assert _drop(window, [IMAGES / "corrupt.png", IMAGES / "not_image.png", tmp_path / "vanished.png"])
        assert await _wait_until(lambda: len(handled) == 1, 20)
        bad_notice = window.notices[-1]
        await asyncio.sleep(0.3)
        bad_state = (len(_sent_of(session, "conversation.item.create")), len(_sent_of(session, "response.create")),
                     len(session.client.conversation) - before, bad_notice.level, bad_notice.message, window.notice_label.isVisible(),
                     window.text_input.text())

        # 2. A real drop of a PNG, with a typed question: one item (image + text) and one response.
        window.text_input.setText("What does this say?")
        assert _drop(window, [IMAGES / "document.png"])
        assert await _wait_until(lambda: len(handled) == 2, 20)
        answered = await _wait_until(lambda: any("INVOICE" in t for t in assistant_texts()), 60)
        drop_events = (list(_sent_of(session, "conversation.item.create")), list(_sent_of(session, "response.create")))
        html = window.transcript.toHtml()

        # 3. Paste an image from the clipboard (Ctrl+V in the text box).
        await _wait_until(lambda: session.client.active_response is None, 30)
        img = QImage(320, 120, QImage.Format.Format_RGB32)
        img.fill(Qt.GlobalColor.white)
        QGuiApplication.clipboard().setImage(img)
        qtbot.keyClick(window.text_input, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        assert await _wait_until(lambda: len(handled) == 3, 20)
        pasted = await _wait_until(lambda: any("320 by 120" in t for t in assistant_texts()), 60)

        # 4. An empty clipboard: a message, nothing sent.
        QGuiApplication.clipboard().clear()
        creates_before = len(_sent_of(session, "conversation.item.create"))
        window.attachments.paste_or_explain()
        empty_notice = window.notices[-1]
        creates_after = len(_sent_of(session, "conversation.item.create"))

        # 5. Clicking the thumbnail opens the full-size viewer.
        key = controller.store.key_for(next(i for i in session.client.conversation if i.images).images[0])
        window.transcript.anchorClicked.emit(QUrl(key))
        viewer = controller.last_viewer
        viewer_size = (viewer.label.pixmap().width(), viewer.label.pixmap().height())
        viewer.close()
        await session.stop()
        return bad_state, answered, drop_events, html, pasted, empty_notice, creates_before, creates_after, viewer_size

    bad_state, answered, drop_events, html, pasted, empty_notice, creates_before, creates_after, viewer_size = (
        qasync_loop.run_until_complete(scenario())
    )
    creates, responses, new_items, level, message, visible, kept_question = bad_state
    assert kept_question == "Is this my invoice?"  # nothing lost: the typed question stays for the next try
    assert (creates, responses, new_items) == (0, 0, 0), bad_state
    assert level == "error" and visible
    assert "corrupt.png” looks damaged" in message and "not_image.png” is not an image" in message
    assert "vanished.png” is no longer there" in message

    assert answered, [i.text for i in window.session.client.conversation]
    items, responses = drop_events
    assert len(items) == 1 and len(responses) == 1
    content = items[0]["item"]["content"]
    assert [p["type"] for p in content] == ["input_image", "input_text"]
    assert content[0]["image_url"].startswith("data:image/png;base64,") and content[1]["text"] == "What does this say?"
    assert window.text_input.text() == ""
    assert "parley-image:1" in html  # the thumbnail is in the transcript
    assert "image 640×240 px" in window.transcript_text()

    assert pasted
    assert empty_notice.level == "warning" and "clipboard has no image" in empty_notice.message
    assert creates_after == creates_before == 2
    assert viewer_size == (640, 240)
    for event in window.session.sent_events:
        validate_client_event(event)


def test_image_settings_persist(qapp):
    from desktop.ui.attachments import DEFAULT_SCREEN_PROMPT, ImageSettings

    s = ImageSettings.load()
    s.max_side, s.high_detail, s.screen_prompt, s.capture_target, s.hide_during_grab = 1536, True, "Read the error", "monitor:2", False
    s.save()
    again = ImageSettings.load()
    assert (again.max_side, again.high_detail, again.screen_prompt, again.capture_target, again.hide_during_grab) == (
        1536, True, "Read the error", "monitor:2", False)
    assert again.pipeline().long_side == 2048 and again.target().kind == "monitor" and again.target().monitor == 2
    ImageSettings().save()  # back to defaults for the other tests
    assert ImageSettings.load().screen_prompt == DEFAULT_SCREEN_PROMPT


def test_one_message_carries_a_bounded_number_of_bytes():
    from desktop.media.image_pipeline import PreparedImage
    from desktop.ui.attachments import MAX_IMAGES_PER_MESSAGE, MAX_MESSAGE_IMAGE_BYTES, Batch, _limit_message_size

    def img(name: str, size: int) -> PreparedImage:
        return PreparedImage(b"x" * size, "image/jpeg", 10, 10, 10, 10, name)

    batch = Batch("drop", "", [img(f"{i}.jpg", 1000) for i in range(MAX_IMAGES_PER_MESSAGE + 2)])
    _limit_message_size(batch)
    assert len(batch.images) == MAX_IMAGES_PER_MESSAGE and len(batch.errors) == 2
    big = MAX_MESSAGE_IMAGE_BYTES // 2 + 1
    batch = Batch("drop", "", [img("a.jpg", big), img("b.jpg", big), img("c.jpg", 10)])
    _limit_message_size(batch)
    assert [i.source for i in batch.images] == ["a.jpg", "c.jpg"]
    assert "“b.jpg” was not sent" in batch.errors[0]


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "AVIF", "HEIF"])
def test_other_formats_are_read(tmp_path, fmt):
    from desktop.media.image_pipeline import HEIF_SUPPORTED

    if fmt == "HEIF" and not HEIF_SUPPORTED:
        pytest.skip("pillow-heif is not installed")
    src = Image.new("RGB", (160, 100), (20, 160, 60))
    path = tmp_path / f"photo.{'heic' if fmt == 'HEIF' else fmt.lower()}"
    src.save(path, fmt, **({"quality": 90} if fmt in ("WEBP", "AVIF", "HEIF") else {}))
    prepared = prepare_file(path)
    assert (prepared.width, prepared.height) == (160, 100)
    r, g, b = _decode(prepared).convert("RGB").getpixel((80, 50))
    assert abs(r - 20) < 25 and abs(g - 160) < 25 and abs(b - 60) < 25
