"""``/routes/<token>[/suffix]``: sink routes (``config.sink_routes``). The signature is the
credential; the route's constraints are checked before any code runs (a wrong signature
401, a wrong path 404, method 405, content type 415), then the task runs through the
stack's runner and its result is the HTTP answer:

- ``{"status": 201, "headers": {...}, "body": "text" | {"base64": "..."} | any JSON}``
  sets them (each optional);
- any other result is the answer's JSON body, status 200;
- a failed run answers 502 with its error, a run past its time 504.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from vigil.api.routes.tasks import webhooks_of
from vigil.config.sink_routes import verified

router = APIRouter(tags=["tasks"])
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
SHAPE = {"status", "headers", "body"}
LONGEST_RUN_S = 905.0  # a task's timeout is at most 900 s


@router.api_route("/routes/{token}", methods=METHODS, include_in_schema=False)
@router.api_route("/routes/{token}/{rest:path}", methods=METHODS, include_in_schema=False)
async def sink(request: Request, token: str, rest: str = "") -> Response:
    secret: str | None = request.app.state.route_secret
    if secret is None:
        return JSONResponse({"message": "this process serves no sink routes"}, 503)
    route = verified(token, secret)
    if route is None:
        return JSONResponse({"message": "not a valid route (its signature does not check)"}, 401)
    if rest.strip("/") != route.suffix:
        return JSONResponse({"message": f"no such path under this route: /{rest}"}, 404)
    if request.method != route.method:
        return JSONResponse(
            {"message": f"this route takes {route.method}"}, 405, headers={"Allow": route.method}
        )
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if route.content_type and given != route.content_type.lower():
        return JSONResponse(
            {"message": f"this route takes {route.content_type}, got {given or 'none'}"}, 415
        )
    raw = await request.body()
    body: Any
    if given == "application/json" and raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"message": "the body is not JSON"}, 400)
    else:
        try:
            body = raw.decode()
        except UnicodeDecodeError:
            body = {"base64": base64.b64encode(raw).decode()}
    webhooks = webhooks_of(request)
    headers, query = dict(request.headers), dict(request.query_params)
    _, _, run = await run_in_threadpool(
        webhooks.run, route.task_id, body, headers, query, "route", LONGEST_RUN_S
    )
    if run is None or run["status"] == "pending":
        return JSONResponse({"message": "the task ran past its time"}, 504)
    if run["status"] != "success":
        message = f"{run['errorType']}: {run['errorMessage']}"
        return JSONResponse({"message": message, "runId": run["runId"]}, 502)
    return answer(json.loads(run["result"]) if run["result"] else None)


def answer(result: Any) -> Response:
    """The HTTP answer a task's result asks for."""
    if not (isinstance(result, dict) and result and set(result) <= SHAPE):
        return JSONResponse(result)
    status = result.get("status", 200)
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    body = result.get("body")
    if not isinstance(status, int) or not 100 <= status <= 599:
        return JSONResponse({"message": f"the task's status is not an HTTP status: {status}"}, 502)
    if isinstance(body, dict) and set(body) == {"base64"}:
        try:
            return Response(base64.b64decode(body["base64"], validate=True), status, headers)
        except (binascii.Error, ValueError):
            return JSONResponse({"message": "the task's base64 body does not decode"}, 502)
    if isinstance(body, str):
        kind = headers.pop("content-type", headers.pop("Content-Type", "text/plain"))
        return Response(body, status, headers, media_type=kind)
    return JSONResponse(body, status, headers)
