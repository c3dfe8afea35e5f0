"""What keeping the sent audio costs: the tape behind "Keep my last turn" and the turn menu.

    .venv/bin/python -m bench turn_tape

Every 20 ms chunk the client sends is also kept on the `SentAudioTape` (the last 60 s). This measures, in one
run, the CPU time per chunk of keeping it against the work the same chunk already costs on its way out (base64
and JSON of its `input_audio_buffer.append`, the baseline), and the time to cut a 5 s turn out of a full tape
and to write it as a WAV file. Rounds alternate; medians and p95 across rounds; the ratio is per round.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from ._common import summarize

ROUNDS = 15
CHUNKS = 3000  # 60 s of 20 ms chunks: one full tape per round


def _round(chunks: list[np.ndarray], folder: Path) -> dict[str, float]:
    from desktop.audio.file_source import write_wav_24k
    from desktop.core.turn_audio import SentAudioTape

    tape = SentAudioTape()
    tape.connected()
    t0 = time.thread_time()
    for chunk in chunks:
        tape.appended(chunk)
    keep_us = (time.thread_time() - t0) / len(chunks) * 1e6
    t0 = time.thread_time()
    for chunk in chunks:
        json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_1",
                    "audio": base64.b64encode(chunk.tobytes()).decode("ascii")})
    encode_us = (time.thread_time() - t0) / len(chunks) * 1e6
    # The last 5 s of the tape as a turn (a server VAD span, in ms on this connection's clock).
    end_ms = tape.position * 1000 // 24000
    tape.committed("turn", (end_ms - 5000, end_ms))
    t0 = time.perf_counter()
    audio = tape.audio("turn")
    cut_ms = (time.perf_counter() - t0) * 1e3
    assert audio is not None and len(audio) == 5 * 24000
    t0 = time.perf_counter()
    write_wav_24k(folder / "turn.wav", audio)
    write_ms = (time.perf_counter() - t0) * 1e3
    kept_mb = sum(len(c) * 2 for _, c in tape._chunks) / 1e6
    return {"keep_us": keep_us, "encode_us": encode_us, "ratio": keep_us / encode_us, "cut_ms": cut_ms,
            "write_ms": write_ms, "kept_mb": kept_mb}


def measure() -> dict:
    rng = np.random.default_rng(3)
    chunks = [(rng.standard_normal(480) * 1500).astype(np.int16) for _ in range(CHUNKS)]
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _round(chunks[:400], Path(tmp))  # warm-up (8 s: room for the 5 s turn)
        for _ in range(ROUNDS):
            for key, value in _round(chunks, Path(tmp)).items():
                rows.setdefault(key, []).append(value)
    return {
        "keep_per_chunk_us": summarize(rows["keep_us"], 2),
        "encode_per_chunk_us": summarize(rows["encode_us"], 2),
        "keep_over_encode": summarize(rows["ratio"], 3),
        "cut_5s_turn_ms": summarize(rows["cut_ms"], 3),
        "write_5s_wav_ms": summarize(rows["write_ms"], 2),
        "tape_mb": round(float(np.median(rows["kept_mb"])), 2),
        "units": {"keep_per_chunk_us": "µs of CPU per 20 ms chunk", "cut_5s_turn_ms": "ms wall",
                  "write_5s_wav_ms": "ms wall", "tape_mb": "MB held for 60 s"},
        "rounds": ROUNDS,
        "chunks_per_round": CHUNKS,
    }


def markdown(r: dict) -> str:
    keep, enc, ratio = r["keep_per_chunk_us"], r["encode_per_chunk_us"], r["keep_over_encode"]
    cut, write = r["cut_5s_turn_ms"], r["write_5s_wav_ms"]
    return "\n".join([
        "| per 20 ms chunk sent | median | p95 |",
        "|---|---:|---:|",
        f"| keeping it on the tape | {keep['median']} µs | {keep['p95']} µs |",
        f"| base64 + JSON of its append event (baseline) | {enc['median']} µs | {enc['p95']} µs |",
        f"| keeping / baseline | {ratio['median']} | {ratio['p95']} |",
        "",
        "| once per kept turn | median | p95 |",
        "|---|---:|---:|",
        f"| cut a 5 s turn out of a full tape | {cut['median']} ms | {cut['p95']} ms |",
        f"| write it as a WAV file | {write['median']} ms | {write['p95']} ms |",
        "",
        f"The tape holds the last 60 s: {r['tape_mb']} MB. {r['rounds']} rounds of {r['chunks_per_round']} chunks; "
        "CPU time of the calling thread (`time.thread_time`) for the per-chunk figures.",
    ])


def run() -> dict:
    results = measure()
    return {
        "benchmark": "turn_tape",
        "title": "Keeping the sent audio (Keep my last turn, Speak this turn again)",
        "command": ".venv/bin/python -m bench turn_tape",
        "results": results,
        "markdown": markdown(results),
    }


if __name__ == "__main__":
    print(run()["markdown"])
