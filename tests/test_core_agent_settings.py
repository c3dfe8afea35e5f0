"""Instructions, voice, speed and noise reduction (desktop.core.agent_settings) and how the sans-I/O client
sends them: blank means the server's default, and a session that has spoken keeps its voice."""

from __future__ import annotations

import json

from desktop.core import events as ev
from desktop.core.agent_settings import AgentSettings, describe_agent
from desktop.core.realtime_client import RealtimeClient
from desktop.core.session_config import ServerVad, SessionConfig
from tests.test_core_client import ScriptedServer, sends, start_speaking_answer

SERVER_DEFAULT = SessionConfig(instructions="Be a helpful assistant.", voice="alloy", speed=1.0,
                               noise_reduction="off", turn_detection=ServerVad())


def _created(server: ScriptedServer, config: SessionConfig) -> str:
    return json.dumps(server.event("session.created", session=config.to_wire()))


def test_blank_settings_send_nothing_before_the_server_told_its_defaults():
    wire = AgentSettings().session_config(SessionConfig()).to_wire()
    assert "instructions" not in wire
    assert set(wire["audio"]["output"]) == {"format"}
    assert "noise_reduction" not in wire["audio"]["input"]


def test_settings_reach_the_wire():
    agent = AgentSettings(instructions="  You are Ada, a terse pirate. ", voice="coral", speed=1.25,
                          noise_reduction="far_field")
    wire = agent.session_config(SessionConfig(turn_detection=ServerVad(threshold=0.7))).to_wire()
    assert wire["instructions"] == "You are Ada, a terse pirate."
    assert wire["audio"]["output"]["voice"] == "coral"
    assert wire["audio"]["output"]["speed"] == 1.25
    assert wire["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    assert wire["audio"]["input"]["turn_detection"]["threshold"] == 0.7  # the rest of the session is kept
    assert SessionConfig.from_wire(wire).speed == 1.25
    assert describe_agent(SessionConfig.from_wire(wire)) == (
        "voice coral · speed 1.25× · instructions: 6 words · noise reduction far field · transcription gpt-4o-mini-transcribe")


def test_text_answers_and_transcription_choices_reach_the_wire():
    wire = AgentSettings(answer_mode="text", transcription="whisper-1", language=" EN ").session_config(SessionConfig()).to_wire()
    assert wire["output_modalities"] == ["text"]
    assert wire["audio"]["input"]["transcription"] == {"model": "whisper-1", "language": "en"}
    off = AgentSettings(transcription="off").session_config(SessionConfig()).to_wire()
    assert off["audio"]["input"]["transcription"] is None and off["output_modalities"] == ["audio"]
    assert SessionConfig.from_wire(off).transcription_model == ""
    assert describe_agent(SessionConfig.from_wire(off)).endswith("no transcription")
    assert AgentSettings().session_config(SessionConfig(transcription_model="x")).transcription_model == "gpt-4o-mini-transcribe"
    assert AgentSettings.from_dict({"answer_mode": "video", "language": "far too long"}) == AgentSettings()


def test_clearing_a_field_brings_the_servers_default_back():
    agent = AgentSettings()  # everything blank again after the user had set values
    config = agent.session_config(SessionConfig(instructions="old", voice="coral", speed=1.4,
                                                noise_reduction="near_field"), SERVER_DEFAULT)
    wire = config.to_wire()
    assert wire["instructions"] == "Be a helpful assistant."
    assert wire["audio"]["output"]["voice"] == "alloy"
    assert wire["audio"]["output"]["speed"] == 1.0
    assert wire["audio"]["input"]["noise_reduction"] is None  # null: the filter off, as the server had it
    assert SessionConfig.from_wire(wire).noise_reduction == "off"


def test_stored_settings_are_read_tolerantly():
    assert AgentSettings.from_dict(None) == AgentSettings()
    assert AgentSettings.from_dict({"speed": 3.0, "voice": 5, "noise_reduction": "loud", "instructions": 1}) == AgentSettings()
    assert AgentSettings.from_dict({"speed": True}) == AgentSettings()
    stored = AgentSettings(instructions="Hi", voice="sage", speed=0.75, noise_reduction="near_field")
    assert AgentSettings.from_dict(json.loads(json.dumps(stored.to_dict()))) == stored
    assert len(AgentSettings.from_dict({"instructions": "x" * 100_000}).instructions) == 32_000


def test_a_session_that_has_spoken_keeps_its_voice_and_the_next_one_takes_it():
    client = RealtimeClient(SessionConfig(voice="alloy"), ev.ClientEvents(ev.EventIds("t")))
    server = ScriptedServer()
    (first,) = sends(client.on_connected())
    assert first["session"]["audio"]["output"]["voice"] == "alloy"  # before any audio: sent
    client.receive(_created(server, SERVER_DEFAULT))
    assert client.server_defaults == SessionConfig.from_wire(SERVER_DEFAULT.to_wire())
    client.receive(json.dumps(server.session_updated(SessionConfig(voice="alloy"))))
    start_speaking_answer(client, server)
    assert client.session_spoke

    wanted = AgentSettings(voice="coral", speed=1.2).session_config(client.requested, client.server_defaults)
    (update,) = sends(client.update_session(wanted))
    assert "voice" not in update["session"]["audio"]["output"]  # the whole update would be refused with it
    assert update["session"]["audio"]["output"]["speed"] == 1.2  # the rest still applies at once
    client.receive(json.dumps(server.session_updated(SessionConfig(voice="alloy", speed=1.2))))
    assert client.voice_waits and client.requested.voice == "coral"

    # A turn-detection change later still leaves the voice out.
    (update,) = sends(client.update_session(client.requested.with_turn_detection(ServerVad(threshold=0.8))))
    assert "voice" not in update["session"]["audio"]["output"]

    # The next session (a reconnect) starts with the new voice.
    client.on_disconnected()
    (first,) = sends(client.on_connected())
    assert first["session"]["audio"]["output"]["voice"] == "coral"
    assert not client.session_spoke and client.server_defaults is None
    client.receive(_created(server, SERVER_DEFAULT))
    client.receive(json.dumps(server.session_updated(SessionConfig(voice="coral", speed=1.2))))
    assert not client.voice_waits


def test_the_offline_responder_answers_to_the_name_the_instructions_give():
    from desktop.engine.responder import persona_name

    assert persona_name("You are Ada, a terse pirate.") == "Ada"
    assert persona_name("Your name is Max. Be brief.") == "Max"
    assert persona_name("You are a helpful assistant. You are speaking to kids.") is None
    assert persona_name("You are The Oracle") is None
    assert persona_name(None) is None
    # The engine's own default instructions ("You are Parley's offline engine...") name no persona.
    from desktop.engine.session_state import default_session

    assert persona_name(default_session("sess_1")["instructions"]) is None
