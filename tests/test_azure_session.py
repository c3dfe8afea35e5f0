"""Parley's Azure OpenAI provider against the real engine serving Azure's paths: the key goes as `api-key` (the
engine refuses the connection otherwise), the deployment in the query; a dropped connection and a recycled
(renewed) session each lose nothing of the conversation."""

from __future__ import annotations

import asyncio
import time

import pytest

from desktop.engine.server import EngineServer
from desktop.engine.speech_models import SpeechModels
from desktop.providers import provider_choice
from desktop.session import LiveSession, SessionOptions
from tests.conftest import AUDIO
from tests.tcp_proxy import CuttingProxy
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

KEY = "azure-test-key-0123456789abcdef"


def _answers(session) -> list[str]:
    return [i.text for i in session.client.conversation if i.role == "assistant" and i.text_final]


async def _turn(session, text: str) -> None:
    before = len(_answers(session))
    assert session.send_text(text)
    assert await wait_until(lambda: len(_answers(session)) > before and session.client.active_response is None, 30)


def test_azure_through_a_drop_and_a_recycle(qasync_loop):
    async def scenario():
        server = EngineServer(models=SpeechModels(), token=KEY)
        port = await server.start("127.0.0.1", 0)
        proxy = CuttingProxy(port)
        await proxy.start()
        env = {"AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_ENDPOINT": "https://parley-test.openai.azure.com",
               "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime-test"}
        wrong = provider_choice("azure", environ=dict(env, AZURE_OPENAI_API_KEY="not-the-key-0123456789"),
                                url=f"ws://127.0.0.1:{port}/openai/v1/realtime?model=gpt-realtime-test",
                                use_keyring=False)
        refused = LiveSession(SessionOptions(wrong, audio_in=str(AUDIO / "silence_2s.wav"), use_speaker=False))
        assert not await refused.start() and "refused the API key" in refused.status.detail
        await refused.stop()

        provider = provider_choice("azure", environ=env, use_keyring=False,
                                   url=f"ws://127.0.0.1:{proxy.port}/openai/v1/realtime?model=gpt-realtime-test")
        assert provider.auth == "api-key" and provider.dialect == "openai"
        session = LiveSession(SessionOptions(provider, audio_in=str(AUDIO / "silence_2s.wav"), use_speaker=False,
                                             session_limit_s=40))
        try:
            assert await session.start(), session.status
            began = session.session_began
            await _turn(session, "Repeat after me: the amber lantern.")
            # A drop mid-conversation: reconnected, the turns carried over, the conversation goes on.
            proxy.cut()
            assert await wait_until(lambda: session.drops == 1 and session.status.phase == "connected", 20)
            await _turn(session, "Repeat after me: the silver kettle.")
            # A recycle: before the 40 s limit the session is renewed at a pause, with the conversation.
            assert await wait_until(lambda: session.renewals == 1 and session.status.phase == "connected", 45)
            assert time.perf_counter() - began < 40 + 20  # the renewal came before the limit of the session it replaced
            await _turn(session, "Repeat after me: the last word.")
            answers = " ".join(_answers(session)).lower()
            for words in ("amber lantern", "silver kettle", "last word"):
                assert words in answers, answers
            # What the engine holds after the drop and the recycle: the earlier turns (carried over), by their ids.
            conn = next(iter(server.connections))
            held = " ".join(str(item) for item in conn.items.values()).lower() if hasattr(conn, "items") else ""
            assert "amber lantern" in held and "silver kettle" in held, held[:500]
        finally:
            await session.stop()
            await proxy.close()
            await server.stop()

    qasync_loop.run_until_complete(scenario())
