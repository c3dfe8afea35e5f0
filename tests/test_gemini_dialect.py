"""The Gemini Live dialect with the real core (`RealtimeClient`), sans I/O: the core's events become Gemini's
messages (each validated by the `google-genai` SDK's LiveClientMessage), Gemini's messages (each a valid
LiveServerMessage) become the core's events, and what Gemini cannot do is said, not sent."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from desktop.core import events as ev
from desktop.core.actions import (BargeInHappened, Notice, PlayAudio, Send, SessionChanged, StopPlayback,
                                  ToolCalled, TurnState, UsageUpdated)
from desktop.core.dialects.gemini_live import GeminiLiveDialect, usage_from_gemini
from desktop.core.provider_capabilities import GEMINI
from desktop.core.realtime_client import RealtimeClient
from desktop.core.session_config import ManualTurns, SemanticVad, ServerVad, SessionConfig
from tests.gemini_oracle import check_client_message, check_server_message


class Link:
    """The core and the dialect joined as LiveSession joins them, with the wire recorded."""

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.dialect = GeminiLiveDialect(model="gemini-live-test")
        self.client = RealtimeClient(config or SessionConfig(instructions="Be brief.", voice="Kore"),
                                     capabilities=self.dialect.capabilities)
        self.wire: list[dict] = []
        self.actions: list = []
        self.notices: list[tuple[str, str]] = []

    def apply(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._take(self.dialect.outbound(action.event))
            else:
                self.actions.append(action)

    def _take(self, translation) -> None:
        for message in translation.wire:
            check_client_message(message)
            self.wire.append(message)
        self.notices += translation.notices
        for event in translation.events:
            self.apply(self.client.receive_event(event))

    def server(self, message: dict) -> None:
        check_server_message(message)
        self._take(self.dialect.inbound(json.dumps(message)))

    def connect(self, complete: bool = True) -> dict:
        self.dialect.connected()
        self.apply(self.client.on_connected())
        setup = self.wire[-1]["setup"]
        if complete:
            self.server({"setupComplete": {}})
        return setup

    def sent(self, key: str) -> list[dict]:
        return [m[key] for m in self.wire if key in m]

    def take(self, kind: type) -> list:
        found = [a for a in self.actions if isinstance(a, kind)]
        return found


def speech_chunk(n: int = 480) -> np.ndarray:
    t = np.arange(n) / 24000
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2")


def model_audio(ms: int = 200) -> dict:
    pcm = (np.sin(np.arange(24 * ms) / 7) * 3000).astype("<i2")
    return {"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(pcm.tobytes()).decode()}}]}}}


def answer_turn(link: Link, heard: str = "What time is it?", said: str = "It is noon.") -> None:
    link.server({"serverContent": {"inputTranscription": {"text": heard}}})
    link.server(model_audio())
    link.server({"serverContent": {"outputTranscription": {"text": said}}})
    link.server({"serverContent": {"turnComplete": True},
                 "usageMetadata": {"promptTokenCount": 40, "responseTokenCount": 25, "totalTokenCount": 65,
                                   "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 30},
                                                           {"modality": "TEXT", "tokenCount": 10}],
                                   "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 25}]}})


def test_setup_carries_the_session_settings_and_holds_input_until_setup_complete():
    link = Link(SessionConfig(instructions="Be brief.", voice="kore",
                              turn_detection=ServerVad(threshold=0.5, prefix_padding_ms=40, silence_duration_ms=500)))
    setup = link.connect(complete=False)
    assert setup["model"] == "models/gemini-live-test"
    assert setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Kore"
    detection = setup["realtimeInputConfig"]["automaticActivityDetection"]
    assert detection == {"disabled": False, "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH",
                         "endOfSpeechSensitivity": "END_SENSITIVITY_LOW", "prefixPaddingMs": 40,
                         "silenceDurationMs": 500}
    assert setup["realtimeInputConfig"]["activityHandling"] == "START_OF_ACTIVITY_INTERRUPTS"
    assert "inputAudioTranscription" in setup and "outputAudioTranscription" in setup
    assert setup["contextWindowCompression"] == {"slidingWindow": {}}
    # audio before setupComplete is held, not sent before the setup is answered
    link.apply(link.client.append_audio(speech_chunk(2400)))
    assert len(link.wire) == 1
    link.server({"setupComplete": {}})
    assert link.sent("realtimeInput") and "audio" in link.sent("realtimeInput")[0]
    changed = link.take(SessionChanged)
    assert changed and changed[-1].differences == ()
    assert link.client.effective.voice == "Kore"


def test_microphone_audio_goes_out_at_16_khz():
    link = Link()
    link.connect()
    tone = (np.sin(2 * np.pi * 220 * np.arange(48000) / 24000) * 8000).astype("<i2")
    for n in range(100):  # 2 s in 20 ms chunks at 24 kHz
        link.apply(link.client.append_audio(tone[n * 480:(n + 1) * 480]))
    audio = [m["audio"] for m in link.sent("realtimeInput") if "audio" in m]
    assert {a["mimeType"] for a in audio} == {"audio/pcm;rate=16000"}
    samples = sum(len(base64.b64decode(a["data"])) // 2 for a in audio)
    assert abs(samples - 32000) < 800, samples  # 2 s at 16 kHz, less the resampler's start-up delay
    pcm = np.frombuffer(b"".join(base64.b64decode(a["data"]) for a in audio), "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm[4000:20000]))
    assert abs(np.argmax(spectrum) * 16000 / len(pcm[4000:20000]) - 220) < 2  # the 220 Hz tone is still at 220 Hz


def test_a_spoken_turn_and_its_answer_become_items_with_transcripts_audio_and_usage():
    link = Link()
    link.connect()
    answer_turn(link)
    items = link.client.conversation.items
    assert [i.role for i in items] == ["user", "assistant"]
    assert items[0].text == "What time is it?" and items[0].text_final
    assert items[1].text == "It is noon." and items[1].status == "completed"
    plays = link.take(PlayAudio)
    assert plays and sum(len(p.pcm16) for p in plays) == 4800
    usage = link.take(UsageUpdated)[-1].total
    assert (usage.input_tokens, usage.output_tokens, usage.input_audio, usage.output_audio) == (40, 25, 30, 25)
    assert link.client.active_response is None


def test_gemini_interrupted_is_a_barge_in_and_nothing_is_truncated_on_the_wire():
    link = Link()
    link.connect()
    link.server({"serverContent": {"inputTranscription": {"text": "Tell me a story."}}})
    link.server(model_audio(400))
    link.server({"serverContent": {"outputTranscription": {"text": "Once upon a time there was a fox."}}})
    answer = link.client.conversation.items[-1]
    link.apply(link.client.playback_started(answer.item_id))
    link.server({"serverContent": {"interrupted": True}})
    assert link.take(StopPlayback), "the answer stops playing at once"
    link.apply(link.client.playback_stopped(answer.item_id, 150))
    assert not [m for m in link.wire if "truncate" in json.dumps(m)]
    assert answer.interrupted and answer.model_kept_unheard and answer.heard_text is not None
    assert [b for b in link.take(BargeInHappened) if b.heard_ms == 150]
    # the rest of the interrupted answer, arriving late, is not played
    before = len(link.take(PlayAudio))
    link.server(model_audio(200))
    assert len(link.take(PlayAudio)) == before + 1  # ...a *new* answer would play; the old response is over
    assert link.client.conversation.items[-1].item_id != answer.item_id


def test_late_audio_of_a_cancelled_answer_is_dropped():
    link = Link()
    link.connect()
    link.server({"serverContent": {"inputTranscription": {"text": "Hello"}}})
    link.server(model_audio(200))
    answer = link.client.conversation.items[-1]
    link.apply(link.client.playback_started(answer.item_id))
    plays = len(link.take(PlayAudio))
    link.apply(link.client.cancel_response())  # the user pressed stop: Gemini has no cancel, so nothing is sent
    assert link.take(StopPlayback)
    link.apply(link.client.playback_stopped(answer.item_id, 100))  # as the session reports the stop
    assert not [m for m in link.wire if "cancel" in json.dumps(m).lower()]
    link.server(model_audio(200))  # Gemini goes on generating the same turn
    assert len(link.take(PlayAudio)) == plays
    link.server({"serverContent": {"turnComplete": True}})
    assert link.client.active_response is None and answer.status == "cancelled"


def test_manual_turns_hold_the_audio_until_release_and_esc_discards_it():
    link = Link(SessionConfig(turn_detection=ManualTurns()))
    setup = link.connect()
    assert setup["realtimeInputConfig"]["automaticActivityDetection"] == {"disabled": True}
    for _ in range(25):
        link.apply(link.client.append_audio(speech_chunk()))
    assert not link.sent("realtimeInput"), "nothing leaves before the release"
    link.apply(link.client.clear_input())  # Esc
    assert not link.sent("realtimeInput")
    for _ in range(50):  # 1 s
        link.apply(link.client.append_audio(speech_chunk()))
    link.apply(link.client.commit_turn())
    sent = link.sent("realtimeInput")
    assert "activityStart" in sent[0] and "activityEnd" in sent[-1]
    samples = sum(len(base64.b64decode(m["audio"]["data"])) // 2 for m in sent if "audio" in m)
    assert 15000 < samples <= 16000, samples  # the 1 s after Esc only, at 16 kHz
    assert not [m for m in link.wire if "clientContent" in m], "Gemini answers after activityEnd by itself"
    assert link.client.conversation.items[-1].role == "user"


def test_images_go_as_realtime_video_and_text_as_realtime_text():
    link = Link()
    link.connect()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    link.apply(link.client.send_user_content([ev.image_part(f"data:image/png;base64,{png}"),
                                              ev.text_part("What's on my screen?")]))
    sent = link.sent("realtimeInput")
    assert sent[0] == {"video": {"data": png, "mimeType": "image/png"}}
    assert sent[1] == {"text": "What's on my screen?"}
    assert not link.sent("clientContent")
    assert link.client.conversation.items[-1].role == "user"
    # an image alone asks for the answer with clientContent.turnComplete
    link.apply(link.client.send_user_content([ev.image_part(f"data:image/png;base64,{png}")]))
    assert link.sent("clientContent") == [{"turnComplete": True}]


def test_a_tool_call_and_its_result():
    config = SessionConfig(tools=({"type": "function", "name": "get_time", "description": "The time.",
                                   "parameters": {"type": "object", "properties": {}}},))
    link = Link(config)
    setup = link.connect()
    assert setup["tools"] == [{"functionDeclarations": [
        {"name": "get_time", "description": "The time.", "parametersJsonSchema": {"type": "object", "properties": {}}}]}]
    link.server({"toolCall": {"functionCalls": [{"id": "call-1", "name": "get_time", "args": {"zone": "UTC"}}]}})
    called = link.take(ToolCalled)
    assert called and called[0].call_id == "call-1" and json.loads(called[0].arguments) == {"zone": "UTC"}
    assert link.client.active_response is None, "Gemini waits for the result: the response is over"
    link.apply(link.client.send_tool_output("call-1", json.dumps({"time": "12:00"})))
    assert link.sent("toolResponse") == [{"functionResponses": [
        {"id": "call-1", "name": "get_time", "response": {"time": "12:00"}}]}]
    assert not link.sent("clientContent"), "Gemini answers with the result by itself"
    # a cancelled call's result is not sent
    link.server({"toolCall": {"functionCalls": [{"id": "call-2", "name": "get_time", "args": {}}]}})
    link.server({"toolCallCancellation": {"ids": ["call-2"]}})
    link.apply(link.client.send_tool_output("call-2", "{}"))
    assert len(link.sent("toolResponse")) == 1
    assert any("cancelled" in text for _, text in link.notices)


def test_what_gemini_cannot_do_is_said_not_sent():
    link = Link()
    link.connect()
    answer_turn(link)
    n = len(link.wire)
    answer = link.client.conversation.items[-1]
    link.apply(link.client.delete_item(answer.item_id))
    assert len(link.wire) == n and answer.item_id in link.client.conversation
    assert any("cannot remove" in a.message for a in link.take(Notice))
    link.apply(link.client.answer_again())
    assert link.sent("clientContent") == [{"turnComplete": True}]
    assert any("follows it" in a.message for a in link.take(Notice))
    assert not GEMINI.can_truncate and GEMINI.knob("eagerness").offered is False


def test_a_live_settings_change_waits_for_a_new_session_that_resumes_by_handle():
    link = Link()
    link.connect()
    link.server({"sessionResumptionUpdate": {"newHandle": "handle-1", "resumable": True}})
    answer_turn(link)
    link.apply(link.client.update_session(link.client.requested.with_turn_detection(
        ServerVad(threshold=0.7, prefix_padding_ms=100, silence_duration_ms=900))))
    assert link.dialect.reopen_reason == "settings"
    assert any("next pause" in text for _, text in link.notices)
    assert link.client._updates_in_flight == 0, "the update is answered (with the settings still in effect)"
    link.apply(link.client.on_disconnected())
    setup = link.connect(complete=False)
    assert setup["sessionResumption"] == {"handle": "handle-1"}
    assert setup["realtimeInputConfig"]["automaticActivityDetection"]["startOfSpeechSensitivity"] == \
        "START_SENSITIVITY_LOW"
    assert link.dialect.reopen_reason is None and link.dialect.resumed
    link.server({"setupComplete": {}})
    # carried-over context is not sent again to a session that resumed (it has the conversation)
    link.apply(link.client.reseed_context())
    assert not link.sent("clientContent")


def test_without_a_handle_the_context_is_carried_over_as_history():
    link = Link()
    link.connect()
    answer_turn(link)
    link.apply(link.client.on_disconnected())
    link.connect()
    link.apply(link.client.reseed_context())
    turns = [t for c in link.sent("clientContent") for t in c["turns"]]
    assert [(t["role"], t["parts"][0]["text"]) for t in turns] == [("user", "What time is it?"),
                                                                   ("model", "It is noon.")]
    assert all(c["turnComplete"] is False for c in link.sent("clientContent"))


def test_go_away_asks_for_a_new_connection():
    link = Link()
    link.connect()
    link.server({"goAway": {"timeLeft": "50s"}})
    assert link.dialect.reopen_reason == "go_away" and link.dialect.go_away_ms == 50_000


def test_semantic_vad_is_shown_as_what_gemini_does_instead():
    link = Link(SessionConfig(turn_detection=SemanticVad(eagerness="high")))
    setup = link.connect()
    assert setup["realtimeInputConfig"]["automaticActivityDetection"]["endOfSpeechSensitivity"] == "END_SENSITIVITY_HIGH"
    diffs = link.take(SessionChanged)[-1].differences
    assert any("semantic_vad" in d and "server_vad" in d for d in diffs)


def test_voice_activity_gives_speech_boundaries():
    link = Link()
    link.connect()
    link.server({"voiceActivity": {"type": "ACTIVITY_START", "audioOffset": "1.200s"}})
    assert link.client.state == TurnState.USER_SPEAKING
    link.server({"voiceActivity": {"type": "ACTIVITY_END", "audioOffset": "2.5s"}})
    user = link.client.conversation.items[-1]
    assert user.role == "user" and (user.audio_start_ms, user.audio_end_ms) == (1200, 2500)


def test_bad_messages_are_skipped_and_the_conversation_goes_on():
    link = Link()
    link.connect()
    link._take(link.dialect.inbound("{not json"))
    link._take(link.dialect.inbound(json.dumps({"serverContent": {"modelTurn": {"parts": [
        {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "!!not base64!!"}}]}}})))
    link._take(link.dialect.inbound(json.dumps({"somethingNew": {}})))
    assert link.client.skipped_events == 2
    answer_turn(link)
    assert [i.role for i in link.client.conversation.items][-2:] == ["user", "assistant"]


def test_usage_metadata_mapping():
    usage = usage_from_gemini({"promptTokenCount": 12, "responseTokenCount": 7, "cachedContentTokenCount": 4,
                               "promptTokensDetails": [{"modality": "IMAGE", "tokenCount": 2}]})
    assert usage["input_tokens"] == 12 and usage["output_tokens"] == 7
    assert usage["input_token_details"]["image_tokens"] == 2 and usage["input_token_details"]["cached_tokens"] == 4


def test_the_oracle_rejects_what_gemini_would_reject():
    with pytest.raises(Exception):
        check_client_message({"setup": {"model": "m", "turnDetection": {}}})
    with pytest.raises(Exception):
        check_client_message({"realtimeInput": {"audio": {"data": "AAAA", "mime": "audio/pcm"}}})
    with pytest.raises(Exception):
        check_client_message({"input_audio_buffer.append": {}})


def test_a_finished_input_transcription_is_final_at_once():
    link = Link()
    link.connect()
    link.server({"serverContent": {"inputTranscription": {"text": "Is it raining?", "finished": True}}})
    user = link.client.conversation.items[-1]
    assert user.role == "user" and user.text == "Is it raining?" and user.text_final
    link.server(model_audio())
    link.server({"serverContent": {"turnComplete": True}})
    assert [i.role for i in link.client.conversation.items] == ["user", "assistant"]
    assert user.text == "Is it raining?"


def test_push_to_talk_on_a_session_set_up_with_automatic_detection():
    """Gemini fixes turn detection at setup: pressing push-to-talk mid-session holds the audio, sends it on the
    release with audioStreamEnd (Gemini's detection then ends the turn), and the next session has manual turns."""
    link = Link()
    link.connect()
    link.apply(link.client.update_session(link.client.requested.with_turn_detection(ManualTurns())))
    assert link.dialect.reopen_reason == "settings"
    for _ in range(25):
        link.apply(link.client.append_audio(speech_chunk()))
    assert not link.sent("realtimeInput")
    link.apply(link.client.commit_turn())
    sent = link.sent("realtimeInput")
    assert sent[-1] == {"audioStreamEnd": True} and not [m for m in sent if "activityStart" in m]
    assert sum(len(base64.b64decode(m["audio"]["data"])) // 2 for m in sent if "audio" in m) > 7000
