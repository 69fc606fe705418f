"""Request bodies above a size are refused with a 413 in the service's error shape.

FastAPI's own `max_body_size` covers bodies streamed without a length (the route raises a 413
HTTPException, rendered by serving.api_schema's handler); a declared Content-Length above the limit
would get Starlette's plain-text 413, so this middleware answers those first, without reading them.
"""
from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY_BYTES = 8 * 1024 * 1024  # 10,000 events of each table fit with room to spare (~5 MB)


def too_large_detail(limit: int) -> str:
    return f"request body larger than {limit} bytes; deliver large batches as landing files"


class DeclaredLengthLimit:
    def __init__(self, app: ASGIApp, max_body_size: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_body_size = app, max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):  # routes that read a body
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_size):
                status, detail = (413, too_large_detail(self.max_body_size)) if declared.isdigit() else \
                    (400, "invalid Content-Length header")
                body = json.dumps({"detail": detail}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
