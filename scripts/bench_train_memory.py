"""Peak memory of one MNRL training step on the CPU, against the trainer's estimate.

Each configuration runs in its own process (peak RSS is per process): all-MiniLM-L6-v2 in train
mode (dropout on, as in training), ``batch`` rows of (anchor, positive, negative), every text
``seq`` tokens long, one forward and backward pass. ``osft.trainer.defaults`` switches to
cached-mnrl from this estimate, so its constants come from these figures.

    .venv/bin/python scripts/bench_train_memory.py                 # the default grid
    .venv/bin/python scripts/bench_train_memory.py --grid 32x256 16x512

Prints a table and appends one JSON line per configuration to bench-out/train-memory.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-out" / "train-memory.jsonl"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
GIB = 2**30


def one_step(batch: int, seq: int) -> dict:
    """Runs in the child: one training step; returns the measured and the estimated figures."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from osft.trainer.defaults import EncoderShape
    from osft.trainer.models import load_sentence_transformer

    model = load_sentence_transformer(MODEL, max_seq_length=seq, device="cpu")
    model.train()
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    words = " ".join(["protein"] * (2 * seq))
    features = [model.preprocess([f"{words} {column} {row}" for row in range(batch)]) for column in range(3)]
    MultipleNegativesRankingLoss(model)(features, None).backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    shape = EncoderShape.of(model[0].auto_model.config)
    texts = 3 * batch
    return {
        "model": MODEL,
        "batch": batch,
        "texts": texts,
        "seq": int(features[0]["input_ids"].shape[1]),
        "measured_gib": round((peak - loaded) / GIB, 2),
        "estimated_gib": round(texts * shape.activation_bytes(seq) / GIB, 2),
        "peak_rss_gib": round(peak / GIB, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", nargs="+", default=["16x256", "32x256", "43x256", "8x512", "16x512"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        batch, seq = map(int, args.child.split("x"))
        print(json.dumps(one_step(batch, seq)))
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'texts x seq':>12}  {'measured GiB':>12}  {'estimated GiB':>13}")
    for point in args.grid:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        child = subprocess.run(
            [sys.executable, __file__, "--child", point], capture_output=True, text=True, env=env, check=True
        )
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{row['texts']:>5} x {row['seq']:<4}  {row['measured_gib']:>12.2f}  {row['estimated_gib']:>13.2f}")
        with open(OUT, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
