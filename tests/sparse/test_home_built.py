"""The home-built sparse model is built once into the cache, however many processes ask at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_processes_asking_together_build_it_once_and_all_load_it(tmp_path: Path) -> None:
    env = {**os.environ, "OSFT_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    ask = "from osft.trainer.sparse.home_built import home_built_path; print(home_built_path())"
    # As torchrun's ranks in a fresh container do: all start before any has a model to find.
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", ask], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [rank.communicate(timeout=300) for rank in ranks]

    assert [rank.returncode for rank in ranks] == [0, 0, 0], [err[-2000:] for _, err in results]
    built = tmp_path / "cache" / "minilm-splade-home-built"
    assert {out.strip().splitlines()[-1] for out, _ in results} == {str(built)}
    assert (built / "modules.json").exists()
    assert not built.with_name(built.name + ".partial").exists()
