"""One asyncio event loop in a daemon thread, shared by every SSH connection of the process.

Builds run in threads with synchronous code; :meth:`LoopThread.call` runs a coroutine on the
shared loop and blocks the calling thread until it finishes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "amibake-ssh") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop; wait for it in this thread (cancel it if this thread is interrupted)."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise


_SHARED = LoopThread()


def shared_loop() -> LoopThread:
    """The process-wide loop (started on first use)."""
    return _SHARED
