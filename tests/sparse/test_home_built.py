"""The home-built sparse model is built once into the cache, however many processes ask at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_processes_asking_together_build_it_once_and_all_find_it(tmp_path: Path) -> None:
    env = {**os.environ, "OSFT_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    # Each process reports whether it built the model itself (1) or found it built (0).
    ask = (
        "import osft.trainer.sparse.home_built as home\n"
        "build, builds = home.build_minilm_splade, []\n"
        "home.build_minilm_splade = lambda *a, **k: builds.append(1) or build(*a, **k)\n"
        "print(home.home_built_path())\n"
        "print(len(builds))\n"
    )
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
    assert {out.strip().splitlines()[-2] for out, _ in results} == {str(built)}
    assert sum(int(out.strip().splitlines()[-1]) for out, _ in results) == 1
    assert (built / "modules.json").exists()
    assert not built.with_name(built.name + ".partial").exists()
