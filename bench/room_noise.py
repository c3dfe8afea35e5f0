"""What simulated background noise costs on the capture thread, against the echo canceller that runs there too.

    .venv/bin/python -m bench room_noise

With Audio → Background noise on, each 10 ms microphone block gets looped noise added on the capture thread
(`desktop.audio.room_noise.RoomNoise.mix`). This measures, in one run, the CPU time per 10 ms block of that mix
and of the echo canceller's work on the same block (far end + near end, the baseline the capture path already
pays), for each kind of noise; back to back, rounds alternating; medians and p95 across rounds.
"""

from __future__ import annotations

import time

import numpy as np

from ._common import ROOT, summarize

NOISE_FILE = ROOT / "tests" / "fixtures" / "audio" / "tell_story.wav"  # any recording, looped

ROUNDS = 15
BLOCKS = 500  # 5 s of 10 ms blocks per round


def _per_block_us(fn, blocks: list[np.ndarray]) -> float:
    t0 = time.thread_time()
    for block in blocks:
        fn(block)
    return (time.thread_time() - t0) / len(blocks) * 1e6


def measure() -> dict:
    from desktop.audio.echo_canceller import EchoCanceller
    from desktop.audio.room_noise import RoomNoise

    rng = np.random.default_rng(9)
    blocks = [(rng.standard_normal(240) * 1500).astype(np.int16) for _ in range(BLOCKS)]
    aec = EchoCanceller(rate=24000)

    def echo(block: np.ndarray) -> object:
        aec.feed_far_end(block)
        return aec.process_near_end(block)

    stages = {"echo cancellation (baseline)": echo}
    for kind in ("fan", "hiss", "file"):
        noise = RoomNoise(kind, -35.0, str(NOISE_FILE) if kind == "file" else None)
        stages[f"noise mix: {kind}"] = noise.mix
    rows: dict[str, list[float]] = {name: [] for name in stages}
    for fn in stages.values():
        _per_block_us(fn, blocks[:50])  # warm-up
    ratios: dict[str, list[float]] = {name: [] for name in stages if name.startswith("noise")}
    for _ in range(ROUNDS):
        base = _per_block_us(echo, blocks)
        rows["echo cancellation (baseline)"].append(base)
        for name in ratios:
            us = _per_block_us(stages[name], blocks)
            rows[name].append(us)
            ratios[name].append(us / base)
    return {
        "per_block_us": {name: summarize(values, 2) for name, values in rows.items()},
        "over_echo_cancellation": {name: summarize(values, 3) for name, values in ratios.items()},
        "units": {"per_block_us": "µs of CPU per 10 ms block (time.thread_time)"},
        "rounds": ROUNDS,
        "blocks_per_round": BLOCKS,
    }


def markdown(r: dict) -> str:
    lines = ["| per 10 ms microphone block | median µs | p95 µs | / echo cancellation |", "|---|---:|---:|---:|"]
    for name, row in r["per_block_us"].items():
        ratio = r["over_echo_cancellation"].get(name)
        lines.append(f"| {name} | {row['median']} | {row['p95']} | {ratio['median'] if ratio else '1'} |")
    lines += ["", f"{r['rounds']} rounds of {r['blocks_per_round']} blocks, back to back. Off (the default), the noise "
              "costs one attribute read per block."]
    return "\n".join(lines)


def run() -> dict:
    results = measure()
    return {
        "benchmark": "room_noise",
        "title": "Simulated background noise on the capture thread",
        "command": ".venv/bin/python -m bench room_noise",
        "results": results,
        "markdown": markdown(results),
    }


if __name__ == "__main__":
    print(run()["markdown"])
