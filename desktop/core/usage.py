"""Token usage of responses, as `response.done` reports it, per answer and summed over the conversation.

Realtime models bill audio tokens at several times the price of text tokens, and cached input is cheaper
still, so the split is what a builder needs to see, not only the total. Cached input is kept split by kind
too (`cached_tokens_details`), as cached audio and cached text have their own prices. Counts only: money is
`pricing`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["TokenUsage", "describe_usage", "short_count"]


def _count(d: Any, key: str) -> int:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    input_cached: int = 0
    #: The cached input split by kind (`cached_tokens_details`); part of input_text / input_audio / input_image.
    input_cached_text: int = 0
    input_cached_audio: int = 0
    input_cached_image: int = 0
    output_text: int = 0
    output_audio: int = 0
    responses: int = 0  # how many responses reported usage (1 for one answer)

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_wire(cls, usage: Any) -> "TokenUsage":
        """A `response.usage` object; tolerant of missing or malformed fields (they count as 0)."""
        if not isinstance(usage, dict):
            return cls()
        inp = usage.get("input_token_details")
        out = usage.get("output_token_details")
        cached = inp.get("cached_tokens_details") if isinstance(inp, dict) else None
        u = cls(
            input_tokens=_count(usage, "input_tokens"),
            output_tokens=_count(usage, "output_tokens"),
            input_text=_count(inp, "text_tokens"),
            input_audio=_count(inp, "audio_tokens"),
            input_image=_count(inp, "image_tokens"),
            input_cached=_count(inp, "cached_tokens"),
            input_cached_text=_count(cached, "text_tokens"),
            input_cached_audio=_count(cached, "audio_tokens"),
            input_cached_image=_count(cached, "image_tokens"),
            output_text=_count(out, "text_tokens"),
            output_audio=_count(out, "audio_tokens"),
        )
        # Some servers give only the details, or only the totals: each fills the other where it can.
        if u.input_tokens == 0:
            u = _replace(u, input_tokens=u.input_text + u.input_audio + u.input_image)
        if u.output_tokens == 0:
            u = _replace(u, output_tokens=u.output_text + u.output_audio)
        return _replace(u, responses=1 if u.total else 0)

    @classmethod
    def from_record(cls, record: Any) -> "TokenUsage | None":
        """What `dataclasses.asdict` made of one (a saved conversation); None when it is not that."""
        if not isinstance(record, dict):
            return None
        values = {f.name: record[f.name] for f in fields(cls) if _count(record, f.name)}
        return cls(**values)

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def _replace(u: TokenUsage, **changes: int) -> TokenUsage:
    values = {f.name: getattr(u, f.name) for f in fields(u)} | changes
    return TokenUsage(**values)


def short_count(n: int) -> str:
    """1234 -> "1.2k", 987 -> "987", 2_500_000 -> "2.5M"."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def describe_usage(u: TokenUsage, short: bool = False) -> str:
    """ "1,234 tokens in (900 audio, 300 cached) · 210 out (180 audio)" or, short, "1.2k in · 210 out"."""
    if short:
        return f"{short_count(u.input_tokens)} in · {short_count(u.output_tokens)} out"
    details_in = [f"{n:,} {name}" for n, name in ((u.input_audio, "audio"), (u.input_image, "image"),
                                                  (u.input_cached, "cached")) if n]
    details_out = [f"{u.output_audio:,} audio"] if u.output_audio else []
    text = f"{u.input_tokens:,} tokens in"
    if details_in:
        text += f" ({', '.join(details_in)})"
    text += f" · {u.output_tokens:,} out"
    if details_out:
        text += f" ({', '.join(details_out)})"
    return text
