"""The offline engine thinking with a local model: a real llama-cpp-python server on loopback serving the small
Gemma 3 270M GGUF (a base model: its words are poor, the mechanism is what is checked). Discovery finds it,
the engine speaks its streamed words sentence by sentence, a cancel stops the model's generation and the
speech at once, and Connection → Offline brain switches a window's engine to it."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from desktop.core.actions import Notice
from desktop.engine.llm_brain import LLMBrain
from desktop.engine.responder import CANNOT_ANSWER, Responder
from desktop.local_llm_discovery import BRAIN_KEY, BrainChoice, discover, short_model
from tests.llama_server import complete, free_port, start_llama_server
from tests.test_engine_conformance import TimedPeer, models, run_scenario, user_text  # noqa: F401
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow

PROMPT = "Tell me about the sea in a few sentences."


@pytest.fixture(scope="session")
def llama_server():
    server = start_llama_server()
    yield server
    server.stop()


def _brains(server) -> tuple[list[LLMBrain], callable]:
    made: list[LLMBrain] = []

    def factory() -> LLMBrain:
        made.append(LLMBrain(server.url, model=server.model, timeout=120))
        return made[-1]

    return made, factory


def test_the_rules_cannot_answer_in_one_short_sentence():
    answer = Responder().answer("What is the capital of Australia?")
    assert answer == CANNOT_ANSWER
    assert answer.count(".") == 1 and answer.endswith(".") and len(answer) < 100


def test_discovery_finds_the_server_at_its_port_with_its_model(llama_server):
    nobody = free_port()
    t0 = time.perf_counter()
    servers = discover(ports=((nobody, "nobody"), (llama_server.port, "a test server")))
    assert time.perf_counter() - t0 < 3
    assert len(servers) == 1, servers
    server = servers[0]
    assert server.url == llama_server.url and server.models == (llama_server.model,)
    assert server.name == "llama-cpp-python"  # told by the model list's owned_by
    assert short_model(llama_server.model).startswith("gemma")
    choice = BrainChoice(server.url, server.models[0], server.name)
    assert choice.label == f"offline · llama-cpp-python {short_model(llama_server.model)}"
    assert BrainChoice.from_settings(json.loads(json.dumps(choice.to_settings()))) == choice


def test_the_engine_speaks_the_models_words_as_they_stream(models, llama_server):
    made, factory = _brains(llama_server)

    async def scenario(peer: TimedPeer) -> None:
        await peer.send("conversation.item.create", item=user_text(PROMPT))
        await peer.until("conversation.item.done")
        mark = peer.mark()
        await peer.send("response.create", response={"max_output_tokens": 400})
        done = await peer.until("response.done", timeout=180)
        response = done["response"]
        assert response["status"] in ("completed", "incomplete"), response
        deltas = peer.since(mark, "response.output_audio_transcript.delta")
        transcript = "".join(d["delta"] for d in deltas).strip()
        assert len(deltas) >= 2, transcript  # spoken sentence by sentence, not in one piece
        assert transcript and transcript != CANNOT_ANSWER
        assert peer.since(mark, "response.output_audio.delta")
        # The first sentence was heard while the model was still writing: its first audio came before the
        # model's last words.
        brain = made[-1]
        first_audio = peer.first_time("response.output_audio.delta", mark)
        assert brain.last_piece_at is not None and first_audio < brain.last_piece_at, (first_audio, brain.last_piece_at)
        assert brain.first_piece_s

    run_scenario(models, scenario, brain_factory=factory)


def test_a_cancel_stops_the_models_generation_and_the_speech(models, llama_server):
    made, factory = _brains(llama_server)

    async def scenario(peer: TimedPeer) -> None:
        await peer.send("conversation.item.create", item=user_text(PROMPT))
        await peer.until("conversation.item.done")
        mark = peer.mark()
        await peer.send("response.create")  # no cap: the base model would write on for a long time
        first = await peer.until("response.output_audio.delta", timeout=120)
        response_id = first["response_id"]
        await peer.send("response.cancel")
        done = await peer.until("response.done", timeout=10)
        assert done["response"]["id"] == response_id and done["response"]["status"] == "cancelled", done
        done_at = len(peer.received)
        # The model's server is free at once: the cancelled answer is not being generated behind a new request
        # (llama-cpp-python serves one completion at a time).
        text, seconds = await asyncio.to_thread(complete, llama_server, [{"role": "user", "content": "Hi"}], 4)
        assert seconds < 5, f"the server was still busy with the cancelled answer for {seconds:.1f} s"
        await asyncio.sleep(1.0)
        while True:
            try:
                await peer.recv(0.2)
            except asyncio.TimeoutError:
                break
        after = [e for e in peer.received[done_at:] if e.get("response_id") == response_id]
        assert after == [], [e["type"] for e in after]  # no audio or words for it after its response.done
        brain = made[-1]
        assert brain.closed_early == 1  # the engine closed the model's stream
        assert peer.since(mark, "response.output_audio.delta")

    run_scenario(models, scenario, brain_factory=factory)


def test_choosing_the_server_in_the_window_switches_the_engine(qtbot, qasync_loop, tmp_path, llama_server):
    window, session = window_and_session(qtbot, tmp_path / "settings.json")
    menu = window.brain_menu
    assert menu.menu.menuAction().isVisible()
    menu.ports = ((llama_server.port, "a test server"),)

    def answers() -> list:
        return [i for i in session.client.conversation if i.role == "assistant" and i.text_final]

    async def scenario():
        assert await session.start(), session.status
        assert session.send_text("Repeat after me: the rules answer.")
        assert await wait_until(lambda: len(answers()) == 1, 30)
        assert "the rules answer" in answers()[0].text
        requests_before = llama_server.log_text().count("POST /v1/chat/completions")
        menu.menu.aboutToShow.emit()  # as when the menu opens: the probe runs off the UI thread
        assert await wait_until(lambda: menu.servers is not None, 10)
        action = next(a for a in menu.menu.actions() if a.text().startswith("llama-cpp-python: "))
        first_transport = session.transport
        action.trigger()
        assert await wait_until(lambda: session.transport is not None and session.transport is not first_transport
                                and session.status.phase == "connected", 60), session.status
        label = f"offline · llama-cpp-python {short_model(llama_server.model)}"
        assert session.options.provider.label == label
        assert window.connection_label.text() == f"Connected to {label}"
        assert any(isinstance(n, Notice) and "carried over" in n.message for n in window.notices)
        assert session.send_text(PROMPT)
        assert await wait_until(lambda: len(answers()) == 2, 120)
        answer = answers()[1].text.strip()
        assert answer and answer != CANNOT_ANSWER
        assert llama_server.log_text().count("POST /v1/chat/completions") > requests_before
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    saved = json.loads((tmp_path / "settings.json").read_text())[BRAIN_KEY]
    assert saved == {"url": llama_server.url, "model": llama_server.model, "server": "llama-cpp-python", "has_key": False}


def test_a_chosen_server_gone_at_start_falls_back_to_the_rules_once(qtbot, qasync_loop, tmp_path):
    gone = BrainChoice(f"http://127.0.0.1:{free_port()}/v1", "some-model", "llama.cpp")
    window, session = window_and_session(qtbot, tmp_path / "settings.json", engine_brain=gone)

    async def scenario():
        assert await session.start(), session.status
        assert session.options.provider.label == "offline engine" and session.brain_fallback
        assert session.send_text("Repeat after me: still here.")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final and "still here" in i.text
                                            for i in session.client.conversation), 30)
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    said = [n for n in window.notices if isinstance(n, Notice) and "not answering" in n.message]
    assert len(said) == 1 and gone.url in said[0].message
    assert session.engine.brain_args == []
