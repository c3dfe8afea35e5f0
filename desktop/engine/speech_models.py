"""The engine's speech models, shared by all connections and loaded in the background at start-up.

The engine accepts connections at once; a turn that needs a model waits for it to finish loading.
Inference runs on a small thread pool so the event loop keeps serving audio and events.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .speech import SileroSpeechProbability, WhisperRecognizer, best_synthesizer

log = logging.getLogger(__name__)


class SpeechModels:
    def __init__(self, workers: int = 2) -> None:
        self.asr = WhisperRecognizer()
        self.tts = best_synthesizer()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine-speech")
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.load_seconds: float | None = None
        self._thread: threading.Thread | None = None

    def start_loading(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="engine-model-loader", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            self.tts.load()
            self.asr.load()
            # A first inference pays one-off costs; pay them now rather than in the first turn.
            self.asr.transcribe(np.zeros(24000 // 2, dtype=np.int16))
            for _ in self.tts.synthesize("Ready."):
                pass
        except Exception as exc:  # reported to clients as a failed transcription / response
            log.exception("loading speech models failed")
            self.load_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.load_seconds = time.perf_counter() - t0
            log.info("speech models loaded in %.2f s", self.load_seconds)
            self.ready.set()

    async def wait_ready(self) -> None:
        self.start_loading()
        if not self.ready.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self.ready.wait)
        if self.load_error:
            raise RuntimeError(self.load_error)

    @staticmethod
    def new_vad() -> SileroSpeechProbability:
        return SileroSpeechProbability(input_rate=24000)

    async def transcribe(self, pcm16: np.ndarray) -> str:
        await self.wait_ready()
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.asr.transcribe, pcm16)

    async def synthesize_sentence(self, sentence: str, stop: threading.Event | None = None, speed: float = 1.0) -> np.ndarray:
        """One sentence's speech (int16, 24 kHz) at `speed`, synthesized on the executor; empty if `stop` was set first."""
        await self.wait_ready()

        def work() -> np.ndarray:
            if stop is not None and stop.is_set():
                return np.zeros(0, dtype=np.int16)
            return self.tts.synthesize_sentence(sentence, speed)

        return await asyncio.get_running_loop().run_in_executor(self.executor, work)

    def synthesize_stream(self, text: str, stop: threading.Event, speed: float = 1.0) -> "asyncio.Queue[tuple[str, np.ndarray] | None]":
        """Sentence-by-sentence speech at `speed` into a queue (None marks the end); `stop` ends synthesis early."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, np.ndarray] | None] = asyncio.Queue()

        def produce() -> None:
            try:
                self.ready.wait()
                chunks: Iterator[tuple[str, np.ndarray]] = self.tts.synthesize(text, speed)
                for sentence, pcm in chunks:
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, (sentence, pcm))
            except Exception:
                log.exception("speech synthesis failed")
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        self.executor.submit(produce)
        return queue

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
