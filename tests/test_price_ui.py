"""The conversation's cost in the window, with the real engine: a typed turn on the engine is free; with a price
table for a model and that model's usage events, the status bar shows the figure, the dialog edits the table
and the budget (kept in the settings), and reaching the budget mutes the microphone once."""

from __future__ import annotations

import json

import pytest

from desktop.core.pricing import BUDGET_KEY, PRICES_KEY, PUBLISHED
from desktop.settings import Settings
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow

#: A response.done usage as the GA API sends it (`../shared/realtime-event-shapes.md`).
USAGE = {"total_tokens": 1510, "input_tokens": 1300, "output_tokens": 210,
         "input_token_details": {"text_tokens": 100, "audio_tokens": 1200, "image_tokens": 0, "cached_tokens": 320,
                                 "cached_tokens_details": {"text_tokens": 20, "audio_tokens": 300, "image_tokens": 0}},
         "output_token_details": {"text_tokens": 30, "audio_tokens": 180}}
#: Distinct prices per kind (USD per 1M tokens), so a token priced as the wrong kind shows in the sum.
MY_PRICES = {"text_in": "1", "cached_text_in": "0.1", "audio_in": "10", "cached_audio_in": "0.5", "image_in": "3",
             "cached_image_in": "0.3", "text_out": "20", "audio_out": "100"}
#: USAGE at MY_PRICES: 80 text, 20 cached text, 900 audio, 300 cached audio in; 30 text, 180 audio out.
ONE_RESPONSE_USD = (80 * 1 + 20 * 0.1 + 900 * 10 + 300 * 0.5 + 30 * 20 + 180 * 100) / 1e6  # 0.027832


def _inject(session, event: dict) -> None:
    """A server event, as the transport hands it to the session."""
    session._on_message(json.dumps({"event_id": f"event_test_{id(event)}", **event}))


def _say_the_model_is(session, model: str) -> None:
    wire = session.client.effective.to_wire()
    wire["model"] = model
    _inject(session, {"type": "session.updated", "session": wire})


def _response_done(session, n: int) -> None:
    _inject(session, {"type": "response.done", "response": {
        "id": f"resp_priced_{n}", "object": "realtime.response", "status": "completed", "status_details": None,
        "output": [], "usage": USAGE}})


def test_a_typed_turn_on_the_engine_is_free_and_a_new_conversation_starts_over(qtbot, qasync_loop, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    window, session = window_and_session(qtbot, tmp_path / "settings.json")
    assert window.cost_label.text() == ""

    async def scenario():
        assert await session.start(), session.status
        try:
            assert session.send_text("Repeat after me: the price of silence.")
            assert await wait_until(lambda: window.cost_label.text() != "", 30), window.transcript_text()
            label, tip = window.cost_label.text(), window.cost_label.toolTip()
            assert window.save_transcript(tmp_path / "saved.md")
            window.new_action.trigger()  # Ctrl+N
            assert await wait_until(lambda: window.cost_label.text() == "", 20)
            return label, tip
        finally:
            await session.stop()

    label, tip = qasync_loop.run_until_complete(scenario())
    assert label == "free (offline)"
    assert "answered by the offline engine" in tip
    # The saved Markdown says so next to the answer's tokens, and for the conversation.
    saved = (tmp_path / "saved.md").read_text(encoding="utf-8")
    assert "out (" in saved and " · free (offline)" not in saved  # item_meta joins with ", "
    assert ", free (offline)" in saved and "Cost of the 1 answer: free (offline)" in saved

def test_prices_from_the_dialog_price_the_usage_and_the_budget_mutes(qtbot, qasync_loop, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings_path = tmp_path / "settings.json"
    window, session = window_and_session(qtbot, settings_path)

    async def scenario():
        assert await session.start(), session.status
        try:
            assert await wait_until(lambda: session.client.effective is not None, 10)
            # A model the table has no price for: said so, not $0.
            _say_the_model_is(session, "my-voice-model-2026-01-02")
            _response_done(session, 1)
            no_price = window.cost_label.text()

            # Connection → Prices and budget…: add the model's family, with a budget of three responses' worth.
            assert window.cost_ui.action.text() == "Prices and budget…"
            window.cost_ui.action.trigger()
            dialog = window.cost_ui.dialog
            assert dialog is not None and dialog.isVisible()
            dialog.add_button.click()
            row = dialog.grid.rowCount() - 1
            dialog.grid.item(row, 0).setText("my-voice-model")
            fields = ["text_in", "cached_text_in", "audio_in", "cached_audio_in", "image_in", "cached_image_in",
                      "text_out", "audio_out"]
            dialog.grid.item(row, 1).setText("one dollar")  # not a price: named, the dialog stays open
            dialog.budget_edit.setText("0.08")
            dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
            refused = (dialog.isVisible(), dialog.error_label.text())
            for col, f in enumerate(fields, 1):
                dialog.grid.item(row, col).setText(MY_PRICES[f])
            dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
            assert not dialog.isVisible()
            repriced = window.cost_label.text()  # the response so far, priced again

            _response_done(session, 2)
            two = window.cost_label.text()
            muted_before = session.muted
            _response_done(session, 3)  # 3 x 0.027832 = 0.0835 >= 0.08
            muted_at_budget = session.muted
            budget_notice = window.notice_label.text()
            window.mute_action.trigger()  # the user unmutes by hand: allowed
            _response_done(session, 4)
            return (no_price, refused, repriced, two, muted_before, muted_at_budget, budget_notice, session.muted,
                    window.cost_label.text(), window.cost_label.toolTip())
        finally:
            await session.stop()

    (no_price, refused, repriced, two, muted_before, muted_at_budget, notice, muted_after, four,
     tip) = qasync_loop.run_until_complete(scenario())
    assert no_price == "no price for my-voice-model-2026-01-02"
    assert refused[0] and "my-voice-model, text in" in refused[1] and "not a number" in refused[1]
    assert repriced == f"${ONE_RESPONSE_USD:.4f}" == "$0.0278"
    assert two == f"${2 * ONE_RESPONSE_USD:.4f}" == "$0.0557"
    assert not muted_before and muted_at_budget
    assert "Budget of $0.08 reached: microphone muted" in notice and "raise the budget" in notice
    assert not muted_after  # announced once: the hand-unmuted microphone stays on
    assert four == f"${4 * ONE_RESPONSE_USD:.4f}"
    assert "audio out: $0.0720" in tip and "Prices of my-voice-model" in tip and "edited by you" in tip
    assert "Budget: $0.08" in tip
    # Kept: the added model and the budget are in the settings file; the published rows are not copied there.
    saved = Settings.load(settings_path)
    assert saved.get(BUDGET_KEY) == 0.08
    assert set(saved.get(PRICES_KEY)) == {"my-voice-model"}
    assert saved.get(PRICES_KEY)["my-voice-model"]["audio_out"] == 100.0
    # A new window on the same settings prices with them; Reset to published prices drops the added model.
    again, _session = window_and_session(qtbot, settings_path)
    assert again.cost_ui.table.lookup("my-voice-model-2026-01-02") is not None
    assert again.cost_ui.meter.budget_usd == 0.08
    assert again.cost_ui.edit_prices().budget_edit.text() == "0.08"
    dialog = again.cost_ui.edit_prices()
    dialog.reset_to_published()
    assert dialog.grid.rowCount() == len(PUBLISHED)
    assert dialog.try_accept()
    assert Settings.load(settings_path).get(PRICES_KEY) == {}
    assert again.cost_ui.table.lookup("my-voice-model") is None
