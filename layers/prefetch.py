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
    into the given arrays, or lends the net the slot's image (`borrow`); the workers stop when the Prefetcher goes
    away (pycaffe) or, under the caffe tool, when their parent exits.

    The slots are one anonymous shared mapping (mmap's MAP_SHARED | MAP_ANONYMOUS), which the forked workers
    inherit: it has no name to clean up, and its size is bounded by the machine's memory, not by /dev/shm's. (A
    named /dev/shm segment had two faults: the caffe tool exits without finalising Python, so multiprocessing's
    resource tracker warned of "leaked shared_memory objects" in every log; and where /dev/shm is small — 64 MiB
    in a default Docker container, against about 1.2 GB for 8 workers at batch 128 — the workers died of SIGBUS at
    their first write.) `pin`, a pair of functions (pycaffe's pin_host_memory, unpin_host_memory), page-locks
    the mapping after the fork, so that Caffe copies a lent image to the GPU at the bus's speed.

    Lending: the net's image blob then points into the slot (pycaffe's Blob.borrow_data, patch 0012) instead of
    receiving a copy, 78 MB at batch 128 that one core copies in 7-10 ms of the solver's time (docs/benchmarks.md,
    "Data layer workers"). The slot goes back to its worker when the next get starts: the net has then finished
    the forward and backward of that batch (and Caffe's copy to the GPU, synchronous, is long done). Since a blob
    may still point into the mapping after the Prefetcher is gone, the mapping is never unmapped: its memory is
    given back (MADV_REMOVE) and the addresses stay valid, reading zeros."""

    def __init__(self, source_args: tuple, shapes: list, workers: int, prefetch: int, first_batch: int,
                 pin: tuple | None = None):
        ctx = mp.get_context("fork")
        self.source_args, self.shapes, self.workers = source_args, shapes, workers
        self.next_batch = first_batch
        slots = workers * prefetch
        # anonymous (fileno -1), and faulted in at once, so that pinning it below takes pages that already exist
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        self.memory = mmap.mmap(-1, slot_bytes(shapes) * slots, flags=flags)
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
        # after the fork: a driver may keep page-locked memory out of forked children
        self.unpin = pin[1] if pin is not None and pin[0](self.memory) else None
        self.lent = None  # (worker, slot) whose image the net's blob points into
        self.handed = 0.0
        weakref.finalize(self, _shutdown, self.memory, self.processes, self.unpin)

    def get(self, batch: int, outputs: list, borrow=None) -> None:
        """Copy global batch `batch` (the next one due) into `outputs` (image, joints, pose arrays); `handed` then
        holds the seconds it took to hand the ready batch over (the data layer times the whole forward itself).
        With `borrow` (a function of an array: the image blob's borrow_data), the image is lent instead of copied,
        and outputs[0] is not used. A worker's error on bad input (a damaged record) is raised here as a ValueError
        with its message."""
        w = batch % self.workers
        if self.lent is not None:  # the net is done with the previous batch once it asks for the next one
            self.free[self.lent[0]].put(self.lent[1])
            self.lent = None
        slot, filled = self._next_ready(w)
        if isinstance(filled, str):
            raise ValueError(filled)
        assert filled == batch, (filled, batch)
        ready = time.perf_counter()
        views = self.slots[slot]
        first = 0
        if borrow is not None:
            borrow(views[0])
            first = 1
        for out, view in zip(outputs[first:], views[first:]):
            out[...] = view
        self.handed = time.perf_counter() - ready
        if borrow is None:
            self.free[w].put(slot)
        else:
            self.lent = (w, slot)
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


_RETIRED = []  # the mappings of ended Prefetchers, their memory given back (class docstring)


def _shutdown(memory, processes, unpin):
    for proc in processes:
        proc.terminate()
        proc.join(timeout=2)
    if unpin is not None:
        unpin(memory)
    try:
        memory.madvise(mmap.MADV_REMOVE)  # frees the pages; the addresses stay mapped, reading zeros
    except (AttributeError, OSError):  # a platform without it: the memory stays until the process ends
        pass
    _RETIRED.append(memory)


def slot_bytes(shapes) -> int:
    """One slot: its float32 arrays, rounded up to whole pages (the image of each slot starts on a page)."""
    return -(-sum(int(np.prod(s)) for s in shapes) * 4 // mmap.PAGESIZE) * mmap.PAGESIZE


def slot_views(buf, shapes) -> list:
    """Per slot: one float32 view per shape into one shared buffer, the slots slot_bytes apart."""
    step = slot_bytes(shapes)
    views = []
    for s in range(len(buf) // step):
        off = s * step
        parts = []
        for shape in shapes:
            parts.append(np.ndarray(shape, dtype=np.float32, buffer=buf, offset=off))
            off += 4 * int(np.prod(shape))
        views.append(parts)
    return views
