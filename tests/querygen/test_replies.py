"""Parsing model replies: strict about the shape, tolerant of fences and prose."""

from __future__ import annotations

import pytest

from osft.querygen.replies import UnparseableReply, parse_reply

KINDS = ("factoid", "conceptual")


@pytest.mark.parametrize(
    "reply",
    [
        '{"queries": [{"type": "factoid", "query": "a b c"}, {"type": "conceptual", "query": "d e f"}]}',
        'Here are the queries:\n```json\n{"queries": [{"type": "factoid", "query": "a b c"}, '
        '{"type": "conceptual", "query": "d e f"}]}\n```\nHope this helps!',
        'Sure. {"queries": [{"query": "a b c"}, {"query": "d e f"}]} Let me know.',
        '["a b c", "d e f"]',
    ],
    ids=["strict", "fenced-with-prose", "prose-around-object", "bare-list"],
)
def test_reply_shapes_that_are_tolerated(reply):
    assert parse_reply(reply, KINDS) == [("a b c", "factoid"), ("d e f", "conceptual")]


@pytest.mark.parametrize(
    "reply",
    ["I cannot help with that.", '{"queries": [{"query": "cut sh', '{"queries": []}', '{"answer": "x"}', ""],
    ids=["prose", "truncated", "empty-list", "wrong-key", "empty"],
)
def test_replies_without_queries_are_unparseable(reply):
    with pytest.raises(UnparseableReply):
        parse_reply(reply, KINDS)


def test_unknown_kind_falls_back_to_the_requested_one():
    assert parse_reply('{"queries": [{"type": "weird", "query": "x y z"}]}', ("conceptual",)) == [
        ("x y z", "conceptual")
    ]


def test_a_bracket_in_the_prose_does_not_hide_the_json_after_it():
    reply = 'As the abstract says [1], here they are: {"queries": ["a b c", "d e f"]}'
    assert parse_reply(reply, KINDS) == [("a b c", "factoid"), ("d e f", "conceptual")]


def test_json_drafted_inside_inline_thinking_is_not_taken_for_the_answer():
    reply = (
        '<think>A first draft: {"queries": ["draft one", "draft two"]}. Too vague; try again.</think>\n'
        '{"queries": ["a b c", "d e f"]}'
    )
    assert parse_reply(reply, KINDS) == [("a b c", "factoid"), ("d e f", "conceptual")]


def test_thinking_cut_off_before_it_ends_holds_no_answer():
    with pytest.raises(UnparseableReply):
        parse_reply('<think>Drafting: {"queries": ["draft one"]} and then', KINDS, cut=True)


def test_a_reply_cut_at_the_token_limit_keeps_its_whole_queries():
    reply = 'Here:\n```json\n{"queries": [{"type": "conceptual", "query": "a b c"}, {"type": "factoid", "query": "d e'
    assert parse_reply(reply, KINDS, cut=True) == [("a b c", "conceptual")]
    assert parse_reply('See [1]. ["a b c", "d e f", "g h', KINDS, cut=True)[:1] == [("a b c", "factoid")]
    with pytest.raises(UnparseableReply):
        parse_reply(reply, KINDS)  # not known to be cut: an unfinished list stays unparseable
