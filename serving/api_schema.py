"""The service's answers as they are documented in its OpenAPI schema: one error shape for every
error status, and the models of the successful answers. The exception handlers make FastAPI's own
errors (validation, unparseable JSON, body too large) take the same shape, so what a client reads
in /openapi.json is what it gets."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class Problem(BaseModel):
    loc: list[str | int] = Field(description="where: body, query or path, then the field")
    msg: str
    type: str = Field(description="machine-readable kind, e.g. int_type, unknown_ad, json_invalid")


class ErrorBody(BaseModel):
    """Every error: a message, or for 422 the list of problems found in the request."""
    detail: str | list[Problem]


def error_responses(*statuses: int) -> dict[int, dict]:
    """`responses=` for a route: each status it can answer besides 200, with the error shape."""
    meaning = {400: "The body could not be read (e.g. a number too long to parse)",
               401: "No or wrong bearer token (see the `bearer` security scheme)",
               404: "Unknown user",
               413: "Request body too large",
               422: "The request breaks the schema (or the landing contract); `detail` lists the problems, "
                    "including unparseable JSON (type json_invalid)",
               503: "The warehouse is locked by a writer (the daily run); retry later"}
    return {status: {"model": ErrorBody, "description": meaning[status]} for status in statuses}


def problem(loc: list[str | int], msg: str, kind: str) -> dict:
    return {"loc": loc, "msg": msg, "type": kind}


INT64 = (-2**63, 2**63 - 1)


def exact_integer_bounds(node):
    """FastAPI's OpenAPI model holds `minimum`/`maximum` as floats, which turns 2**63 - 1 into 2**63:
    a schema allowing one more id than the service accepts. Integer bounds go back to exact integers
    (every integer bound here is within int64, so a float that rounded past it is the int64 edge)."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(node.get(key), float):
                    node[key] = min(max(int(node[key]), INT64[0]), INT64[1])
        for value in node.values():
            exact_integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            exact_integer_bounds(value)
    return node


def install_exact_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = exact_integer_bounds(build())
        return app.openapi_schema

    app.openapi = openapi


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, (str, list)) else str(error.detail)
        return JSONResponse({"detail": detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        # Only where, what and why: the offending input is not echoed back (it may be large).
        problems = [problem([part for part in item.get("loc", ()) if isinstance(part, (str, int))],
                            str(item.get("msg", "")), str(item.get("type", "invalid"))) for item in error.errors()]
        return JSONResponse({"detail": problems}, status_code=422)


class Ad(BaseModel):
    rank: int
    ad_id: int
    campaign_id: int
    hour: int
    slot: int
    bid: float
    bid_type: str
    pctr: float
    pcvr: float | None = Field(description="null when not estimated: a CPC ad while no CVR ranker is champion "
                               "(its value needs no pCVR)")
    value: float = Field(description="expected value now: bid × pCTR (× pCVR for conversion bids)")
    planned_pctr: float | None
    planned_pcvr: float | None
    planned_value: float | None
    reason: str
    top_features: str
    why: str | None = Field(description="why this ad, in words: the CTR ranker's largest positive SHAP "
                            "contributions for this user and ad now (null for schedules made before explanations)")
    propensity: float = Field(gt=0, le=1, description=(
        "probability with which this policy shows this ad in this slot (1.0: the ranking is "
        "deterministic). Send it back as the impression's `propensity` in POST /events, so "
        "off-policy evaluation can weight the served logs."))
    creative_id: int | None = Field(default=None, description=(
        "the creative (title variant) to show, drawn by the creative selector for this planned impression; "
        "null: show the ad's own title. Send it back as the impression's `creative_id`"))
    creative_title: str | None = Field(default=None, description="that creative's title")
    creative_probability: float | None = Field(default=None, description=(
        "probability the selector drew this creative; send it back as the impression's `creative_propensity`"))


class UserAds(BaseModel):
    user: str
    user_key: str
    schedule_date: str
    hour: int | None
    models: dict[str, str]
    fresh_events: int
    rescored: bool
    sequence_as_of: str
    delivered_ads: list[int]
    reason: str | None
    ads: list[Ad]
    latency_ms: float


class Health(BaseModel):
    status: str
    schedule_date: str
    models: dict[str, str]
    level_factors: dict[str, float]
    scheduled_users: int
    scheduled_rows: int
    users_with_events: int
    events_loaded: int
    events_posted_since_load: dict[str, int]
    loaded_at: str


class EventsAccepted(BaseModel):
    accepted: dict[str, int] = Field(description="new events per table, written to landing files before "
                                                 "this answer (fsynced: they survive a crash)")
    duplicates_ignored: dict[str, list[int]] = Field(description="event ids already received or ingested")
    landing_files: list[str]
