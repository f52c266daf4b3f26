"""What the dense and the sparse train stages share about the Hugging Face trainer: checkpoints and arguments."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from osft.common.errors import OsftError
from osft.common.processes import is_first_process, process_rank, world_size
from osft.common.progress import progress_enabled
from osft.common.storage import atomic_path

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import TrainerCallback

    from osft.common.spec import Training
    from osft.common.stage import StageContext
    from osft.trainer.defaults import Hyperparameters

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_ENV = "OSFT_CHECKPOINT_DIR"
FORCE_CPU_ENV = "OSFT_FORCE_CPU"
# Under torchrun every collective (the rows broadcast included) waits this long: rank 0 builds the training
# rows (corpus encoding, mining, teacher scores) while the others wait for them, which can pass the 30
# minutes the HF trainer allows by default on a large corpus.
DDP_TIMEOUT_SECONDS = 4 * 3600

T = TypeVar("T")


def _complete(checkpoint: Path) -> bool:
    """Whether ``checkpoint`` holds what a resume needs: weights, optimizer, scheduler and trainer state.

    The HF trainer writes the trainer state last, but SageMaker syncs ``/opt/ml/checkpoints`` to S3 file
    by file while training runs: after a spot interruption the small ``trainer_state.json`` can be
    restored without the large weights or optimizer. Resuming from such a folder fails (no weights) or,
    worse, silently restarts the optimizer and the learning-rate schedule (no ``optimizer.pt`` or
    ``scheduler.pt``).
    """
    if not (checkpoint / "trainer_state.json").is_file() or not (checkpoint / "scheduler.pt").is_file():
        return False
    if not any((checkpoint / name).is_file() for name in ("optimizer.pt", "optimizer.bin")):
        return False
    weights = [p for pattern in ("*.safetensors", "*.bin") for p in checkpoint.rglob(pattern)]
    return any(p.name != "optimizer.bin" for p in weights)


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder the HF trainer wrote, if any (see ``_complete``)."""
    numbered = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.rsplit("-", 1)[1].isdigit()]
    for candidate in sorted(numbered, key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True):
        if _complete(candidate):
            return str(candidate)
    return None


def resume_checkpoint(checkpoints: Path) -> str | None:
    """The checkpoint every process resumes from: rank 0's newest, found in each process's own folder.

    Rank 0 decides (its choice sent to the others), else processes would run different numbers of steps
    and hang. It sends the name, not its path: with an S3 run folder each process has a folder of its own.
    """
    newest = share_from_first_process(lambda: last_checkpoint(checkpoints))
    return str(checkpoints / Path(newest).name) if newest else None


def checkpoint_folder(ctx: StageContext) -> Path:
    """``$OSFT_CHECKPOINT_DIR`` (``/opt/ml/checkpoints`` on SageMaker, synced for spot) or ``_work/checkpoints``.

    A folder outside ``_work`` is not wiped by the stage framework when the inputs change, so it
    carries the work key of the run that wrote it; checkpoints of any other run are discarded
    rather than resumed into a different model or data set.
    """
    configured = os.environ.get(CHECKPOINT_ENV)
    folder = Path(configured) if configured else ctx.work / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    work_key = ctx.work / ".fingerprint"
    # Under torchrun only rank 0 tidies (and decides what to resume from): the others may share the folder.
    if configured and work_key.exists() and is_first_process():
        marker, restart_marker = folder / ".osft-work-key", folder / ".osft-forced-restart"
        restart = ctx.forced_restart
        reason = None
        if restart is not None and (not restart_marker.exists() or restart_marker.read_text() != restart):
            reason = "a forced re-run starts over"  # --force on a completed stage: these are that run's checkpoints
        elif marker.exists() and marker.read_text() != work_key.read_text():
            reason = "written by another run"
        stale = sorted(p.name for p in folder.glob("checkpoint-*"))
        if reason and stale:
            for name in stale:
                shutil.rmtree(folder / name, ignore_errors=True)
            ctx.log.warning("checkpoints_discarded", folder=str(folder), reason=reason, stale=stale)
        marker.write_text(work_key.read_text())
        if restart is not None:
            restart_marker.write_text(restart)
    return folder


def memory_bytes() -> int:
    """The memory this process may use: the container's cgroup limit when set, at most the machine's RAM."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means no limit; v1 writes a huge number instead
            return min(int(text), physical)
    return physical


def forced_cpu() -> bool:
    """``OSFT_FORCE_CPU=1``: train on the CPU even when a GPU is present."""
    return os.environ.get(FORCE_CPU_ENV) == "1"


def on_gpu() -> bool:
    """Whether training runs on a GPU."""
    import torch

    return torch.cuda.is_available() and not forced_cpu()


def share_from_first_process(build: Callable[[], T]) -> T:
    """``build()`` on rank 0, its result sent to every other process (pickled); plain ``build()`` alone.

    Under torchrun the process group must be up (touch ``TrainingArguments.device`` first). Work dirs are
    not shared between hosts (nor between processes with an S3 run folder), so files cannot carry it. An
    error on rank 0 is sent too, so the other processes fail rather than wait for rows that never come.
    """
    if world_size() <= 1:
        return build()
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RuntimeError("share_from_first_process under torchrun needs the process group initialised")  # a bug
    box: list[Any] = [None]
    if is_first_process():
        try:
            box[0] = ("ok", build())
        except BaseException as exc:
            dist.broadcast_object_list([("error", f"{exc.__class__.__name__}: {exc}")], src=0)
            raise
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status != "ok":
        raise OsftError(
            f"rank 0 failed while preparing the data every process shares: {value}", hint="see rank 0's error"
        )
    return value


def shared_rows(ctx: StageContext, args: Any, build: Callable[[], tuple[Dataset, T]]) -> tuple[Dataset, T]:
    """Under torchrun: the training rows ``build`` makes on rank 0 (and what it found), given to every process.

    Each process building its own would mine, label and score with its own encodings (which differ
    slightly between GPUs): other negatives, or with a margin another number of rows and steps, and a
    hang. Every process (rank 0 too) trains on a dataset rebuilt from the same columns, and logs their
    digest (``training_rows_shared``). ``args`` are the trainer's arguments, whose device brings up the
    process group. A single process gets ``build()`` as it is.
    """
    if world_size() <= 1:
        return build()
    from datasets import Dataset

    args.device  # noqa: B018 - the process group is up once the arguments chose their device (cached)

    def columns() -> tuple[dict[str, list[Any]], T]:
        dataset, found = build()
        return dataset.to_dict(), found

    rows, found = share_from_first_process(columns)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    dataset = Dataset.from_dict(rows)
    ctx.log.info("training_rows_shared", rank=process_rank(), rows=len(dataset), digest=digest)
    return dataset, found


def rows_kept_in_work(
    ctx: StageContext, rows_file: str, found_file: str, build: Callable[[], tuple[Dataset, dict[str, Any]]]
) -> tuple[Dataset, dict[str, Any]]:
    """The training rows and what building them found, built once and kept in ``_work``.

    A resumed job trains on the rows its checkpoint saw instead of labelling, mining and scoring again
    (which on a GPU may draw other negatives). Each file is written whole or not at all, the rows
    first; an S3 run folder keeps ``_work`` only when synced, so it is synced here.
    """
    from datasets import Dataset

    rows, found = ctx.work / rows_file, ctx.work / found_file
    if rows.exists() and found.exists():
        ctx.log.info("training_rows_reused", path=str(rows))
        return Dataset.from_json(str(rows)), json.loads(found.read_text())
    dataset, facts = build()
    if is_first_process():
        with atomic_path(rows) as partial:
            dataset.to_json(str(partial))
        with atomic_path(found) as partial:
            partial.write_text(json.dumps(facts))
        ctx.save_work()
    return dataset, facts


def train_from_checkpoint(
    ctx: StageContext, trainer: Any, checkpoints: Path, callbacks: Sequence[TrainerCallback] = ()
) -> tuple[Any, float]:
    """Run the HF ``trainer`` and return (its output, seconds): from rank 0's newest checkpoint when there is
    one, with ``train_progress`` JSON events instead of printed dicts, and ``_work`` synced to an S3 run
    folder at each checkpoint kept there. Under torchrun only rank 0 returns, to save, export and write the
    manifest; the others exit once trained."""
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_utils import TrainOutput

    from osft.trainer.progress_log import StructlogCallback

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(StructlogCallback(ctx.log))
    if is_first_process() and checkpoints.is_relative_to(ctx.work):
        trainer.add_callback(sync_work_callback(ctx))
    for callback in callbacks:
        trainer.add_callback(callback)
    resume = resume_checkpoint(checkpoints)
    finished = _finished_state(resume) if resume else None
    clock = time.perf_counter()
    if finished is not None:
        # The HF trainer checks max_steps only after a step: resumed here, it would train one step more.
        ctx.log.info("training_already_finished", checkpoint=resume, steps=finished["global_step"])
        trainer._load_from_checkpoint(resume)  # what trainer.train does first on a resume
        output = TrainOutput(finished["global_step"], _mean_logged_loss(finished["log_history"]), {})
    else:
        if resume:
            ctx.log.info("training_resumed", checkpoint=resume)
        output = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - clock
    if not trainer.is_world_process_zero():
        raise SystemExit(0)
    return output, seconds


def _finished_state(checkpoint: str) -> dict[str, Any] | None:
    """The trainer state of ``checkpoint`` when it was saved at the last step of training, else None."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return state if 0 < state.get("max_steps", 0) <= state.get("global_step", 0) else None


def _mean_logged_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The mean training loss over the logged steps: each logged loss is the mean since the previous log."""
    total = steps = 0.0
    previous = 0
    for entry in log_history:
        if "loss" in entry:
            total += entry["loss"] * (entry["step"] - previous)
            steps += entry["step"] - previous
            previous = entry["step"]
    return total / steps if steps else None


def sync_work_callback(ctx: StageContext) -> TrainerCallback:
    """Syncs ``_work`` (with its checkpoints) to an S3 run folder after each checkpoint, so a killed job resumes."""
    from transformers import TrainerCallback

    class SyncWork(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            ctx.save_work()

    return SyncWork()


def gather_across_devices(training: Training) -> bool:
    """``training.gather_across_devices``, or on when several processes train (in-batch negatives from all)."""
    return training.gather_across_devices if training.gather_across_devices is not None else world_size() > 1


def training_arguments(
    training: Training, hp: Hyperparameters, checkpoints: Path, *, batch_size: int | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``SentenceTransformerTrainingArguments`` or ``SparseEncoderTrainingArguments``.

    Checkpoints every ``training.checkpoint_steps`` (two kept) so a killed run resumes; ``batch_size``
    overrides the chosen one (sparse models keep batches small).
    """
    from sentence_transformers.base.sampler import BatchSamplers

    return {
        "output_dir": str(checkpoints),
        "num_train_epochs": hp.epochs,
        "max_steps": hp.max_steps or -1,
        "per_device_train_batch_size": batch_size or hp.batch_size,
        "learning_rate": hp.learning_rate,
        "warmup_ratio": hp.warmup_ratio,
        "batch_sampler": BatchSamplers.NO_DUPLICATES,
        "save_strategy": "steps",
        "save_steps": training.checkpoint_steps,
        "save_total_limit": 2,
        "logging_steps": max(1, min(50, training.checkpoint_steps)),
        "seed": training.seed,
        "report_to": "none",
        "disable_tqdm": not progress_enabled(),
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": on_gpu(),
        "use_cpu": forced_cpu(),
        **mixed_precision_arguments(training.mixed_precision),
        **_ddp_arguments(),
    }


def mixed_precision_arguments(setting: str) -> dict[str, bool]:
    """``training.mixed_precision`` as trainer arguments (``bf16`` or ``fp16``; none for full precision).

    ``auto`` is bf16 where the GPU computes in it (Ampere and later: ml.g5, g6, p4), else fp16 (ml.g4dn,
    p3): two to three times the fp32 speed. On CPUs it stays fp32, where half precision is slower.
    """
    if setting == "auto":
        if not on_gpu():
            return {}
        import torch

        # Without including_emulation=False, pre-Ampere GPUs (T4, V100) answer True and train in slow emulated bf16.
        setting = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    if setting == "fp16" and not on_gpu():
        raise OsftError(
            "training.mixed_precision 'fp16' needs a GPU, and this training runs on CPUs",
            hint="use 'auto' (full precision on CPUs) or 'bf16', or train on a GPU instance",
        )
    return {setting: True} if setting in ("bf16", "fp16") else {}


def precision_used(args: Any) -> str:
    """The precision the trainer's arguments train in, for the manifest."""
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"


def _ddp_arguments() -> dict[str, Any]:
    """Under torchrun: DDP over gloo on CPUs (accelerate only runs multi-CPU DDP with ``use_cpu``), a long timeout.

    Nothing for a single process, whose arguments stay as they were.
    """
    if world_size() <= 1:
        return {}
    extra: dict[str, Any] = {"ddp_timeout": DDP_TIMEOUT_SECONDS}
    if not on_gpu():
        extra.update(use_cpu=True, ddp_backend="gloo")
        # accelerate names the device "cpu:0" on multi-CPU runs, and torch.load(map_location="cpu:0") cannot
        # restore a checkpoint's optimizer ("don't know how to restore data location"): a resume would fail.
        os.environ.setdefault("ACCELERATE_TORCH_DEVICE", "cpu")
    return extra
