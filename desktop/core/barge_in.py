"""Barge-in: what to do when the user starts speaking over the assistant.

The rules (see the protocol notes):
- stop playback at once; the adapter reports how many ms of the playing item the user heard;
- truncate that assistant item to what was heard (`conversation.item.truncate`), capped to the audio
  received for it, and not at all when nothing of it was played;
- cancel the response only when one is live and the server will not cancel it by itself
  (manual turns, `interrupt_response: false`, or an interruption noticed locally first);
- drop every late audio delta of the interrupted response.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BargeInDecision:
    stop_playback: bool
    cancel_response: bool
    reason: str


class BargeInPolicy:
    """Decides barge-in from the facts the client core knows. Pure: no clocks, no devices."""

    def __init__(self) -> None:
        #: Responses whose audio must not be played any more.
        self.silenced_responses: set[str] = set()
        #: The item whose playback was stopped and still awaits its truncate.
        self.pending_truncate_source: str | None = None

    def on_user_speech(
        self,
        *,
        assistant_audible: bool,
        response_live: bool,
        server_cancels: bool,
        source: str,
    ) -> BargeInDecision | None:
        """The user started speaking (from `source`: "server_vad", "local_vad", "push_to_talk", ...)."""
        if not assistant_audible and not response_live:
            return None
        cancel = response_live and not server_cancels
        return BargeInDecision(stop_playback=assistant_audible, cancel_response=cancel, reason=source)

    def silence(self, response_id: str | None) -> None:
        if response_id:
            self.silenced_responses.add(response_id)

    def is_silenced(self, response_id: str) -> bool:
        return response_id in self.silenced_responses

    @staticmethod
    def truncate_ms(played_ms: int, received_ms: int) -> int | None:
        """Milliseconds to truncate an item to, or None when no truncate must be sent."""
        heard = min(max(0, int(played_ms)), max(0, int(received_ms)))
        return heard if heard > 0 else None


def heard_text(text: str, heard_ms: int, total_ms: int) -> str:
    """The part of an assistant transcript the user heard, estimated by proportion of audio played.

    Cut at a word boundary; the server drops the unheard transcript itself after a truncate, this is only
    for showing where the user stopped hearing the answer.
    """
    if total_ms <= 0 or heard_ms >= total_ms:
        return text
    if heard_ms <= 0:
        return ""
    cut = int(len(text) * heard_ms / total_ms)
    space = text.rfind(" ", 0, cut + 1)
    return text[: space if space > 0 else cut].rstrip()
