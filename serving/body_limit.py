"""Request bodies above a size are refused with a 413 in the service's error shape.

A declared Content-Length over the limit is answered at once, without reading the body; a body
streamed without one (chunked) is counted as the route reads it, and the read fails with a 413
HTTPException that serving.api_schema's handler renders. (FastAPI's own `max_body_size` answers a
declared length with a plain-text 413, which is not the documented error body.)
"""
from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 8 * 1024 * 1024  # 10,000 events of each table fit with room to spare (~5 MB)


def too_large_detail(limit: int) -> str:
    return f"request body larger than {limit} bytes; deliver large batches as landing files"


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_size: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_body_size = app, max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):  # no body read otherwise
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
            body = json.dumps({"detail": too_large_detail(self.max_body_size)}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_size:
                raise HTTPException(413, too_large_detail(self.max_body_size))
            return message

        await self.app(scope, counted, send)
