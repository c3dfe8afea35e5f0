"""What a response costs: the arithmetic by kind (cached audio as cached audio), snapshots priced as their family,
the offline engine free, an unknown model "no price" (not $0), the user's table and the budget; and where the
cost shows: the client's usage notes, the saved Markdown and the series report."""

from __future__ import annotations

import json

import pytest

from desktop.core.actions import UsageUpdated
from desktop.core.conversation import Conversation
from desktop.core.pricing import (
    OFFLINE_MODEL,
    PRICE_FIELDS,
    PUBLISHED,
    CostMeter,
    CostTotal,
    ModelPrice,
    PriceTable,
    budget_text,
    check_price,
    family_of,
    money,
    parse_budget,
)
from desktop.core.series_report import SeriesTurn, cost_line, series_markdown
from desktop.core.session_config import ServerVad, SessionConfig
from desktop.core.usage import TokenUsage
from desktop.engine.session_state import ENGINE_MODEL
from desktop.transcript_export import conversation_markdown
from tests.test_core_client import connect, of_type, start_speaking_answer

#: A response.done usage shaped as in `../shared/realtime-event-shapes.md` (cached input split by kind).
USAGE = {"total_tokens": 1560, "input_tokens": 1350, "output_tokens": 210,
         "input_token_details": {"text_tokens": 100, "audio_tokens": 1200, "image_tokens": 50, "cached_tokens": 330,
                                 "cached_tokens_details": {"text_tokens": 20, "audio_tokens": 300, "image_tokens": 10}},
         "output_token_details": {"text_tokens": 30, "audio_tokens": 180}}
#: A price per kind that no other kind has, so a token priced as the wrong kind changes the sum.
DISTINCT = ModelPrice(text_in=1, cached_text_in=0.1, audio_in=10, cached_audio_in=0.5, image_in=3,
                      cached_image_in=0.3, text_out=20, audio_out=100, as_of="2026-01-01", source="a test table")


def test_each_kind_is_priced_at_its_own_price_and_cached_audio_as_cached_audio():
    usage = TokenUsage.from_wire(USAGE)
    assert (usage.input_cached_text, usage.input_cached_audio, usage.input_cached_image) == (20, 300, 10)
    priced = PriceTable({"test-model": DISTINCT}).price(usage, "test-model")
    # USD per 1M tokens x tokens: the uncached part of each input kind, its cached part, each output kind.
    assert priced.parts == pytest.approx({
        "text_in": 80 * 1 / 1e6, "cached_text_in": 20 * 0.1 / 1e6,
        "audio_in": 900 * 10 / 1e6, "cached_audio_in": 300 * 0.5 / 1e6,
        "image_in": 40 * 3 / 1e6, "cached_image_in": 10 * 0.3 / 1e6,
        "text_out": 30 * 20 / 1e6, "audio_out": 180 * 100 / 1e6})
    assert priced.usd == pytest.approx(0.027955)
    assert priced.label == "$0.0280" and priced.unsplit_cached == 0 and priced.unkinded == 0
    assert (priced.priced_as, priced.as_of, priced.source) == ("test-model", "2026-01-01", "a test table")


def test_the_published_prices_of_gpt_realtime_and_mini_and_their_snapshots():
    usage = TokenUsage.from_wire(USAGE)
    table = PriceTable()
    full = table.price(usage, "gpt-realtime")
    # gpt-realtime: text 4 / 0.40 cached / 16 out, audio 32 / 0.40 / 64, image 5 / 0.50 (USD per 1M).
    assert full.usd == pytest.approx((80 * 4 + 20 * 0.4 + 900 * 32 + 300 * 0.4 + 40 * 5 + 10 * 0.5
                                      + 30 * 16 + 180 * 64) / 1e6)
    assert full.label == "$0.0415"
    snapshot = table.price(usage, "gpt-realtime-2025-08-28")
    assert snapshot.usd == full.usd and snapshot.priced_as == "gpt-realtime" and snapshot.model == "gpt-realtime-2025-08-28"
    mini = table.price(usage, "gpt-realtime-mini-2025-10-06")
    assert mini.priced_as == "gpt-realtime-mini"
    # gpt-realtime-mini: text 0.60 / 0.06 / 2.40, audio 10 / 0.30 / 20, image 0.80 / 0.08.
    assert mini.usd == pytest.approx((80 * 0.6 + 20 * 0.06 + 900 * 10 + 300 * 0.3 + 40 * 0.8 + 10 * 0.08
                                      + 30 * 2.4 + 180 * 20) / 1e6)
    # Cached audio is not cached text: at mini's prices pricing it as text would be cheaper by 300 x 0.24 / 1M.
    as_text = TokenUsage(**{**usage.__dict__, "input_cached_text": 320, "input_cached_audio": 0, "input_text": 400,
                            "input_audio": 900})
    assert table.price(as_text, "gpt-realtime-mini").usd != pytest.approx(mini.usd)
    for name in ("gpt-realtime", "gpt-realtime-mini"):
        entry = PUBLISHED[name]
        assert entry.as_of == "2026-12-07" and "could not be read" in entry.source  # what was not confirmed is said
    assert family_of("gpt-realtime-2.1-mini") == "gpt-realtime-2.1-mini" and family_of(" x-2025-01-02 ") == "x"
    assert table.lookup("GPT-Realtime") is not None  # case aside


def test_the_engine_is_free_and_an_unknown_model_has_no_price():
    usage = TokenUsage.from_wire(USAGE)
    assert OFFLINE_MODEL == ENGINE_MODEL  # the name the engine reports in session.created
    free = PriceTable().price(usage, ENGINE_MODEL)
    assert free.free and free.usd == 0 and free.label == "free (offline)"
    unknown = PriceTable().price(usage, "my-model")
    assert unknown.usd is None and unknown.label == "no price for my-model"
    assert PriceTable().price(usage, None).label == "no price (the server named no model)"


def test_tokens_of_no_stated_kind_are_priced_as_text_and_said_so():
    # Cached tokens without a split: priced as uncached (the upper bound); totals without details: as text.
    odd = TokenUsage.from_wire({"input_tokens": 1000, "output_tokens": 100,
                                "input_token_details": {"audio_tokens": 600, "cached_tokens": 200}})
    priced = PriceTable({"m": DISTINCT}).price(odd, "m")
    assert priced.unsplit_cached == 200 and priced.unkinded == 400 + 100
    assert priced.parts == pytest.approx({"text_in": 400 / 1e6, "audio_in": 6000 / 1e6, "text_out": 2000 / 1e6})
    total = CostTotal()
    total.add(priced)
    assert "200 cached tokens the server did not split by kind are priced as uncached" in total.details()
    assert "500 tokens of no stated kind are priced as text" in total.details()


def test_a_conversations_total_names_what_it_could_not_price():
    usage = TokenUsage.from_wire(USAGE)
    meter = CostMeter(PriceTable({"m": DISTINCT}))
    assert meter.total.label == ""
    meter.add(usage, ENGINE_MODEL)
    assert meter.total.label == "free (offline)"
    meter.add(usage, "m")
    meter.add(usage, "m-2026-03-04")
    assert meter.total.label == "$0.0559"
    meter.add(usage, "other")
    assert meter.total.label == "$0.0559 + no price for other"
    details = meter.total.details()
    assert details.startswith("Cost of 4 responses in this conversation: $0.0559 + no price for other")
    assert "  audio out: $0.0360" in details and "  cached audio in: $0.0003" in details
    assert "Prices of m, 2026-01-01: a test table" in details and "Input transcription is billed apart" in details
    assert "1 not counted: no price for other" in details
    # A new table prices the conversation so far again.
    meter.set_table(PriceTable({"other": DISTINCT}))
    assert meter.total.label == "$0.0280 + no price for m, m-2026-03-04"
    only_unknown = CostMeter()
    only_unknown.add(usage, "other")
    assert only_unknown.total.label == "no price for other"


def test_the_budget_is_reached_once_until_it_is_changed():
    usage = TokenUsage.from_wire(USAGE)  # $0.027955 a response at DISTINCT
    meter = CostMeter(PriceTable({"m": DISTINCT}), budget_usd=0.05)
    meter.add(usage, "m")
    assert not meter.over_budget and not meter.budget_reached()
    meter.add(usage, "m")
    assert meter.over_budget and meter.budget_reached()
    meter.add(usage, "m")
    assert meter.over_budget and not meter.budget_reached()  # said once
    meter.set_budget(0.10)
    assert not meter.budget_reached()
    meter.add(usage, "m")
    assert meter.budget_reached()  # 4 x 0.027955 >= 0.10
    meter.reset()
    assert meter.total.usd == 0 and not meter.over_budget
    meter.set_budget(None)
    meter.add(usage, "m")
    assert not meter.budget_reached()
    free = CostMeter(budget_usd=0.01)
    free.add(usage, ENGINE_MODEL)
    assert not free.budget_reached()


def test_the_users_table_is_kept_as_changes_to_the_published_one():
    changed = PriceTable({**PUBLISHED, "gpt-realtime": ModelPrice(**{**PUBLISHED["gpt-realtime"].to_record(),
                                                                     "audio_out": 50.0}),
                          "mine": DISTINCT})
    saved = json.loads(json.dumps(changed.overrides()))  # through the settings file's JSON
    assert set(saved) == {"gpt-realtime", "mine"} and saved["gpt-realtime"]["audio_out"] == 50.0
    again, problems = PriceTable.from_setting(saved)
    assert problems == [] and again.prices["gpt-realtime"].audio_out == 50.0 and again.prices["mine"] == DISTINCT
    assert again.prices["gpt-realtime-mini"] == PUBLISHED["gpt-realtime-mini"]
    # A damaged entry is left out, said why, and the published price stays.
    broken, problems = PriceTable.from_setting({"gpt-realtime": {"audio_out": "lots"}, "neg": {"text_in": -1}})
    assert broken.prices["gpt-realtime"] == PUBLISHED["gpt-realtime"] and "neg" not in broken.prices
    assert problems == ["The saved price of gpt-realtime was not used: audio out: 'lots' is not a number of dollars.",
                        "The saved price of neg was not used: text in: a price cannot be below 0."]
    assert PriceTable.from_setting("nonsense")[1] == ["The saved prices were not a table; the published prices are used."]
    assert PriceTable.from_setting(None) == (PriceTable(), [])
    assert [check_price(v) for v in ("$0.40", " 32 ", 64, "")] == [0.4, 32.0, 64.0, 0.0]
    with pytest.raises(ValueError, match="is it per 1M tokens"):
        check_price(32_000_000)
    assert parse_budget("$0.50") == 0.5 and parse_budget("") is None and parse_budget("none") is None
    for bad, reason in (("fifty cents", "not an amount of dollars"), ("0", "more than \\$0"), ("-1", "more than")):
        with pytest.raises(ValueError, match=reason):
            parse_budget(bad)
    assert [budget_text(v) for v in (0.5, 2, 0.0125)] == ["$0.50", "$2.00", "$0.0125"]
    assert [money(v) for v in (0, 0.00001, 0.0123, 0.5, 12.345)] == ["$0.00", "<$0.0001", "$0.0123", "$0.5000",
                                                                     "$12.35"]
    assert len(PRICE_FIELDS) == 8 and all(hasattr(DISTINCT, f) for f in PRICE_FIELDS)


def test_the_usage_note_carries_the_response_and_the_model_that_answered():
    client, server = connect(ServerVad())
    client.receive(json.dumps(server.session_updated(SessionConfig(turn_detection=ServerVad(),
                                                                   model="gpt-realtime-2025-08-28"))))
    start_speaking_answer(client, server)
    done = server.event("response.done", response={"id": "resp_1", "object": "realtime.response",
                                                   "status": "completed", "status_details": None, "output": [],
                                                   "usage": USAGE})
    (note,) = of_type(client.receive(json.dumps(done)), UsageUpdated)
    assert note.usage == TokenUsage.from_wire(USAGE) and note.model == "gpt-realtime-2025-08-28"
    assert client.conversation.get("item_a1").model == "gpt-realtime-2025-08-28"
    # A response.done for a response the client never saw (out of band, or after a reconnect) is still counted.
    stray = server.event("response.done", response={"id": "resp_unknown", "object": "realtime.response",
                                                    "status": "completed", "status_details": None, "output": [],
                                                    "usage": USAGE})
    (note,) = of_type(client.receive(json.dumps(stray)), UsageUpdated)
    assert note.item_id is None and note.usage.input_tokens == 1350 and client.usage_total.responses == 2


def test_the_saved_markdown_and_the_series_report_give_each_answers_cost_and_the_total():
    conversation = Conversation()
    previous = None
    for n, (role, model) in enumerate((("user", None), ("assistant", "gpt-realtime-2025-08-28"), ("user", None),
                                       ("assistant", None))):
        conversation.place(f"item_{n}", previous, role=role, text=f"turn {n}", text_final=True, status="completed",
                           usage=TokenUsage.from_wire(USAGE) if role == "assistant" else None, model=model)
        previous = f"item_{n}"
    text = conversation_markdown(conversation, "OpenAI gpt-realtime-mini", prices=PriceTable(),
                                 model="gpt-realtime-mini")
    assert "· 210 out (180 audio), $0.0415)" in text  # priced as the model that answered
    assert "· 210 out (180 audio), $0.0128)" in text  # no model in its session: the provider's
    assert "Cost of the 2 answers: $0.0543 (prices of gpt-realtime as of 2026-12-07) " \
           "(prices of gpt-realtime-mini as of 2026-12-07)" in text
    assert "$0" not in conversation_markdown(conversation, "x")  # without prices, tokens only

    turns = [SeriesTurn("1.wav", "/1.wav", "answered", "hi", "hello", 400, 1350, 210, cost="$0.0415", cost_usd=0.0415),
             SeriesTurn("2.wav", "/2.wav", "no turn"),
             SeriesTurn("3.wav", "/3.wav", "answered", "hi", "hello", 400, 1350, 210, cost="$0.0040", cost_usd=0.004),
             SeriesTurn("4.wav", "/4.wav", "answered", "hi", "hello", 400, 1350, 210, cost="no price for x")]
    report = series_markdown(turns, started="2026-12-07 10:00:00", provider="OpenAI", settings="server VAD")
    rows = [line for line in report.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows[0].endswith("| 1350 / 210 | $0.0415 |") and rows[1].endswith("| — | — |")
    assert rows[3].endswith("| no price for x |")
    assert "- cost: $0.0455 for 2 answers; no price for x (response tokens only" in report
    assert cost_line([SeriesTurn("a", "a", cost="free (offline)", cost_usd=0.0)]) == "free (offline) for 1 answer"
    assert cost_line([SeriesTurn("a", "a")]) == ""
