"""The ``openai`` provider against a local OpenAI-compatible chat-completions server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import ChatServer

from osft.common.errors import CredentialsError, ServiceError
from tests.querygen.conftest import make_docs, read_pairs, run_querygen


@pytest.fixture
def chat_server():
    servers: list[ChatServer] = []

    def start(**options) -> ChatServer:
        servers.append(ChatServer(**options).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def openai_spec(server: ChatServer, **options) -> dict:
    return {
        "provider": "openai",
        "model_id": "qwen2.5-7b-instruct",
        "openai": {"base_url": server.url, "api_key_env": "QG_TEST_KEY", "retry_base_seconds": 0.001, **options},
    }


def test_openai_compatible_endpoint_generates_queries_with_retries(run_folder, chat_server, monkeypatch):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server(fail_first=3)  # 429, 500, 429 before the first answer
    spec, run_dir = run_folder(openai_spec(server, max_concurrency=2), make_docs(5))
    manifest = run_querygen(spec, run_dir)
    assert sorted(server.served) == [f"d{i}" for i in range(5)]
    assert all(body["model"] == "qwen2.5-7b-instruct" for body in server.bodies)
    assert [m["role"] for m in server.bodies[0]["messages"]] == ["system", "user"]
    stats = manifest.stats
    assert (stats.requests, stats.failures, stats.input_tokens, stats.output_tokens) == (8, 0, 5 * 380, 5 * 55)
    assert stats.estimated_cost_usd is None, "no price table for arbitrary endpoints"
    assert len(read_pairs(run_dir)) == 10


def test_an_openai_endpoint_priced_in_the_spec_is_accounted(run_folder, chat_server, monkeypatch):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server()
    price = {"openai_usd_per_million_tokens": {"input": 2.0, "output": 10.0}}
    spec, run_dir = run_folder(openai_spec(server), make_docs(4), cost=price)
    stats = run_querygen(spec, run_dir).stats
    assert stats.estimated_cost_usd == pytest.approx((4 * 380 * 2.0 + 4 * 55 * 10.0) / 1e6)
    assert stats.price_table == "cost.openai_usd_per_million_tokens in the spec"


def test_missing_api_key_variable_is_a_clear_error(run_folder, chat_server, monkeypatch):
    monkeypatch.delenv("QG_TEST_KEY", raising=False)
    spec, run_dir = run_folder(openai_spec(chat_server()), make_docs(2))
    with pytest.raises(CredentialsError, match="QG_TEST_KEY is not set"):
        run_querygen(spec, run_dir)


def test_wrong_base_url_stops_with_a_hint(run_folder, chat_server, monkeypatch):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server()
    querygen = openai_spec(server)
    querygen["openai"]["base_url"] = server.url.removesuffix("/v1") + "/openai"  # neither it nor /openai/v1 serves
    spec, run_dir = run_folder(querygen, make_docs(2))
    with pytest.raises(ServiceError, match="base_url"):
        run_querygen(spec, run_dir)


def test_killed_process_resumes_without_redoing_logged_records(run_folder, chat_server, monkeypatch):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server(delay_s=0.05)
    spec, run_dir = run_folder(openai_spec(server, max_concurrency=1), make_docs(40))
    env = {**os.environ, "OSFT_LOG_JSON": "1", "OSFT_PROGRESS": "0"}
    command = [sys.executable, "-m", "osft.querygen.cli", "run", "--spec", spec, "--run-dir", run_dir]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while server.requests < 10 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.kill()  # SIGKILL: no cleanup, no manifest
    process.wait()
    log = Path(run_dir) / "querygen/_work/records.jsonl"
    logged = [json.loads(line)["doc_id"] for line in log.read_text().splitlines() if line.endswith("}")]
    assert 5 <= len(logged) < 40 and not (Path(run_dir) / "querygen/manifest.json").exists()

    manifest = run_querygen(spec, run_dir)
    assert all(server.served[doc] == 1 for doc in logged), "a logged record is never sent again"
    assert sum(server.served.values()) <= 40 + 1, "at most the call in flight at the kill is repeated"
    pairs = read_pairs(run_dir)
    assert sorted({p["doc_id"] for p in pairs}) == sorted(f"d{i}" for i in range(40))
    assert len(pairs) == 80 and manifest.stats.records == 40


def test_changing_only_filters_reuses_generated_records_without_new_calls(run_folder, chat_server, monkeypatch):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server()
    spec, run_dir = run_folder(openai_spec(server), make_docs(4))
    run_querygen(spec, run_dir)
    calls = len(server.bodies)
    data = json.loads(Path(spec).read_text())
    data["querygen"]["filters"] = {"min_chars": 12}
    data["querygen"]["heldout_fraction"] = 0.5
    Path(spec).write_text(json.dumps(data))
    manifest = run_querygen(spec, run_dir)
    assert len(server.bodies) == calls, "filter and split changes must not call the model again"
    assert manifest.stats.heldout_pairs > 0
    data["querygen"]["queries_per_doc"] = 3
    Path(spec).write_text(json.dumps(data))
    run_querygen(spec, run_dir)
    assert len(server.bodies) == calls + 4, "a generation setting change regenerates every document"


def test_max_docs_queries_a_nested_sample_and_reuses_its_replies(run_folder, chat_server, monkeypatch):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server()
    spec, run_dir = run_folder({**openai_spec(server), "max_docs": 3}, make_docs(8))
    manifest = run_querygen(spec, run_dir)
    first = set(server.served)
    assert len(first) == 3 and (manifest.stats.documents, manifest.stats.documents_queried) == (8, 3)
    assert {p["doc_id"] for p in read_pairs(run_dir)} <= first
    assert any("3 of 8 documents" in note for note in manifest.notes)

    data = json.loads(Path(spec).read_text())
    for max_docs, queried in ((5, 5), (None, 8)):
        data["querygen"]["max_docs"] = max_docs
        Path(spec).write_text(json.dumps(data))
        manifest = run_querygen(spec, run_dir)
        assert first < set(server.served) and len(server.served) == queried, "a larger sample keeps the smaller one"
        assert all(count == 1 for count in server.served.values()), "replies already logged are not asked again"
        assert manifest.stats.records == manifest.stats.documents_queried == queried
        assert {p["doc_id"] for p in read_pairs(run_dir)} == set(server.served), "each reply stays with its document"


def test_queries_that_repeat_a_few_shot_example_are_dropped(run_folder, chat_server, monkeypatch, tmp_path):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    example = "Vitamin D supplements lower the rate of hip fractures in older women."
    server = chat_server(also_answer="vitamin D supplements lower the rate of hip fractures in older women")
    spec, run_dir = run_folder({**openai_spec(server), "examples_path": "examples.jsonl"}, make_docs(3))
    (Path(spec).parent / "examples.jsonl").write_text(json.dumps({"query": example}) + "\n")
    manifest = run_querygen(spec, run_dir)
    assert example in server.bodies[0]["messages"][-1]["content"]
    assert manifest.stats.removed["repeats_example"] == 3
    assert not [p for p in read_pairs(run_dir) if "hip fractures" in p["query"]]


def test_a_server_that_wants_a_key_when_the_spec_names_none_says_which_field_to_set(run_folder, chat_server):
    querygen = openai_spec(chat_server())
    querygen["openai"]["api_key_env"] = None
    spec, run_dir = run_folder(querygen, make_docs(2))
    with pytest.raises(CredentialsError, match=r"set querygen\.openai\.api_key_env"):
        run_querygen(spec, run_dir)


def test_content_parts_and_null_token_counts_are_read_not_a_crash():
    import httpx

    from osft.common.spec.querygen import OpenAIOptions
    from osft.querygen.openai_chat import OpenAIChat

    chat = OpenAIChat("m", OpenAIOptions(api_key_env=None))
    try:
        parts = [{"type": "thinking", "thinking": "..."}, {"type": "text", "text": '["a b c"]'}]
        body = {"choices": [{"message": {"content": parts}}], "usage": {"prompt_tokens": None, "completion_tokens": 7}}
        completion = chat._completion(httpx.Response(200, json=body), 1)
        assert (completion.text, completion.input_tokens, completion.output_tokens) == ('["a b c"]', 0, 7)
    finally:
        chat.close()


def test_a_reasoning_model_reply_in_reasoning_content_or_cut_at_the_limit_is_read(run_folder, chat_server, monkeypatch):
    def message_for(doc_id: str, reply: str) -> tuple[dict, str]:
        if doc_id == "d0":  # vLLM's reasoning parser found no end of thinking: all of it is reasoning
            return {"role": "assistant", "content": None, "reasoning_content": reply}, "stop"
        if doc_id == "d1":  # Ollama's field name, and an empty content string
            return {"role": "assistant", "content": "", "reasoning": reply}, "stop"
        if doc_id == "d2":  # thinking inline (no reasoning parser) with a draft, then the answer
            draft = '{"queries": [{"type": "factoid", "query": "draft query about nothing in particular"}]}'
            return {"role": "assistant", "content": f"<think>Draft: {draft}. Better:</think>\n{reply}"}, "stop"
        # thought until max_tokens: the answer was cut after its first query
        return {"role": "assistant", "content": reply[: reply.index("}") + 3]}, "length"

    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server(message_for=message_for)
    spec, run_dir = run_folder(openai_spec(server), make_docs(4))
    manifest = run_querygen(spec, run_dir)
    pairs = read_pairs(run_dir)
    assert sorted(p["doc_id"] for p in pairs) == ["d0", "d0", "d1", "d1", "d2", "d2", "d3"]
    assert not [p for p in pairs if "draft" in p["query"]]
    assert manifest.stats.unparseable_replies == 0
    assert any(
        "1 reply(ies) stopped at the token limit" in n and "querygen.openai.max_tokens" in n for n in manifest.notes
    )


@pytest.mark.parametrize("suffix", ["", "/", "/v1/chat/completions"], ids=["root", "root-slash", "full-endpoint"])
def test_a_base_url_without_v1_or_with_the_endpoint_reaches_the_server(run_folder, chat_server, monkeypatch, suffix):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server()
    querygen = openai_spec(server, max_concurrency=1)
    querygen["openai"]["base_url"] = server.url.removesuffix("/v1") + suffix
    spec, run_dir = run_folder(querygen, make_docs(3))
    manifest = run_querygen(spec, run_dir)
    assert sorted(server.served) == ["d0", "d1", "d2"] and manifest.stats.failures == 0
    assert manifest.stats.requests == (3 if suffix.endswith("completions") else 4), "one 404 before /v1 is used"


def test_a_server_without_json_mode_is_asked_again_without_it(run_folder, chat_server, monkeypatch):
    monkeypatch.setenv("QG_TEST_KEY", "sk-test")
    server = chat_server(reject_response_format=True)
    spec, run_dir = run_folder(openai_spec(server, json_mode=True, max_concurrency=1), make_docs(4))
    manifest = run_querygen(spec, run_dir)
    assert sorted(server.served) == ["d0", "d1", "d2", "d3"]
    assert manifest.stats.failures == 0 and server.rejected == 1, "json_mode is dropped after the first refusal"


def test_retry_after_is_read_in_seconds_or_as_an_http_date():
    from osft.querygen.openai_chat import retry_after_seconds

    now = 1_800_000_000.0
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds("1.5") == 1.5
    in_five = email.utils.formatdate(now + 5, usegmt=True)
    assert retry_after_seconds(in_five, now=now) == pytest.approx(5.0)
    assert retry_after_seconds(email.utils.formatdate(now - 5, usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
