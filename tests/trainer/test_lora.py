"""LoRA: only adapters train, and merging them leaves a plain model that loads without peft."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from osft.common.spec.training import Lora
from osft.trainer.lora import add_lora_adapter, merge_adapters
from osft.trainer.models import load_sentence_transformer

TEXTS = ["how do bees make honey", "Magma rises through the crust and erupts as lava."]


def test_merged_lora_model_saves_as_a_plain_model_with_the_adapted_weights(minilm_path: str, tmp_path: Path) -> None:
    model = load_sentence_transformer(minilm_path, max_seq_length=64)
    base = model.encode(TEXTS)
    total = sum(p.numel() for p in model.parameters())
    trainable = add_lora_adapter(
        model, Lora(enabled=True, r=4, alpha=8, dropout=0.0, target_modules=["query", "value"])
    )
    assert 0 < trainable < total / 50
    # Stand in for training: give the adapters non-zero weights (lora_B starts at zero).
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    adapted = model.encode(TEXTS)
    assert not np.allclose(adapted, base, atol=1e-3)

    assert merge_adapters(model) == 12  # query and value in 6 layers
    np.testing.assert_allclose(model.encode(TEXTS), adapted, atol=1e-5)
    model.save(str(tmp_path / "merged"))
    assert not list((tmp_path / "merged").rglob("adapter_config.json"))
    reloaded = load_sentence_transformer(str(tmp_path / "merged"))
    assert not any("lora" in name for name, _ in reloaded.named_parameters())
    np.testing.assert_allclose(reloaded.encode(TEXTS), adapted, atol=1e-5)
