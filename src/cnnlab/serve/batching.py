"""Dynamic batching: images that arrive together go through the model together.

A convolutional network's forward pass costs much less per image in a batch than alone (the
weights are read once, the matrix products are larger), so a server that runs each request
on its own wastes most of the machine under load. Requests put their images into a bounded
queue; one loop takes the first waiting image, then whatever else is already waiting or
arrives within `max_wait` seconds, up to `max_batch`, and runs them as one batch. With one
client nothing waits longer than `max_wait`; with many, the batch fills at once.

The model runs in one worker thread, so the event loop keeps answering /health and
accepting uploads while a batch is computed. A full queue is refused at once (the caller
answers 503 with Retry-After), and an image whose request has given up is skipped.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any, Callable


class QueueFull(Exception):
    """More images are waiting than the queue holds."""


class Batcher:
    def __init__(self, run_batch: Callable[[list], list], executor: Executor, max_batch: int,
                 max_wait: float, max_queue: int, on_batch: Callable[[int], None] = lambda n: None):
        self.run_batch, self.executor, self.on_batch = run_batch, executor, on_batch
        self.max_batch, self.max_wait = max_batch, max_wait
        self.queue: asyncio.Queue = asyncio.Queue(max_queue)
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def submit(self, item: Any) -> asyncio.Future:
        """The future of `item`'s answer; QueueFull when the queue is full."""
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise QueueFull from None
        return future

    async def _next_batch(self) -> list:
        loop = asyncio.get_running_loop()
        batch = [await self.queue.get()]
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if not self.queue.empty():  # already waiting: no reason to wait for it
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        return [(item, future) for item, future in batch if not future.done()]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            self.on_batch(len(batch))
            try:
                answers = await loop.run_in_executor(self.executor, self.run_batch,
                                                     [item for item, _ in batch])
            except Exception as exc:  # the model failed: every waiting request hears of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(batch, answers):
                if not future.done():
                    future.set_result(answer)
