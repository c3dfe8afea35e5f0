"""Agent profiles: instructions, voice, tools and turn detection saved under a name, switched at once (one
session.update to the real engine), exported to a JSON file and imported again; bad files say why."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from desktop.core import turn_taking as tt
from desktop.core.agent_profiles import AgentProfile, ProfileProblem, profiles_from_store
from desktop.core.agent_settings import AgentSettings
from desktop.core.tools import EXAMPLE_TOOL, ToolSettings
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow
from tests.waiting import wait_until
from tests.window_session import window_and_session


def test_profiles_round_trip_and_bad_files_say_why():
    profile = AgentProfile("Support", AgentSettings(instructions="You are Ada.", speed=1.1),
                           ToolSettings((EXAMPLE_TOOL,), choice="required"), tt.TurnSettings().with_profile("patient"))
    assert AgentProfile.from_json(profile.to_json()) == profile
    assert AgentProfile.from_json(json.dumps(replace(profile, name="x").to_dict() | {"name": ""}), "file stem").name == "file stem"
    with pytest.raises(ProfileProblem, match="not valid JSON"):
        AgentProfile.from_json("{")
    with pytest.raises(ProfileProblem, match="not a Parley agent profile"):
        AgentProfile.from_json('{"instructions": "hi"}')
    with pytest.raises(ProfileProblem, match="too large"):
        AgentProfile.from_json(" " * 1_000_001)
    damaged = profile.to_dict() | {"agent": {"speed": 9}, "turn": "junk"}
    assert AgentProfile.from_dict(damaged).agent == AgentSettings() and AgentProfile.from_dict(damaged).turn == tt.TurnSettings()
    assert list(profiles_from_store([profile.to_dict(), {"format": "other"}, 3])) == ["Support"]


def test_profiles_switch_the_whole_agent_in_the_window(qtbot, qasync_loop, tmp_path):
    store_path = tmp_path / "settings.json"
    window, session = window_and_session(qtbot, store_path, show=False)
    ui, dock, turn_dock = window.agent_ui, window.agent_ui.dock, window.turn_ui.dock

    async def scenario():
        assert await session.start(), session.status
        # "Support": instructions, the weather tool, the patient turn profile.
        dock.instructions.setPlainText("You are Ada, a support agent.")
        dock.apply_instructions()
        ui.tools.add_example()
        turn_dock.profile.setCurrentIndex(turn_dock.profile.findData("patient"))
        assert window.turn_ui.dock.settings().profile == "patient"
        ui.save_profile("Support")
        # "Booking": other instructions, no tools, the fast turn profile.
        dock.instructions.setPlainText("You are Max, you book tables.")
        dock.apply_instructions()
        ui.tools.list.setCurrentRow(0)
        ui.tools.remove_selected()
        turn_dock.profile.setCurrentIndex(turn_dock.profile.findData("fast"))
        ui.save_profile("Booking")
        assert [ui.profile_bar.combo.itemText(i) for i in range(1, ui.profile_bar.combo.count())] == ["Booking", "Support"]

        sent = len(session.sent_events)
        ui.load_profile("Support")
        updates = [e["session"] for e in session.sent_events[sent:] if e["type"] == "session.update"]
        assert updates and updates[0]["instructions"] == "You are Ada, a support agent."
        assert [t["name"] for t in updates[0]["tools"]] == ["get_weather"]
        assert turn_dock.settings().profile == "patient"
        assert updates[-1]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == tt.TurnSettings().with_profile("patient").silence_duration_ms
        assert dock.instructions.toPlainText() == "You are Ada, a support agent." and ui.tools.list.count() == 1
        assert await wait_until(lambda: getattr(session.client.effective, "instructions", None) == "You are Ada, a support agent.", 10)
        await session.stop()

    qasync_loop.run_until_complete(scenario())

    # Export, delete, import: it comes back (under the same name) and is applied.
    exported = tmp_path / "support.json"
    assert ui.export_profile(str(exported), "Support")
    assert json.loads(exported.read_text())["format"] == "parley-agent/1"
    ui.delete_profile("Support")
    assert "Support" not in ui.profiles
    ui.load_profile("Booking")
    assert ui.import_profile(str(exported)).name == "Support"
    assert dock.instructions.toPlainText() == "You are Ada, a support agent."
    # Importing a changed copy keeps both, numbered.
    changed = json.loads(exported.read_text()) | {"agent": {"instructions": "Changed."}}
    exported.write_text(json.dumps(changed))
    assert ui.import_profile(str(exported)).name == "Support (2)"
    # A file that is not a profile: an error notice, nothing changes.
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    assert ui.import_profile(str(tmp_path / "bad.json")) is None
    assert "not a Parley agent profile" in window.notice_label.text()

    # Kept for the next run, with the one last chosen shown.
    again = MainWindow(settings=Settings.load(store_path), keep_layout=False)
    qtbot.addWidget(again)
    assert sorted(again.agent_ui.profiles) == ["Booking", "Support", "Support (2)"]
    assert again.agent_ui.profile_bar.current() == "Support (2)"
    assert again.agent_ui.dock.settings().instructions == "Changed."
