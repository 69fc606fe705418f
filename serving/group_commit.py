"""Group commit of posted events, as databases do it: requests that arrive while a landing write
is under way wait for the next write, which takes them all. One Parquet file and one fsync per
group instead of per request, and one pass of the per-event work; an answer still means the
request's events are on disk (nothing acknowledged is lost)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class GroupCommit(Generic[Request, Answer]):
    def __init__(self, commit: Callable[[list[Request]], Awaitable[list[Answer]]]):
        """`commit` writes a group and answers each of its requests; one group at a time."""
        self._commit = commit
        self._pending: list[tuple[Request, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def submit(self, request: Request) -> Answer:
        """The request's answer once the write holding it has finished; its error if that write failed."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return await future

    async def _write_groups(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                answers = await self._commit([request for request, _ in group])
            except Exception as error:  # every request of the failed write gets the error, none an answer
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), answer in zip(group, answers):
                if not future.done():
                    future.set_result(answer)
