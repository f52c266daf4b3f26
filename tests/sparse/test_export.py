"""The SPARSE_ENCODING zip for ML Commons: TorchScript + tokenizer.json, equal to the PyTorch model."""

from __future__ import annotations

import json
import zipfile

import torch

from osft.common.storage import sha256_file
from osft.trainer.sparse.export import prune, verify_sparse_encoding


def test_sparse_encoding_zip_is_registrable_and_recorded(bi_encoder_run):
    record = bi_encoder_run.export("sparse_encoding_zip")
    path = bi_encoder_run.run_dir / record["path"]

    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        tokenizer = json.loads(archive.read("tokenizer.json"))
    assert names == ["tiny-sparse-bi-encoder.pt", "tokenizer.json"]
    assert tokenizer["truncation"]["max_length"] == 64
    assert record["sha256"] == sha256_file(path) and record["bytes"] == path.stat().st_size
    assert (record["model_format"], record["function_name"]) == ("TORCH_SCRIPT", "SPARSE_ENCODING")
    assert record["model_config"]["embedding_dimension"] == 30522


def test_exported_weights_match_pytorch_on_sample_texts(bi_encoder_run):
    record = bi_encoder_run.export("sparse_encoding_zip")

    assert record["verified_texts"] == 3
    assert record["max_abs_diff"] < 1e-4


def test_equivalence_check_catches_a_mismatched_export(bi_encoder_run):
    """The zip prunes at 10%; checking it against an unpruned reference must report a large difference."""
    path = bi_encoder_run.run_dir / bi_encoder_run.export("sparse_encoding_zip")["path"]
    texts = ["json.dumps serializes an object to a JSON formatted str"]

    assert verify_sparse_encoding(bi_encoder_run.model(), path, texts, prune_ratio=0.1) < 1e-4
    assert verify_sparse_encoding(bi_encoder_run.model(), path, texts, prune_ratio=0.0) > 1e-2


def test_max_ratio_pruning_drops_weights_below_the_share_of_the_largest():
    values = torch.tensor([[4.0, 1.0, 0.3, 0.0], [2.0, 0.5, 0.25, 1.5]])

    pruned = prune(values, 0.2)

    assert pruned.tolist() == [[4.0, 1.0, 0.0, 0.0], [2.0, 0.5, 0.0, 1.5]]
