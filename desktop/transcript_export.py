"""The conversation as Markdown, for File → Save transcript. No Qt.

Both sides in the server's order, with what the transcript view shows as metadata (spoken, images sent,
where an answer was interrupted). An interrupted answer keeps the words the user heard, then the unheard
rest struck through, so a saved demo shows exactly where the barge-in landed.
"""

from __future__ import annotations

from datetime import datetime

from .core.conversation import Conversation, ConversationItem
from .core.pricing import CostTotal, PriceTable
from .core.usage import TokenUsage, describe_usage

#: How the transcript names each side.
SPEAKER = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool"}


def _escape(text: str) -> str:
    """Keep a transcript's characters from being read as Markdown structure."""
    out = text
    for ch in ("\\", "`", "*", "_", "[", "]", "<", ">", "#", "~", "|"):
        out = out.replace(ch, "\\" + ch)
    return out


def size_text(byte_count: int) -> str:
    if byte_count < 1024:
        return f"{byte_count} bytes"
    kb = byte_count / 1024
    return f"{kb:.0f} KB" if kb < 1024 else f"{kb / 1024:.1f} MB"


def item_meta(item: ConversationItem, prices: PriceTable | None = None, model: str | None = None) -> list[str]:
    """What the transcript says about an item besides its text (the view and the saved Markdown share it).
    Given `prices`, an answer's tokens are followed by its cost (priced by the model that answered, else `model`)."""
    meta: list[str] = []
    if item.kind == "function_call":
        meta.append("the model called" + (" (waiting for its result)" if item.status == "in_progress" else ""))
    elif item.kind == "function_call_output":
        meta.append("result sent back")
    if item.role == "user" and item.has_audio:
        spoken = "spoken"
        if item.audio_start_ms is not None and item.audio_end_ms is not None and item.audio_end_ms > item.audio_start_ms:
            spoken += f" for {(item.audio_end_ms - item.audio_start_ms) / 1000:.1f} s"  # as the server's VAD heard it
        if item.spoken_from:
            spoken += f" from {item.spoken_from}"
        meta.append(spoken)
    meta += [f"image {im.width}×{im.height} px, {size_text(im.byte_count)}" for im in item.images]
    if item.reply_latency_ms is not None:
        meta.append(f"voice {item.reply_latency_ms} ms after your turn ended")
    if item.usage is not None and item.usage.total:
        meta.append(describe_usage(item.usage))
        if prices is not None:
            meta.append(prices.price(item.usage, item.model or model).label)
    if item.interrupted:
        meta.append(f"interrupted at {item.truncated_at_ms / 1000:.1f} s")
    elif item.status in ("cancelled", "incomplete"):
        meta.append(item.status)
    return meta


def _body(item: ConversationItem) -> str:
    if item.transcription_failed:
        return f"*(could not transcribe: {_escape(item.transcription_failed)})*"
    if item.interrupted and item.heard_text is not None:
        heard, unheard = item.heard_text.strip(), item.unheard_text.strip()
        return _escape(heard) + (f" ~~{_escape(unheard)}~~ *(not heard)*" if unheard else "")
    if item.text:
        return _escape(item.text.strip())
    return "*(no text)*"


def conversation_markdown(conversation: Conversation, provider: str, when: datetime | None = None,
                          prices: PriceTable | None = None, model: str | None = None) -> str:
    """The whole conversation as one Markdown document (messages only: no audio, no image data). Given `prices`
    (and the provider's `model`, for answers whose session named none), each answer's cost and the total too."""
    when = when or datetime.now()
    lines = [f"# Parley conversation, {when:%Y-%m-%d %H:%M}", "", f"With: {provider}", ""]
    for item in conversation:
        if item.kind not in ("message", "function_call", "function_call_output"):
            continue
        meta = item_meta(item, prices, model)
        head = f"**{SPEAKER.get(item.role, item.role.title())}**" + (f" ({', '.join(meta)})" if meta else "")
        lines += [f"{head}: {_body(item)}", ""]
    used = [item.usage for item in conversation if item.usage is not None]
    if used:
        lines += [f"Token usage of the {len(used)} answer{'s' if len(used) != 1 else ''}: "
                  f"{describe_usage(sum(used, TokenUsage()))}", ""]
    if used and prices is not None:
        cost = CostTotal()
        for item in conversation:
            if item.usage is not None:
                cost.add(prices.price(item.usage, item.model or model))
        lines += [f"Cost of the {len(used)} answer{'s' if len(used) != 1 else ''}: {cost.label}"
                  + "".join(f" (prices of {name} as of {day or 'an unknown day'})" for name, day in cost.as_of.items()),
                  ""]
    return "\n".join(lines).rstrip() + "\n"
