"""forklift.cancel: a stop request seen by waits, coroutines and blocking calls, which give up at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from forklift.cancel import NEVER, Cancel, Cancelled

LONG = 60.0  # what a wait would last if the stop were not seen: far longer than any test may take


def set_soon(cancel: Cancel, after: threading.Event | None = None) -> threading.Thread:
    """Set `cancel` from another thread (once `after` is set, when given)."""
    def go() -> None:
        if after is not None:
            after.wait(LONG)
        cancel.set()

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def test_wait_returns_when_the_stop_is_asked_for_and_sleeps_out_otherwise():
    cancel = Cancel()
    assert cancel.wait(0.05) is False
    set_soon(cancel)
    assert cancel.wait(LONG) is True
    assert cancel.is_set() and cancel.wait(LONG) is True


def test_the_check_is_asked_until_it_says_stop_and_then_no_more():
    asked = []

    def check() -> bool:
        asked.append(1)
        return len(asked) >= 3

    cancel = Cancel(check=check, every=0.01)
    assert cancel.wait(LONG) is True
    count = len(asked)
    assert count == 3 and cancel.is_set() and len(asked) == count


def test_a_failing_check_neither_stops_nor_raises():
    def check() -> bool:
        raise OSError("database is locked")

    cancel = Cancel(check=check, every=0.01)
    assert cancel.wait(0.05) is False
    assert not cancel.is_set()


def test_run_gives_up_a_coroutine_whose_thread_is_blocked_and_does_not_wait_for_the_thread():
    cancel, entered, release = Cancel(), threading.Event(), threading.Event()

    def blocked_read() -> None:  # a socket read with a long timeout
        entered.set()
        release.wait(LONG)

    async def pull() -> None:
        await asyncio.to_thread(blocked_read)

    set_soon(cancel, after=entered)
    with pytest.raises(Cancelled):
        cancel.run(pull())
    assert not release.is_set()  # run returned while the thread still waited
    release.set()


def test_run_turns_what_a_cancelled_coroutine_raised_into_cancelled():
    cancel = Cancel()

    async def pull() -> None:
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            raise RuntimeError("the pull failed: connection closed") from None

    set_soon(cancel)
    with pytest.raises(Cancelled) as info:
        cancel.run(pull())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_run_returns_and_raises_as_asyncio_run_does():
    async def answer() -> int:
        await asyncio.sleep(0)
        return await asyncio.to_thread(lambda: 42)

    async def broken() -> None:
        raise ValueError("no such image")

    assert NEVER.run(answer()) == 42
    with pytest.raises(ValueError, match="no such image"):
        NEVER.run(broken())


def test_call_returns_raises_times_out_and_is_given_up():
    assert NEVER.call(lambda: "staged") == "staged"
    with pytest.raises(KeyError):
        NEVER.call(lambda: {}["missing"])
    release = threading.Event()
    with pytest.raises(TimeoutError):
        NEVER.call(lambda: release.wait(LONG), timeout=0.05)
    cancel, entered = Cancel(), threading.Event()

    def staging() -> None:
        entered.set()
        release.wait(LONG)

    set_soon(cancel, after=entered)
    with pytest.raises(Cancelled):
        cancel.call(staging)
    assert not release.is_set()
    release.set()


def test_call_gives_work_the_grace_period_to_finish_after_a_stop():
    cancel, entered, release = Cancel(), threading.Event(), threading.Event()

    def upload() -> str:
        entered.set()
        release.wait(LONG)
        return "s3://bucket/job/output/model.tar.gz"

    def stop_then_finish() -> None:
        entered.wait(LONG)
        cancel.set()
        release.set()

    threading.Thread(target=stop_then_finish, daemon=True).start()
    assert cancel.call(upload, grace=LONG) == "s3://bucket/job/output/model.tar.gz"


def test_never_cannot_be_set():
    with pytest.raises(TypeError):
        NEVER.set()
    assert not NEVER.is_set()
