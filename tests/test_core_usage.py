"""Token usage from response.done: kept with the answer, summed over the conversation, tolerant of odd shapes."""

from __future__ import annotations

import json

from desktop.core.actions import ItemChanged, UsageUpdated
from desktop.core.conversation import Conversation
from desktop.core.session_config import ServerVad
from desktop.core.usage import TokenUsage, describe_usage, short_count
from desktop.transcript_export import conversation_markdown
from tests.test_core_client import connect, of_type, start_speaking_answer

USAGE = {"total_tokens": 1510, "input_tokens": 1300, "output_tokens": 210,
         "input_token_details": {"text_tokens": 100, "audio_tokens": 1200, "image_tokens": 0, "cached_tokens": 320,
                                 "cached_tokens_details": {"text_tokens": 20, "audio_tokens": 300, "image_tokens": 0}},
         "output_token_details": {"text_tokens": 30, "audio_tokens": 180}}


def _done(server, rid: str, usage) -> str:
    event = server.event("response.done", response={"id": rid, "object": "realtime.response", "status": "completed",
                                                    "status_details": None, "output": [], "usage": usage})
    return json.dumps(event)


def test_usage_is_kept_with_the_answer_and_summed():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    actions = client.receive(_done(server, "resp_1", USAGE))
    (update,) = of_type(actions, UsageUpdated)
    assert update.item_id == "item_a1" and ItemChanged("item_a1") in actions
    answer = client.conversation.get("item_a1")
    assert answer.usage == TokenUsage(input_tokens=1300, output_tokens=210, input_text=100, input_audio=1200,
                                      input_cached=320, input_cached_text=20, input_cached_audio=300,
                                      output_text=30, output_audio=180, responses=1)
    assert describe_usage(answer.usage) == "1,300 tokens in (1,200 audio, 320 cached) · 210 out (180 audio)"

    start_speaking_answer(client, server, rid="resp_2", item="item_a2", user="item_u2")
    (update,) = of_type(client.receive(_done(server, "resp_2", USAGE)), UsageUpdated)
    assert update.total.input_tokens == 2600 and update.total.output_audio == 360 and update.total.responses == 2
    assert client.usage_total == update.total
    assert describe_usage(update.total, short=True) == "2.6k in · 420 out"


def test_odd_usage_shapes_count_what_they_can():
    assert TokenUsage.from_wire(None) == TokenUsage()
    assert TokenUsage.from_wire({"input_tokens": "many", "output_tokens": -3}) == TokenUsage()
    only_details = TokenUsage.from_wire({"input_token_details": {"audio_tokens": 50, "text_tokens": 5},
                                         "output_token_details": {"audio_tokens": 40}})
    assert (only_details.input_tokens, only_details.output_tokens, only_details.responses) == (55, 40, 1)
    # A response without usage (or with zeros) changes nothing and says nothing.
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    assert not of_type(client.receive(_done(server, "resp_1", None)), UsageUpdated)
    assert client.usage_total == TokenUsage()
    assert [short_count(n) for n in (987, 1234, 25_400, 2_500_000)] == ["987", "1.2k", "25k", "2.5M"]


def test_the_saved_transcript_gives_each_answers_tokens_and_the_sum():
    conversation = Conversation()
    previous = None
    for n, role in enumerate(("user", "assistant", "user", "assistant")):
        usage = TokenUsage.from_wire(USAGE) if role == "assistant" else None
        conversation.place(f"item_{n}", previous, role=role, text=f"turn {n}", text_final=True, status="completed",
                           usage=usage)
        previous = f"item_{n}"
    text = conversation_markdown(conversation, "offline engine")
    assert text.count("1,300 tokens in (1,200 audio, 320 cached) · 210 out (180 audio)") == 2
    assert "Token usage of the 2 answers: 2,600 tokens in (2,400 audio, 640 cached) · 420 out (360 audio)" in text
