"""Model presets and smart defaults: the values chosen when the spec leaves them unset, and why."""

from __future__ import annotations

from osft.common.spec.model import ModelSpec
from osft.common.spec.training import Training
from osft.trainer.defaults import (
    BATCH_BY_MODEL_SIZE,
    CACHED_MNRL_BATCH,
    OFFLINE_PAIRS_CAP,
    EncoderShape,
    choose_contrastive_loss,
    choose_hyperparameters,
    choose_max_seq_length,
    offline_pairs_cap,
)
from osft.trainer.models import BGE_QUERY_INSTRUCTION, apply_usage, load_sentence_transformer, model_usage


def test_bge_presets_carry_query_instruction_and_cls_pooling() -> None:
    for size in ("small", "base", "large"):
        usage = model_usage(ModelSpec(base=f"BAAI/bge-{size}-en-v1.5"))
        assert usage.query_prefix == BGE_QUERY_INSTRUCTION
        assert (usage.pooling, usage.normalize, usage.max_seq_length_limit, usage.size) == ("cls", True, 512, size)


def test_gte_and_minilm_presets_average_tokens_without_prefix() -> None:
    gte = model_usage(ModelSpec(base="thenlper/gte-base"))
    minilm = model_usage(ModelSpec(base="all-MiniLM-L6-v2"))
    assert (gte.query_prefix, gte.pooling, gte.normalize, gte.max_seq_length_limit) == ("", "mean", True, 512)
    assert (minilm.pooling, minilm.max_seq_length_limit, minilm.size) == ("mean", 256, "small")


def test_spec_values_override_the_preset() -> None:
    usage = model_usage(ModelSpec(base="BAAI/bge-base-en-v1.5", query_prefix="", pooling="mean", max_seq_length=128))
    assert (usage.query_prefix, usage.pooling, usage.max_seq_length_limit) == ("", "mean", 128)


def test_preset_pooling_is_applied_to_the_loaded_model() -> None:
    model = load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2")
    changes = apply_usage(model, model_usage(ModelSpec(pooling="cls", normalize=False)))
    assert changes == ["pooling mean → cls", "removed L2 normalization"]
    assert model[1].pooling_mode == "cls"


def test_max_seq_length_covers_the_95th_percentile_rounded_to_32() -> None:
    lengths = [40] * 90 + [100] * 5 + [900] * 5
    chosen, why = choose_max_seq_length(lengths, model_limit=512)
    assert chosen == 128
    assert "95%" in why and "100 tokens" in why
    assert choose_max_seq_length([10] * 20, 512)[0] == 64
    assert choose_max_seq_length([2000] * 20, 256)[0] == 256


def test_unset_hyperparameters_come_from_the_tables_with_reasons() -> None:
    small = choose_hyperparameters(Training(), train_pairs=500, model_size="small")
    assert (small.epochs, small.learning_rate, small.batch_size) == (3.0, 2e-5, BATCH_BY_MODEL_SIZE["small"])
    assert set(small.reasons) == {"epochs", "learning_rate", "batch_size", "warmup_ratio"}
    large = choose_hyperparameters(Training(), train_pairs=50_000, model_size="large")
    assert (large.epochs, large.learning_rate, large.batch_size) == (1.0, 1e-5, 16)
    cached = choose_hyperparameters(Training(loss="cached-mnrl"), train_pairs=50_000)
    assert cached.batch_size == CACHED_MNRL_BATCH and "mini_batch_size" in cached.reasons["batch_size"]


def test_values_given_in_the_spec_are_kept_and_not_explained() -> None:
    chosen = choose_hyperparameters(Training(epochs=2, learning_rate=3e-5, batch_size=12, warmup_ratio=0.0), 500)
    assert (chosen.epochs, chosen.learning_rate, chosen.batch_size, chosen.warmup_ratio) == (2, 3e-5, 12, 0.0)
    assert chosen.reasons == {}


def test_offline_pseudo_queries_get_a_small_sample_and_one_pass() -> None:
    cap, why = offline_pairs_cap(Training(), "offline")
    assert cap == OFFLINE_PAIRS_CAP and "benchmark" in why
    assert offline_pairs_cap(Training(max_train_pairs=5000), "offline") == (5000, None)
    assert offline_pairs_cap(Training(), "user-pairs") == (None, None)
    offline = choose_hyperparameters(Training(), train_pairs=800, provider="offline")
    judged = choose_hyperparameters(Training(), train_pairs=800, provider="user-pairs")
    assert (offline.epochs, judged.epochs) == (1.0, 3.0)
    assert "offline" in offline.reasons["epochs"]
    assert choose_hyperparameters(Training(epochs=2), train_pairs=800, provider="offline").epochs == 2


GIB = 2**30
MINILM_SHAPE = {"shape": EncoderShape(layers=6, heads=12, hidden=384, intermediate=1536)}


def test_long_documents_on_a_cpu_train_in_mini_batches() -> None:
    """Batch 32 with a hard negative is 96 texts; at 512 tokens that step was killed on a 24 GiB machine."""
    long = choose_contrastive_loss(
        Training(), texts_per_step=96, max_seq_length=512, memory_bytes=24 * GIB, on_gpu=False, **MINILM_SHAPE
    )
    assert long.name == "cached-mnrl" and long.mini_batch_size == Training().mini_batch_size
    assert "96 texts x 512 tokens" in long.reason and "~30 GiB" in long.reason and "24 GiB here" in long.reason
    short = choose_contrastive_loss(
        Training(), texts_per_step=96, max_seq_length=256, memory_bytes=24 * GIB, on_gpu=False, **MINILM_SHAPE
    )
    assert (short.name, short.reason) == ("mnrl", None)


def test_the_mini_batch_shrinks_to_fit_a_small_machine() -> None:
    small = choose_contrastive_loss(
        Training(), texts_per_step=96, max_seq_length=512, memory_bytes=4 * GIB, on_gpu=False, **MINILM_SHAPE
    )
    assert small.name == "cached-mnrl" and small.mini_batch_size == 8  # 16 x 512 tokens: ~5 GiB > 0.7 x 4 GiB


def test_the_spec_loss_and_gpus_keep_plain_mnrl_unless_asked() -> None:
    shape = {"texts_per_step": 96, "max_seq_length": 512, "memory_bytes": 24 * GIB, **MINILM_SHAPE}
    assert choose_contrastive_loss(Training(loss="mnrl"), on_gpu=False, **shape).name == "mnrl"
    assert choose_contrastive_loss(Training(), on_gpu=True, **shape).name == "mnrl"
    given = choose_contrastive_loss(Training(loss="cached-mnrl", mini_batch_size=4), on_gpu=True, **shape)
    assert (given.name, given.mini_batch_size, given.reason) == ("cached-mnrl", 4, None)


def test_base_models_count_their_wider_layers_too() -> None:
    """bge-base at 256 tokens: attention alone (~10 GiB for 96 texts) would pass; with the feed-forward
    activations (~20 GiB more) the step does not fit in 70% of 24 GiB."""
    bge_base = EncoderShape(layers=12, heads=12, hidden=768, intermediate=3072)
    chosen = choose_contrastive_loss(
        Training(), texts_per_step=96, max_seq_length=256, shape=bge_base, memory_bytes=24 * GIB, on_gpu=False
    )
    assert chosen.name == "cached-mnrl"


def test_with_a_query_log_offline_pairs_are_an_eighth_of_the_log_and_epochs_follow_the_table() -> None:
    cap, why = offline_pairs_cap(Training(), "offline", log_pairs=303)
    assert cap == 37 and "303 query-log pairs" in why
    assert offline_pairs_cap(Training(), "offline", log_pairs=5) == offline_pairs_cap(Training(), "offline")
    assert choose_hyperparameters(Training(), train_pairs=900, provider="offline", log_pairs=5).epochs == 1.0
    assert offline_pairs_cap(Training(), "offline", log_pairs=100_000)[0] == OFFLINE_PAIRS_CAP
    assert offline_pairs_cap(Training(max_train_pairs=500), "offline", log_pairs=303) == (500, None)
    mixed = choose_hyperparameters(Training(), train_pairs=340, provider="offline", log_pairs=303)
    assert mixed.epochs == 3.0 and "up to 1,000 training pairs" in mixed.reasons["epochs"]


def test_a_base_model_folder_transformers_cannot_read_is_a_clear_error_not_a_traceback(tmp_path) -> None:
    import pytest

    from osft.common.errors import OsftError

    (tmp_path / "config.json").write_text('{"model_type": "nonsense"}')
    with pytest.raises(OsftError, match=r"model\.base: cannot load"):
        load_sentence_transformer(str(tmp_path))
