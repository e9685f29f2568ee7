"""Batches prepared ahead of the net by worker processes, into slots of shared memory (the caffe tool holds
Python's GIL while it runs C++, so a Python thread would starve). Worker w fills global batches w, w + k,
w + 2k, ... (k workers) in order, so the sequence of batches does not depend on the number of workers."""
from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import queue
import time
import weakref

import numpy as np

from data_prep.batches import BatchSource
from data_prep.errors import USER_ERRORS


class Prefetcher:
    """k worker processes, `prefetch` slots each, from global batch `first_batch` on. get(b) copies batch b
    into the given arrays; the workers stop when the Prefetcher goes away (pycaffe) or, under the caffe tool, when
    their parent exits.

    The slots are one anonymous shared mapping (mmap's MAP_SHARED | MAP_ANONYMOUS), which the forked workers
    inherit: it has no name to clean up, the memory is freed when the last process unmaps it however the processes
    end, and its size is bounded by the machine's memory, not by /dev/shm's. (A named /dev/shm segment had both
    faults: the caffe tool exits without finalising Python, so multiprocessing's resource tracker warned of "leaked
    shared_memory objects" in every log; and where /dev/shm is small — 64 MiB in a default Docker container, against
    about 1.2 GB for 8 workers at batch 128 — the workers died of SIGBUS at their first write.)"""

    def __init__(self, source_args: tuple, shapes: list, workers: int, prefetch: int, first_batch: int):
        ctx = mp.get_context("fork")
        self.source_args, self.shapes, self.workers = source_args, shapes, workers
        self.next_batch = first_batch
        per_slot = sum(int(np.prod(s)) for s in shapes) * 4
        slots = workers * prefetch
        self.memory = mmap.mmap(-1, per_slot * slots, flags=mmap.MAP_SHARED)  # anonymous: fileno -1
        self.slots = slot_views(self.memory, shapes)
        self.free = [ctx.Queue() for _ in range(workers)]
        self.ready = [ctx.Queue() for _ in range(workers)]
        for s in range(slots):
            self.free[s % workers].put(s)
        self.processes = [ctx.Process(target=_fill_slots, daemon=True,
                                      args=(source_args, w, workers, self.memory, shapes, self.free[w], self.ready[w],
                                            first_batch))
                          for w in range(workers)]
        for proc in self.processes:
            proc.start()
        self.waited = self.copied = 0.0
        weakref.finalize(self, _shutdown, self.memory, self.processes)

    def get(self, batch: int, outputs: list) -> None:
        """Copy global batch `batch` (the next one due) into `outputs` (image, joints, pose arrays); `waited` and
        `copied` then hold the seconds it waited for the batch and took to copy it. A worker's error on bad input
        (a damaged record) is raised here as a ValueError with its message."""
        w = batch % self.workers
        started = time.perf_counter()
        slot, filled = self._next_ready(w)
        if isinstance(filled, str):
            raise ValueError(filled)
        assert filled == batch, (filled, batch)
        ready = time.perf_counter()
        for out, view in zip(outputs, self.slots[slot]):
            out[...] = view
        self.waited, self.copied = ready - started, time.perf_counter() - ready
        self.free[w].put(slot)
        self.next_batch = batch + 1

    def _next_ready(self, w: int):
        while True:
            try:
                return self.ready[w].get(timeout=5.0)
            except queue.Empty:
                if not self.processes[w].is_alive():
                    raise RuntimeError(f"data worker {w} for {self.source_args[0]} died (exit code "
                                       f"{self.processes[w].exitcode}); see its error above")


def _fill_slots(source_args, worker, workers, buf, shapes, free_q, ready_q, first_batch):
    """A worker: fills slots with batches worker, worker + workers, ...; exits when its parent goes away. `buf` is
    the parent's mapping of the slots, inherited through fork."""
    parent = os.getppid()
    source = BatchSource(*source_args)
    slots = slot_views(buf, shapes)
    batch = first_batch + worker
    try:
        while True:
            try:
                slot = free_q.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if slot is None:
                return
            try:
                source.fill(batch, *slots[slot])
            except USER_ERRORS as e:  # bad input: the message goes to the net's process, which stops on it
                ready_q.put((slot, str(e)))
                return
            ready_q.put((slot, batch))
            batch += workers
    finally:
        del slots


def _shutdown(memory, processes):
    for proc in processes:
        proc.terminate()
        proc.join(timeout=2)
    try:
        memory.close()
    except BufferError:  # a view is still alive somewhere: the memory goes when the process does
        pass


def slot_views(buf, shapes) -> list:
    """Per slot: one float32 view per shape into one shared buffer."""
    per_slot = sum(int(np.prod(s)) for s in shapes)
    views = []
    for s in range(len(buf) // (4 * per_slot)):
        off = s * per_slot * 4
        parts = []
        for shape in shapes:
            parts.append(np.ndarray(shape, dtype=np.float32, buffer=buf, offset=off))
            off += 4 * int(np.prod(shape))
        views.append(parts)
    return views
