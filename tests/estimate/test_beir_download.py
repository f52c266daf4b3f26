"""The BEIR download helper: unpacks a real zip, and fails with a clear message offline."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from osft.common.beir_download import download_beir
from osft.common.errors import InputDataError, ServiceError


def test_a_beir_zip_unpacks_to_a_beir_folder(tmp_path: Path):
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("tiny/corpus.jsonl", '{"_id": "d1", "title": "", "text": "a"}\n')
        bundle.writestr("tiny/queries.jsonl", '{"_id": "q1", "text": "a?"}\n')
        bundle.writestr("tiny/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")

    folder = download_beir("tiny", tmp_path / "data", url=archive.as_uri())

    assert folder == tmp_path / "data" / "tiny"
    assert (folder / "qrels" / "test.tsv").read_text().endswith("q1\td1\t1\n")


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path):
    with pytest.raises(
        ServiceError, match=re.escape("could not download BEIR dataset 'scifact' from http://127.0.0.1:9/")
    ):
        download_beir("scifact", tmp_path, url="http://127.0.0.1:9/scifact.zip", timeout_s=5)


def test_an_unknown_dataset_name_lists_the_known_ones(tmp_path: Path):
    with pytest.raises(InputDataError, match="unknown BEIR dataset 'scifacts'"):
        download_beir("scifacts", tmp_path)
