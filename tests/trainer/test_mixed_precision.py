"""training.mixed_precision: bf16 or fp16 on GPUs as they allow, fp32 on CPUs unless asked."""

from __future__ import annotations

import pytest
import torch

from osft.common.errors import OsftError
from osft.common.spec.training import Training
from osft.trainer import hf_training
from osft.trainer.defaults import choose_hyperparameters
from osft.trainer.hf_training import mixed_precision_arguments, training_arguments


def _on(monkeypatch: pytest.MonkeyPatch, *, gpu: bool, bf16: bool = False) -> None:
    monkeypatch.setattr(hf_training, "on_gpu", lambda: gpu)

    def native_bf16(including_emulation: bool = True) -> bool:
        return True if including_emulation else bf16  # as torch does: emulation makes every GPU say yes

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", native_bf16)


@pytest.mark.parametrize(
    ("gpu", "bf16", "expected"),
    [(True, True, {"bf16": True}), (True, False, {"fp16": True}), (False, False, {})],
    ids=["ampere-gpu", "older-gpu", "cpu"],
)
def test_auto_picks_what_the_hardware_computes_fast(monkeypatch, gpu: bool, bf16: bool, expected: dict) -> None:
    _on(monkeypatch, gpu=gpu, bf16=bf16)
    assert mixed_precision_arguments("auto") == expected


def test_an_explicit_choice_is_kept_and_fp16_on_cpus_is_a_named_error(monkeypatch) -> None:
    _on(monkeypatch, gpu=False)
    assert mixed_precision_arguments("bf16") == {"bf16": True}
    assert mixed_precision_arguments("no") == {}
    with pytest.raises(OsftError, match=r"training\.mixed_precision 'fp16' needs a GPU"):
        mixed_precision_arguments("fp16")
    _on(monkeypatch, gpu=True, bf16=True)
    assert mixed_precision_arguments("fp16") == {"fp16": True}
    assert mixed_precision_arguments("no") == {}


def test_the_trainer_arguments_carry_the_choice(monkeypatch, tmp_path) -> None:
    _on(monkeypatch, gpu=True, bf16=True)
    training = Training(max_steps=1)
    arguments = training_arguments(training, choose_hyperparameters(training, 100), tmp_path)
    assert arguments["bf16"] is True and "fp16" not in arguments
