"""Progress of long steps (LMDB build, evaluation, training): a tqdm bar on a terminal, and plain lines —
done/total, rate, ETA — when the output goes to a log (nohup, a redirected stderr, CI), so that a log shows
where a run is. Modes: True (bar), "lines", False (nothing); `progress_mode(quiet)` picks one."""
from __future__ import annotations

import sys
import time

from tqdm import tqdm


def progress_mode(quiet: bool = False) -> bool | str:
    """Nothing when quiet, a bar when stderr is a terminal, else lines."""
    if quiet:
        return False
    return True if sys.stderr.isatty() else "lines"


def eta_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts done of total. In "lines" mode prints `<desc>: done/total unit (p %), rate unit/s, ETA m:ss` at
    every tenth of the total and at least every `every_s` seconds; the last line at the end."""

    def __init__(self, total: int, desc: str, unit: str = "it", mode: bool | str = True, initial: int = 0,
                 every_s: float = 60.0, clock=time.monotonic, out=None):
        self.total, self.desc, self.unit, self.mode = max(0, int(total)), desc, unit, mode
        self.done = self.start = initial
        self.clock, self.every_s, self.out = clock, every_s, out
        self.t0 = self.last_print = clock()
        self.step = max(1, self.total // 10)
        self.next_line = initial + self.step
        self.bar = None
        if mode is True:
            self.bar = tqdm(total=self.total, initial=initial, desc=desc, unit=unit)

    def line(self) -> str:
        elapsed = self.clock() - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = eta_text(left) if left == left else "?"
        return f"{self.desc}: {self.done}/{self.total} {self.unit} ({pct:.0f} %), {rate:.3g} {self.unit}/s, ETA {eta}"

    def update_to(self, done: int) -> None:
        if done <= self.done:
            return
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done
        if self.mode == "lines":
            now = self.clock()
            if done >= self.next_line or now - self.last_print >= self.every_s or done >= self.total:
                print(self.line(), file=self.out or sys.stdout, flush=True)
                self.last_print = now
                while self.next_line <= done:
                    self.next_line += self.step

    def update(self, n: int = 1) -> None:
        self.update_to(self.done + n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
