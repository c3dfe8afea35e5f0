"""Unit tests of desktop.core.conversation: items are placed by item_id / previous_item_id, not arrival order."""

from __future__ import annotations

from desktop.core.conversation import Conversation, ConversationItem


def ids(conv: Conversation) -> list[str]:
    return [item.item_id for item in conv]


def test_items_placed_after_their_previous_item():
    conv = Conversation()
    conv.place("a", None, role="user")
    conv.place("b", "a", role="assistant")
    conv.place("c", "b", role="user")
    # Inserted in the middle, after "a": goes before "b".
    conv.place("x", "a", role="system")
    assert ids(conv) == ["a", "x", "b", "c"]
    assert conv.get("x").role == "system"
    assert conv.index_of("c") == 3
    assert len(conv) == 4 and "x" in conv and "zz" not in conv
    assert conv.last_item_id == "c"


def test_null_previous_item_id_means_first():
    conv = Conversation()
    conv.place("a", None)
    conv.place("b", None)
    assert ids(conv) == ["b", "a"]


def test_item_waiting_for_unknown_predecessor_moves_when_it_arrives():
    conv = Conversation()
    conv.place("u1", None, role="user")
    conv.place("a1", "u1", role="assistant")
    # "a2" says it follows "u2", which the client has not seen yet: shown at the end for now.
    conv.place("a2", "u2", role="assistant")
    conv.place("z", "a1", role="user")
    assert ids(conv) == ["u1", "a1", "z", "a2"]
    # "u2" arrives after "a1": "a2" moves right after it.
    conv.place("u2", "a1", role="user")
    assert ids(conv) == ["u1", "a1", "u2", "a2", "z"]


def test_chain_of_waiting_items_resolves():
    conv = Conversation()
    conv.place("c", "b")
    conv.place("b", "a")
    assert ids(conv) == ["b", "c"]  # "c" waited for "b" and moved after it
    conv.place("a", None)
    assert ids(conv) == ["a", "b", "c"]


def test_late_transcript_of_user_turn_stays_before_the_answer():
    conv = Conversation()
    conv.update_from_wire({"id": "u1", "type": "message", "role": "user",
                           "content": [{"type": "input_audio", "transcript": None}]}, None, explicit=True)
    conv.update_from_wire({"id": "a1", "type": "message", "role": "assistant", "status": "in_progress",
                           "content": []}, "u1", explicit=True)
    # The transcript (ensure: no placement info) arrives after the answer started.
    user = conv.ensure("u1", "user")
    user.text = "what time is it"
    assert ids(conv) == ["u1", "a1"]
    assert conv.get("u1").has_audio is True
    assert conv.get("a1").role == "assistant" and conv.get("a1").status == "in_progress"


def test_ensure_appends_unknown_item_and_a_later_explicit_placement_moves_it():
    conv = Conversation()
    conv.place("u1", None, role="user")
    conv.place("a1", "u1", role="assistant")
    conv.ensure("u2", "user").text = "hello"  # transcript delta before the item was announced
    conv.place("a0", "u1", role="assistant")
    assert ids(conv) == ["u1", "a0", "a1", "u2"]
    conv.place("u2", "u1", role="user")  # committed event: belongs right after u1
    assert ids(conv) == ["u1", "u2", "a0", "a1"]
    assert conv.get("u2").text == "hello"


def test_non_explicit_update_keeps_existing_position():
    conv = Conversation()
    conv.place("a", None)
    conv.place("b", "a")
    conv.place("a", "b", explicit=False, text="kept")
    assert ids(conv) == ["a", "b"]
    assert conv.get("a").text == "kept"


def test_update_from_wire_reads_text_role_and_status():
    conv = Conversation()
    typed = conv.update_from_wire({"id": "t", "type": "message", "role": "user",
                                   "content": [{"type": "input_text", "text": "Hi"},
                                               {"type": "input_text", "text": "there"}]}, None, explicit=True)
    assert typed.text == "Hi there" and typed.text_final and not typed.has_audio
    call = conv.update_from_wire({"id": "f", "type": "function_call", "name": "x", "arguments": "{}"}, "t", explicit=True)
    assert call.role == "tool" and call.kind == "function_call"
    assert conv.update_from_wire({"type": "message"}, None, explicit=True) is None
    assert conv.update_from_wire({"id": 5}, None, explicit=True) is None
    done = conv.update_from_wire({"id": "a", "type": "message", "role": "assistant", "status": "completed",
                                  "content": [{"type": "output_audio", "transcript": "Hello."}]}, "f", explicit=True)
    assert done.has_audio and done.text == "Hello." and done.status == "completed"
    assert ids(conv) == ["t", "f", "a"]


def test_cancelled_status_is_not_overwritten():
    conv = Conversation()
    item = conv.place("a", None, role="assistant")
    item.status = "cancelled"
    conv.update_from_wire({"id": "a", "type": "message", "role": "assistant", "status": "incomplete", "content": []},
                          None, explicit=False)
    assert conv.get("a").status == "cancelled"


def test_delete():
    conv = Conversation()
    conv.place("a", None)
    conv.place("b", "a")
    assert conv.delete("a") is True
    assert conv.delete("a") is False
    assert ids(conv) == ["b"]


def test_new_server_session_places_first_item_after_restored_history():
    conv = Conversation()
    conv.restore([ConversationItem("old1", role="user", text="hi"), ConversationItem("old2", role="assistant")])
    conv.place("n1", None, role="user")
    assert ids(conv) == ["old1", "old2", "n1"]
    conv.place("n2", "n1")
    conv.begin_server_session()
    conv.place("m1", None)
    assert ids(conv) == ["old1", "old2", "n1", "n2", "m1"]


def test_heard_and_unheard_text():
    item = ConversationItem("a", role="assistant", text="Once upon a time there was a dragon")
    assert not item.interrupted and item.unheard_text == ""
    item.truncated_at_ms = 500
    item.heard_text = "Once upon a time"
    assert item.interrupted
    assert item.unheard_text == " there was a dragon"
