"""Has the microphone heard only the room's own noise for a while? Decided from one level per 10 ms block.

While the room is quiet and nothing plays, no chunk of microphone audio can start anything before its
neighbours do: a voice begins with a block louder than the room, and that block ends the wait at once. So
the capture path may hand the event loop longer batches then (fewer wake-ups, each costing more than the
work it carries on this kind of machine: bench/wakeup_cost.py), and the usual 40 ms ones as soon as
anything is heard.

A block is quiet when it is at most `margin_db` above the tracked noise floor and no louder than
`ceiling_dbfs` (a room noisier than that always gets the usual batches). The floor follows falls at once and
rises by `floor_rise_db_per_s`, so a fan switched on becomes the room within seconds, while a voice (20-40 dB
above the room) stays loud. The room counts as quiet after `after_ms` of quiet blocks in a row: longer than
any turn detector's silence (the presets' longest is 800 ms), so the end of a user's turn is never delivered
later than before; only silence that has already lasted `after_ms` waits longer.

Pure arithmetic on levels: no clocks, no audio, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QuietRoom", "QuietRoomSettings"]


@dataclass(frozen=True)
class QuietRoomSettings:
    margin_db: float = 10.0
    ceiling_dbfs: float = -40.0
    after_ms: int = 2000
    floor_rise_db_per_s: float = 1.0
    #: Levels below this count as this (digital silence is -120 dBFS; a floor there would call the first
    #: hiss of a real microphone loud).
    bottom_dbfs: float = -90.0


class QuietRoom:
    def __init__(self, settings: QuietRoomSettings | None = None, block_ms: int = 10) -> None:
        self.settings = settings or QuietRoomSettings()
        self.block_ms = int(block_ms)
        self._rise_per_block = self.settings.floor_rise_db_per_s * self.block_ms / 1000.0
        self.floor_dbfs: float | None = None
        #: How long the blocks have been quiet, in a row (ms, counted up to `after_ms`).
        self.quiet_ms = 0

    def update(self, level_dbfs: float) -> bool:
        """One block's level (dBFS, before any processing); True when the room has been quiet for `after_ms`."""
        s = self.settings
        level = max(float(level_dbfs), s.bottom_dbfs)
        floor = self.floor_dbfs
        floor = level if floor is None or level < floor else min(level, floor + self._rise_per_block)
        self.floor_dbfs = floor
        if level <= floor + s.margin_db and level <= s.ceiling_dbfs:
            self.quiet_ms = min(self.quiet_ms + self.block_ms, s.after_ms)
        else:
            self.quiet_ms = 0
        return self.quiet_ms >= s.after_ms

    @property
    def quiet(self) -> bool:
        return self.quiet_ms >= self.settings.after_ms

    def forget(self) -> None:
        """Another microphone: learn its room again."""
        self.floor_dbfs = None
        self.quiet_ms = 0
