"""LoRA: train small low-rank adapters instead of every weight, then merge them into the model.

With ``training.lora.enabled`` only the adapters (a few hundred thousand parameters) are
trained, which needs less memory and keeps the base model's knowledge. ``merge_adapters``
folds them back into the weights, so the saved model and every export are a plain model that
OpenSearch, ONNX and TorchScript load without peft.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osft.common.spec.training import Lora

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def add_lora_adapter(model: SentenceTransformer, options: Lora) -> int:
    """Attach a LoRA adapter for training; returns the number of trainable parameters."""
    from peft import LoraConfig, TaskType

    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        inference_mode=False,
    )
    model.add_adapter(config)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_adapters(model: SentenceTransformer) -> int:
    """Fold every LoRA layer into its base weights and remove peft's wrappers; returns layers merged."""
    from peft.tuners.lora import LoraLayer

    hf_model = model.transformers_model
    merged = 0
    for name, module in list(hf_model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = hf_model.get_submodule(parent_name) if parent_name else hf_model
            setattr(parent, child, module.get_base_layer())
            merged += 1
    # transformers' PEFT integration marks the model; clear it so save_pretrained writes full weights.
    hf_model._hf_peft_config_loaded = False
    if hasattr(hf_model, "peft_config"):
        del hf_model.peft_config
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return merged
