"""Micro-batching: texts of concurrent requests are encoded together in one model call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future


class MicroBatcher:
    """Collects requests for up to ``max_wait_s`` or ``max_batch_size`` texts, then encodes them at once.

    The model runs in one worker thread, so model calls never overlap; while one runs, new
    requests queue and form the next batch. A request larger than ``max_batch_size`` is
    encoded alone. ``on_batch`` is called with each batch's size (for metrics).

    Example::

        batcher = MicroBatcher(encoder.encode, max_batch_size=64, max_wait_s=0.005)
        await batcher.start()
        vectors = await batcher.submit(["hello", "world"])
    """

    def __init__(
        self,
        encode: Callable[[list[str]], list[Any]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._encode = encode
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="osft-encode")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="osft-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, texts: list[str]) -> list[Any]:
        """The encodings of ``texts``, in order, once their batch has run."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(texts, future))
        return await future

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch, size = [first], len(first.texts)
            deadline = loop.time() + self._max_wait_s
            while size < self._max_batch_size:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if size + len(item.texts) > self._max_batch_size:
                    # Keep it for the next batch: put it back at the front by re-queueing first.
                    self._requeue_front(item)
                    break
                batch.append(item)
                size += len(item.texts)
            await self._run(loop, batch, size)

    def _requeue_front(self, item: _Pending) -> None:
        assert self._queue is not None
        rest = []
        while not self._queue.empty():
            rest.append(self._queue.get_nowait())
        self._queue.put_nowait(item)
        for other in rest:
            self._queue.put_nowait(other)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending], size: int) -> None:
        texts = [text for item in batch for text in item.texts]
        if self._on_batch is not None:
            self._on_batch(size)
        try:
            results = await loop.run_in_executor(self._executor, self._encode, texts)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        start = 0
        for item in batch:
            end = start + len(item.texts)
            if not item.future.done():
                item.future.set_result(results[start:end])
            start = end
