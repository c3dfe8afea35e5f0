"""What the model heard of the user's spoken turns: the audio sent, kept for the last minute.

"Keep my last turn" needs exactly the audio that made a turn, as the server got it (after echo cancellation,
after the uplink's ducking of echo residue). The server says where a turn lies on its own audio clock:
`speech_started.audio_start_ms` and `speech_stopped.audio_end_ms` count the milliseconds appended since the
connection opened, prefix padding and closing silence included. A manual turn (push-to-talk, wake word,
client-side semantic turns) is what was appended since the previous commit or clear.

`SentAudioTape` keeps the last `keep_s` seconds of what was appended, on one sample clock across reconnects
(each connection's zero is where the tape stood when it opened), and the span of each committed turn on it.
It also notes where a sound file spoke for the user (`source_started` / `source_ended`), so a turn made of
one can say so (`sources`).
Plain arithmetic on arrays: no clocks, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np

from .pcm import PROTOCOL_RATE

Span = tuple[int, int]  # samples on the tape's clock, [start, end)


class SentAudioTape:
    def __init__(self, keep_s: float = 60.0, max_turns: int = 64) -> None:
        self.keep_samples = int(keep_s * PROTOCOL_RATE)
        self.max_turns = max_turns
        self.position = 0  # samples appended in all
        self._chunks: deque[tuple[int, np.ndarray]] = deque()  # (start sample, int16 chunk), oldest first
        self._kept = 0  # samples held in _chunks
        self._connection_base = 0
        self._manual_start = 0
        self._manual_spans: deque[Span] = deque()  # manual commits waiting for their item id, in order
        self.turns: OrderedDict[str, Span] = OrderedDict()  # item id -> span, oldest first
        self._source_spans: deque[tuple[str, int, int | None]] = deque(maxlen=16)  # (name, start, end or None)
        self.sources: dict[str, str] = {}  # item id -> the sound file that said most of it

    # ------------------------------------------------------------------ what was sent
    def appended(self, pcm16: np.ndarray) -> None:
        self._chunks.append((self.position, pcm16))
        self.position += len(pcm16)
        self._kept += len(pcm16)
        while self._chunks and self._kept - len(self._chunks[0][1]) >= self.keep_samples:
            self._kept -= len(self._chunks.popleft()[1])

    def connected(self) -> None:
        """A new connection: its audio clock starts here, with an empty input buffer."""
        self._connection_base = self._manual_start = self.position
        self._manual_spans.clear()

    def cleared(self) -> None:
        self._manual_start = self.position

    def committed_manually(self) -> None:
        """We sent `input_audio_buffer.commit`: the turn is everything since the last commit or clear."""
        self._manual_spans.append((self._manual_start, self.position))
        self._manual_start = self.position

    def committed(self, item_id: str, server_ms: tuple[int | None, int | None] | None = None) -> None:
        """The server committed the user turn `item_id`; `server_ms` is its VAD span (None for a manual commit)."""
        if server_ms is not None and server_ms[0] is not None and server_ms[1] is not None:
            span = (self._connection_base + server_ms[0] * PROTOCOL_RATE // 1000,
                    self._connection_base + server_ms[1] * PROTOCOL_RATE // 1000)
            self._manual_start = max(self._manual_start, min(span[1], self.position))
        elif self._manual_spans:
            span = self._manual_spans.popleft()
        else:
            return
        self.turns[item_id] = span
        source = self._source_of(span)
        if source is not None:
            self.sources[item_id] = source
        while len(self.turns) > self.max_turns:
            self.sources.pop(self.turns.popitem(last=False)[0], None)

    # ------------------------------------------------------------------ sound files speaking for the user
    def source_started(self, name: str) -> None:
        self.source_ended()
        self._source_spans.append((name, self.position, None))

    def source_ended(self) -> None:
        if self._source_spans and self._source_spans[-1][2] is None:
            name, start, _ = self._source_spans[-1]
            self._source_spans[-1] = (name, start, self.position)

    def _source_of(self, span: Span) -> str | None:
        """The file whose audio makes up more than half of the turn's speech, if any. The span's first 300 ms
        are left out of the count: prefix padding, from before the file began."""
        start, end = span
        start = min(start + PROTOCOL_RATE * 3 // 10, end)
        for name, s_start, s_end in reversed(self._source_spans):
            s_end = self.position if s_end is None else s_end
            overlap = min(end, s_end) - max(start, s_start)
            if overlap > 0 and overlap * 2 > end - start:
                return name
        return None

    # ------------------------------------------------------------------ what can be had back
    def audio(self, item_id: str) -> np.ndarray | None:
        """The turn's audio, or None when it is unknown or no longer (entirely) kept."""
        span = self.turns.get(item_id)
        if span is None or not self._chunks:
            return None
        start, end = span
        end = min(end, self.position)
        if start < self._chunks[0][0] or end <= start:
            return None
        pieces = [chunk[max(0, start - at):end - at] for at, chunk in self._chunks
                  if at < end and at + len(chunk) > start]
        return np.concatenate(pieces) if pieces else None

    def last_turn(self) -> tuple[str, np.ndarray] | None:
        """The newest turn whose audio is still kept."""
        for item_id in reversed(self.turns):
            audio = self.audio(item_id)
            if audio is not None:
                return item_id, audio
        return None

    def forget(self) -> None:
        """A new conversation: its turns are not this one's (the audio clock goes on)."""
        self.turns.clear()
        self.sources.clear()
        self._manual_spans.clear()
