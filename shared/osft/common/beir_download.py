"""Download a public BEIR dataset (corpus.jsonl, queries.jsonl, qrels/) for benchmarks and judged evaluation.

The datasets are zip files on the BEIR maintainers' public server; this needs internet access.
``scripts/bench.py --download scifact`` uses it; any BEIR-layout folder works without it.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from osft.common.errors import InputDataError, ServiceError

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
# Datasets whose zip unpacks to a plain BEIR layout (cqadupstack unpacks to sub-forums, left out).
BEIR_DATASETS = (
    "arguana", "climate-fever", "dbpedia-entity", "fever", "fiqa", "hotpotqa", "msmarco", "nfcorpus", "nq",
    "quora", "scidocs", "scifact", "trec-covid", "webis-touche2020",
)  # fmt: skip


def download_beir(name: str, target_root: Path, *, url: str | None = None, timeout_s: float = 60) -> Path:
    """Download and unpack BEIR dataset ``name`` into ``target_root/name``; returns that folder.

    Does nothing when the folder already holds ``corpus.jsonl``. ``url`` overrides the source
    (a mirror, or a local ``file://`` zip).
    """
    if url is None and name not in BEIR_DATASETS:
        raise InputDataError(
            f"unknown BEIR dataset '{name}'", path=name, hint=f"one of {', '.join(BEIR_DATASETS)}, or pass url="
        )
    folder = target_root / name
    if (folder / "corpus.jsonl").exists():
        return folder
    source = url or BEIR_URL.format(name=name)
    target_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_root) as scratch:
        archive = Path(scratch) / f"{name}.zip"
        try:
            with urllib.request.urlopen(source, timeout=timeout_s) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ServiceError(
                f"could not download BEIR dataset '{name}' from {source}: {getattr(exc, 'reason', exc)}",
                hint="this needs internet access; or download the zip elsewhere and pass its folder with --data",
            ) from None
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(scratch)
        except zipfile.BadZipFile:
            raise ServiceError(f"{source} is not a zip archive", hint="check the URL or try again") from None
        unpacked = Path(scratch) / name
        if not (unpacked / "corpus.jsonl").exists():
            raise InputDataError("archive has no corpus.jsonl", path=source, hint="expected the BEIR layout")
        shutil.move(str(unpacked), folder)
    return folder
