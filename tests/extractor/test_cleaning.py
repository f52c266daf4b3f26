"""Cleaning: markup, passages by tokens, exact and near duplicates, seeded sampling."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from osft.common.errors import OsftError
from osft.common.spec.extract import Cleaning
from osft.common.stage import run_stage
from osft.extractor.cleaning import DocumentCleaner
from osft.extractor.html_text import strip_html
from osft.extractor.passages import PassageSplitter, load_tokenizer
from osft.extractor.sampling import BottomKSample
from osft.extractor.stage import STAGE

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(MINILM)  # the packaged all-MiniLM-L6-v2 tokenizer (no hub)


def doc(doc_id: str, text: str, title: str = "") -> dict:
    return {"id": doc_id, "title": title, "text": text}


def test_html_is_stripped_to_visible_text_with_paragraphs_apart():
    html = "<html><head><style>p{}</style></head><body><h1>Guide</h1><p>Use &amp; enjoy</p><script>x()</script></body></html>"
    assert strip_html(html).split() == ["Guide", "Use", "&", "enjoy"]
    assert strip_html("5 < 6 and plain text") == "5 < 6 and plain text"


def test_long_documents_become_passages_within_the_token_budget(tokenizer):
    words = " ".join(f"word{i} unbelievably" for i in range(300))
    splitter = PassageSplitter(tokenizer, max_tokens=64, max_passages=100)

    passages = splitter.split(words)

    assert len(passages) > 1
    assert all(len(tokenizer.encode(p, add_special_tokens=False).ids) <= 64 for p in passages)
    assert " ".join(passages).split() == words.split()  # no word cut in two, nothing lost


def test_passages_past_the_cap_are_dropped_and_counted(tokenizer):
    cleaner = DocumentCleaner(
        Cleaning(min_chars=1, max_passage_tokens=16, max_passages_per_doc=2),
        PassageSplitter(tokenizer, 16, 2),
    )
    out = cleaner.clean(doc("long", " ".join(["alpha beta gamma delta"] * 40)))

    assert [d["id"] for d in out] == ["long#p0", "long#p1"]
    assert cleaner.removed_counts == {"tail_over_passage_cap": 1}
    assert cleaner.documents_split == 1


def test_exact_and_near_duplicates_are_removed_and_counted_by_reason():
    base = (
        "The quarterly report shows revenue growth in every region, led by strong sales of the new product line. "
        "Costs stayed flat while the team hired engineers for the search platform and opened two offices abroad. "
        "Next quarter the company expects similar growth and plans to launch a mobile version of its application."
    )
    cleaner = DocumentCleaner(Cleaning(min_chars=10, dedup_near=True, near_duplicate_threshold=0.8))
    docs = [
        doc("1", base),
        doc("2", base.upper()),  # exact duplicate after lower-casing
        doc("3", base.replace("mobile", "tablet")),  # near duplicate
        doc("4", "An entirely different document about hiking trails and mountain weather in spring."),
        doc("4", "A second document reusing id four, about something else entirely, at length."),
        doc("5", "short"),
    ]
    kept = [d["id"] for d in cleaner.clean_all(docs)]

    assert kept == ["1", "4"]
    assert cleaner.removed == Counter(exact_duplicate=1, near_duplicate=1, duplicate_id=1, too_short=1)


def test_sampling_is_uniform_seeded_and_independent_of_arrival_order():
    hits = Counter()
    for seed in range(400):
        hits.update(BottomKSample.of(range(100), 10, seed, key=str))
    assert min(hits.values()) > 15 and max(hits.values()) < 70  # expected 40 each

    shuffled = list(range(100))
    random.Random(5).shuffle(shuffled)
    assert BottomKSample.of(shuffled, 10, 3, key=str) == BottomKSample.of(range(100), 10, 3, key=str)
    assert BottomKSample.of(range(100), 10, 3, key=str) != BottomKSample.of(range(100), 10, 4, key=str)
    assert BottomKSample.of(["a", "b"], 5, 3, key=str) in (["a", "b"], ["b", "a"])


def test_stage_splits_with_the_model_tokenizer_and_reports_it(write_spec, tmp_path):
    long_text = " ".join(f"sentence {i} talks about the search index and its settings." for i in range(60))
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "a", "title": "Long", "text": long_text}))
    spec = write_spec(
        {"type": "local", "path": "c.jsonl"}, cleaning={"max_passage_tokens": 64, "max_passages_per_doc": 50}
    )

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.stats.documents_split == 1
    assert manifest.stats.documents_written == manifest.stats.passages_from_splits > 5


def test_strip_html_in_the_stage(write_spec, tmp_path):
    html = "<div><p>Install the package</p><p>then run the command line tool to start.</p></div>"
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "h", "text": html}))
    spec = write_spec({"type": "local", "path": "c.jsonl"}, cleaning={"strip_html": True})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    import gzip

    with gzip.open(tmp_path / "run" / "extract" / manifest.stats.shards[0], "rt") as handle:
        assert json.loads(handle.readline())["text"] == "Install the package then run the command line tool to start."


def test_an_unknown_tokenizer_is_named(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OsftError, match="cannot load the tokenizer 'no-such/tokenizer'"):
        load_tokenizer("no-such/tokenizer")


def test_digest_set_remembers_across_merges():
    from osft.extractor.cleaning import digest64
    from osft.extractor.digest_set import DigestSet

    seen = DigestSet(buffer_size=64)
    keys = [digest64(f"doc {i}") for i in range(1000)]
    for key in keys[:500]:
        seen.add(key)

    assert all(key in seen for key in keys[:500])
    assert not any(key in seen for key in keys[500:])
    assert len(seen) == 500
