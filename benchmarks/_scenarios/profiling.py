"""cProfile over every thread of a run: the event loop and the storage's worker threads.

The SQL storage runs its statements in worker threads, where a profiler on the main
thread sees nothing. :class:`ThreadProfile` gives each thread started while it is
installed its own profiler, and :meth:`ThreadProfile.window` keeps only what happens
inside the measured phase (the thread profilers are cleared when it opens).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["ThreadProfile"]


class ThreadProfile:
    """Profiles the main thread inside :meth:`window` and every thread started meanwhile."""

    def __init__(self) -> None:
        self.main = cProfile.Profile()
        self._threads: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self.main_stats: pstats.Stats | None = None
        self.thread_stats: pstats.Stats | None = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Give every thread started inside the block a profiler of its own."""
        threading.setprofile(self._start_thread)
        try:
            yield
        finally:
            threading.setprofile(None)

    def _start_thread(self, frame: FrameType, event: str, arg: Any) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self._threads.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread's life

    @contextmanager
    def window(self) -> Iterator[None]:
        """Keep only what the threads do inside the block."""
        with self._lock:
            threads = list(self._threads)
        for profile in threads:
            profile.clear()
        self.main.enable()
        try:
            yield
        finally:
            self.main.disable()
            self.main_stats = pstats.Stats(self.main)
            with self._lock:
                threads = list(self._threads)
            if threads:
                merged = pstats.Stats(threads[0])
                for profile in threads[1:]:
                    merged.add(profile)
                self.thread_stats = merged

    def report(self, top: int = 25) -> str:
        """The top functions by cumulative time: the event loop's, then the worker threads'."""
        out = io.StringIO()
        sections = [("main thread (event loop)", self.main_stats)]
        if self.thread_stats is not None:
            sections.append(("worker threads, merged (thread-seconds)", self.thread_stats))
        for title, stats in sections:
            if stats is None:
                continue
            out.write(f"\n== {title}: top {top} by cumulative time ==\n")
            stats.stream = out  # type: ignore[attr-defined]
            stats.strip_dirs().sort_stats("cumulative").print_stats(top)
        return out.getvalue()
