"""Run transfers side by side: the first failure cancels the others, and is raised as itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable


async def run_all(awaitables: Iterable[Awaitable[object]]) -> None:
    """Await all in one `asyncio.TaskGroup`. When one fails the rest are cancelled (and awaited) before
    the first failure is raised: not wrapped in an ExceptionGroup, so callers catch registry errors as
    they would from a single transfer."""
    failure: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            for awaitable in awaitables:
                group.create_task(_await(awaitable))
    except BaseExceptionGroup as errors:
        failure = errors.exceptions[0]
    if failure is not None:
        raise failure


async def _await(awaitable: Awaitable[object]) -> None:
    await awaitable
