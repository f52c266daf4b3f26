"""The ``offline`` provider and ready-made pairs through ``run_stage``; the offline query styles."""

from __future__ import annotations

from osft.common.corpus import document_text, positive_text
from osft.querygen.offline import DocumentFrequencies, OfflineGenerator, key_phrases, shorten_claim
from tests.querygen.conftest import make_docs, read_pairs, run_querygen


def test_offline_provider_writes_seeded_mixed_style_pairs(run_folder):
    spec, run_dir = run_folder({"provider": "offline", "queries_per_doc": 3, "heldout_fraction": 0.2}, make_docs(20))
    manifest = run_querygen(spec, run_dir)
    first = read_pairs(run_dir)
    assert {p["kind"] for p in first} >= {"claim", "question", "keywords"}
    assert manifest.stats.provider == "offline" and manifest.stats.requests == 0
    assert manifest.stats.heldout_pairs > 0
    heldout_docs = {p["doc_id"] for p in first[manifest.stats.train_pairs :]}
    assert not heldout_docs & {p["doc_id"] for p in first[: manifest.stats.train_pairs]}, "split is by document"
    run_querygen(spec, run_dir, force=True)
    assert read_pairs(run_dir) == first, "same corpus and seed give the same pairs"


def test_offline_styles_can_be_chosen_in_the_spec(run_folder):
    spec, run_dir = run_folder(
        {"provider": "offline", "queries_per_doc": 1, "offline": {"styles": {"keywords": 1.0}}}, make_docs(6)
    )
    run_querygen(spec, run_dir)
    assert {p["kind"] for p in read_pairs(run_dir)} == {"keywords"}


def test_max_docs_generates_for_a_sample_of_the_corpus(run_folder):
    spec, run_dir = run_folder({"provider": "offline", "queries_per_doc": 1, "max_docs": 4}, make_docs(10))
    manifest = run_querygen(spec, run_dir)
    assert len({p["doc_id"] for p in read_pairs(run_dir)}) == 4
    assert (manifest.stats.documents, manifest.stats.documents_queried) == (10, 4)


def test_inverse_cloze_pairs_train_on_the_document_without_their_sentence(run_folder):
    docs = make_docs(6)
    spec, run_dir = run_folder(
        {"provider": "offline", "queries_per_doc": 1, "offline": {"styles": {"cloze": 1.0}}}, docs
    )
    run_querygen(spec, run_dir)
    pairs = read_pairs(run_dir)
    texts = {d["id"]: document_text(d) for d in docs}
    assert pairs and all(p["kind"] == "cloze" and p["cut_query"] for p in pairs)
    for pair in pairs:
        assert pair["query"] in texts[pair["doc_id"]]
        positive = positive_text(pair, texts[pair["doc_id"]])
        assert pair["query"] not in positive and len(positive) < len(texts[pair["doc_id"]])
    claim = {"query_id": "q", "query": "Statins lower LDL.", "doc_id": "d0", "kind": "claim"}
    assert positive_text(claim, "Statins lower LDL. In adults.") == "Statins lower LDL. In adults."


def test_ready_made_pairs_are_used_instead_of_generating(run_folder):
    docs = make_docs(8)
    rows = [{"query_id": f"u{i}", "query": f"what changed in cohort {i}", "doc_id": f"d{i}"} for i in range(8)]
    spec, run_dir = run_folder({"provider": "bedrock"}, docs, pairs=rows)
    manifest = run_querygen(spec, run_dir)
    assert manifest.stats.provider == "user-pairs" and manifest.stats.requests == 0
    assert sorted(p["query"] for p in read_pairs(run_dir)) == sorted(r["query"] for r in rows)


def test_claims_lose_openers_parentheses_and_statistics():
    sentence = "Here we show that statin therapy (n = 120) reduces LDL cholesterol by 30% (P < 0.001) in older adults."
    assert shorten_claim(sentence) == "Statin therapy reduces LDL cholesterol in older adults"
    assert shorten_claim("CONCLUSIONS Plasma fibrinogen was the strongest predictor of graft occlusion.") == (
        "Plasma fibrinogen was the strongest predictor of graft occlusion"
    )
    assert shorten_claim("Using four newly developed computational tools and several cohorts.") is None


def test_questions_and_keywords_come_from_distinctive_phrases():
    docs = [{"id": f"d{i}", "title": "", "text": d["text"]} for i, d in enumerate(make_docs(12))]
    frequencies = DocumentFrequencies(docs)
    phrases = key_phrases(docs[1]["text"], frequencies)
    assert any("antibiotic resistance" in p or "hospital wastewater" in p for p in phrases[:3])
    generator = OfflineGenerator(frequencies, seed=1, styles={"question": 1.0, "keywords": 1.0})
    queries = generator.generate(docs[1], 2)
    assert sorted(q.kind for q in queries) == ["keywords", "question"]
    assert all("docid" not in q.query.split()[:1] for q in queries)
