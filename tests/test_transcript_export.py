"""File → Save transcript: the conversation as Markdown (desktop.transcript_export), and the window's action."""

from __future__ import annotations

from datetime import datetime

from desktop.core.conversation import Conversation, ImageInfo
from desktop.transcript_export import conversation_markdown

STORY = "Once upon a time, in a valley, there lived a small dragon named Ember."


def _conversation() -> Conversation:
    conv = Conversation()
    conv.place("u1", None, role="user", text="Tell me a story about a dragon.", has_audio=True, text_final=True,
               audio_start_ms=740, audio_end_ms=2660)
    conv.place("a1", "u1", role="assistant", text=STORY, has_audio=True, text_final=True,
               truncated_at_ms=3500, heard_text="Once upon a time, in a valley,")
    conv.place("u2", "a1", role="user", text="What's *this*? [see] the_picture", text_final=True,
               images=[ImageInfo(1024, 768, 90_000, "image/jpeg")])
    conv.place("a2", "u2", role="assistant", text="A red square.", text_final=True, status="completed",
               reply_latency_ms=412)
    conv.place("u3", "a2", role="user", has_audio=True, transcription_failed="audio too short")
    conv.place("a3", "u3", role="assistant", text="Sorry?", status="cancelled")
    conv.place("f1", "a3", role="tool", kind="function_call", tool_name="get_weather", call_id="call_1",
               arguments='{"location":"Paris"}', text='get_weather({"location":"Paris"})', status="completed")
    return conv


def test_markdown_keeps_both_sides_in_order_with_the_interruption_marked():
    md = conversation_markdown(_conversation(), "offline engine", datetime(2026, 11, 26, 13, 30))
    lines = [line for line in md.splitlines() if line]
    assert lines[0] == "# Parley conversation, 2026-11-26 13:30"
    assert lines[1] == "With: offline engine"
    assert lines[2] == "**You** (spoken for 1.9 s): Tell me a story about a dragon."
    # What was heard, then the unheard rest struck through.
    assert lines[3] == ("**Assistant** (interrupted at 3.5 s): Once upon a time, in a valley, "
                        "~~there lived a small dragon named Ember.~~ *(not heard)*")
    # The user's own characters are escaped, not read as emphasis or links; images appear as their size.
    assert lines[4] == r"**You** (image 1024×768 px, 88 KB): What's \*this\*? \[see\] the\_picture"
    assert lines[5] == "**Assistant** (voice 412 ms after your turn ended): A red square."
    assert lines[6] == "**You** (spoken): *(could not transcribe: audio too short)*"
    assert lines[7] == "**Assistant** (cancelled): Sorry?"
    # A tool call is part of the conversation too.
    assert lines[8] == r'**Tool** (the model called): get\_weather({"location":"Paris"})'
    assert len(lines) == 9


def test_empty_conversation_is_just_the_heading():
    md = conversation_markdown(Conversation(), "OpenAI gpt-realtime", datetime(2026, 1, 2, 3, 4))
    assert md == "# Parley conversation, 2026-01-02 03:04\n\nWith: OpenAI gpt-realtime\n"


def test_the_window_saves_the_transcript_and_says_where(qtbot, tmp_path):
    from desktop.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    assert window.menuBar().actions()[0].text().replace("&", "") == "File"
    assert window.save_action.shortcut().toString() == "Ctrl+S"
    window.transcript.set_conversation(_conversation())
    target = tmp_path / "demo.md"
    assert window.save_transcript(target)
    text = target.read_text(encoding="utf-8")
    assert "With: not connected" in text and "~~there lived a small dragon named Ember.~~" in text
    assert window.notices[-1].message == f"Transcript saved to {target}"
    # A folder that does not exist: a clear message, nothing raised, the conversation untouched.
    missing = tmp_path / "no such folder" / "demo.md"
    assert not window.save_transcript(missing)
    assert window.notices[-1].level == "error" and "Could not save the transcript" in window.notices[-1].message
    assert len(window.transcript.conversation) == 7
