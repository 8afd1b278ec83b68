"""A stop request that every wait of one job or endpoint listens to (StopTrainingJob, DeleteEndpoint).

    cancel = Cancel(event, check=lambda: store.get(name).stop_reason is not None)
    cancel.wait(5)                    # sleeps, or returns True as soon as a stop is asked for
    cancel.run(pull_and_prepare(…))   # a coroutine on a loop of its own, its task cancelled on a stop
    cancel.call(stage_inputs, …)      # a blocking call on a thread of its own, given up on a stop

A stop is asked for by setting the `event` (the scheduler does, for the server's own thread), or
seen by `check` (the database row, for a stop written by another server or before a restart), which
is asked at most once every `every` seconds. Whatever is given up raises `Cancelled`.

What cannot be interrupted from outside (a thread blocked reading a socket, a file being copied) is
left to end by itself on its own timeout: its result is dropped, and the threads it runs on are
daemons, so they never hold up the server's exit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from forklift.errors import ForkliftError

log = logging.getLogger(__name__)
T = TypeVar("T")
WATCH = 0.1  # how often a running coroutine's loop looks at the request


class Cancelled(ForkliftError):
    """What was waited for was given up: a stop was asked for."""

    def __init__(self, message: str = "stopped on request") -> None:
        super().__init__(message)


class Cancel:
    """One job's or endpoint's stop request, seen by every wait it makes."""

    def __init__(self, event: threading.Event | None = None, *, check: Callable[[], bool] | None = None,
                 every: float = 1.0) -> None:
        self._event = event if event is not None else threading.Event()
        self._check, self._every = check, every
        self._last_check = float("-inf")
        self._seen = False
        self._lock = threading.Lock()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        if self._seen or self._event.is_set():
            return True
        if self._check is None:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._last_check < self._every:
                return self._seen
            self._last_check = now
            try:
                self._seen = bool(self._check())
            except Exception:  # noqa: BLE001 - a database hiccup neither stops nor fails the work: asked again
                log.warning("could not tell whether a stop was asked for; asking again in %g s", self._every,
                            exc_info=True)
        return self._seen

    def raise_if_set(self) -> None:
        if self.is_set():
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`, or less when a stop is asked for; True when it was."""
        deadline = time.monotonic() + seconds
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._event.wait(min(left, self._every if self._check is not None else left))
        return True

    def call(self, fn: Callable[[], T], *, timeout: float | None = None, grace: float = 0.0,
             name: str = "cancellable") -> T:
        """`fn()` on a daemon thread; `Cancelled` once a stop was asked for and `grace` more seconds have
        passed without its end, `TimeoutError` after `timeout` seconds. The thread is then left to end by
        itself; what it returns or raises is dropped."""
        future: Future[T] = Future()
        _start_daemon(future, fn, name)
        deadline = None if timeout is None else time.monotonic() + timeout
        stopped_at: float | None = None
        while True:
            now = time.monotonic()
            if stopped_at is None and self.is_set():
                stopped_at = now
            if stopped_at is not None and now - stopped_at >= grace:
                if future.done():
                    return future.result()
                raise Cancelled()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"gave up after {timeout:g} s")
            slices = [WATCH * 5]
            if deadline is not None:
                slices.append(deadline - now)
            if stopped_at is not None:
                slices.append(stopped_at + grace - now)
            try:
                return future.result(timeout=max(0.0, min(slices)))
            except TimeoutError:
                if future.done():  # fn ended just now (its result), or raised a TimeoutError of its own
                    return future.result()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` to its end on a new event loop in this thread, as `asyncio.run` does; a stop
        cancels its task and raises `Cancelled`. Unlike `asyncio.run`, nothing waits for the threads the
        coroutine handed work to (`asyncio.to_thread`): one blocked in a read ends by its own timeout."""
        loop = asyncio.new_event_loop()
        executor = _DaemonThreads()
        loop.set_default_executor(executor)
        asyncio.set_event_loop(loop)
        main = loop.create_task(coroutine)

        async def watch() -> None:
            while not self.is_set():
                await asyncio.sleep(WATCH)
            main.cancel()

        watcher = loop.create_task(watch())
        try:
            try:
                return loop.run_until_complete(main)
            except BaseException as exc:
                # A stop wins over what the cancellation became on its way out (a pull failure, say).
                if self.is_set() and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise Cancelled() from exc
                raise
        finally:
            watcher.cancel()
            _finish_tasks(loop)
            asyncio.set_event_loop(None)
            loop.close()


class _Never(Cancel):
    def set(self) -> None:
        raise TypeError("NEVER is shared by every caller nothing stops; make a Cancel of your own")


NEVER: Cancel = _Never()  # for callers that nothing stops (the CLI, a check at CreateModel)


def _start_daemon(future: Future[T], fn: Callable[[], T], name: str) -> None:
    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, as a Future does
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=work, daemon=True, name=name).start()


class _DaemonThreads(ThreadPoolExecutor):
    """Each call on a daemon thread of its own: nothing joins them at exit, as it would a pool's."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        _start_daemon(future, lambda: fn(*args, **kwargs), "cancellable-io")
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the threads end by themselves; none is waited for


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the coroutine left running and let it unwind, as `asyncio.run` does on its way out."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
