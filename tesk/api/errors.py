"""Every error becomes a JSON problem-details body (title, status, detail) with one HTTP status.

FOCA's `exceptions.mapping` (PROBLEMS) gives each domain error its status; the handlers here add a
`detail` saying what is wrong, which FOCA's generic handler leaves out.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from connexion import App
from connexion.exceptions import BadRequestProblem, ExtraParameterProblem, ProblemException
from flask import Response, current_app
from foca.config.access import get_config
from foca.errors.exceptions import build_problem, problem_response, shorten_detail
from werkzeug import exceptions as http
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from tesk.api import security
from tesk.tes.errors import (
    Forbidden,
    InvalidRequest,
    PayloadTooLarge,
    QuotaExceeded,
    RangeNotSatisfiable,
    ServiceUnavailable,
    TaskNotFound,
    TeskError,
    Unauthorized,
)

logger = logging.getLogger(__name__)

PROBLEMS: dict[type[BaseException], dict[str, Any]] = {
    InvalidRequest: {"status": 400, "title": "Bad Request"},
    Unauthorized: {"status": 401, "title": "Unauthorized"},
    Forbidden: {"status": 403, "title": "Forbidden"},
    TaskNotFound: {"status": 404, "title": "Not Found"},
    PayloadTooLarge: {"status": 413, "title": "Content Too Large"},
    RangeNotSatisfiable: {"status": 416, "title": "Range Not Satisfiable"},
    QuotaExceeded: {"status": 429, "title": "Too Many Requests"},
    ServiceUnavailable: {"status": 503, "title": "Service Unavailable"},
    TeskError: {"status": 500, "title": "Internal Server Error"},
    Exception: {"status": 500, "title": "Internal Server Error"},
}


def register_error_handlers(app: App) -> None:
    """Add handlers that put the reason of each error into the response's `detail`."""
    app.add_error_handler(TeskError, _domain_error)
    app.add_error_handler(HTTPException, _http_error)
    # Connexion's request validation, including the two classes FOCA has its own handler for.
    for problem_class in (ProblemException, BadRequestProblem, ExtraParameterProblem):
        app.add_error_handler(problem_class, _connexion_problem)
    app.add_error_handler(Exception, _unexpected_error)


def _domain_error(exc: TeskError) -> Response:
    problem, status = build_problem(exc, get_config().exceptions)
    if status >= 500:
        logger.warning("%s: %s", problem.get("title"), exc)
    else:
        logger.info("request rejected (%s): %s", status, exc)
    response = _response(problem, status, str(exc))
    if isinstance(exc, QuotaExceeded):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, RangeNotSatisfiable):
        response.headers["Content-Range"] = f"bytes */{exc.size}"
    return response


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        exc = RequestEntityTooLarge(f"the request body is larger than the limit of {limit} bytes")
    if isinstance(exc, http.Unauthorized) and not exc.www_authenticate:
        # Connexion's own 401s (no or malformed Authorization header) carry no challenge.
        exc = http.Unauthorized(
            security.describe_missing(exc.description), www_authenticate=security.challenges()
        )
    if exc.code is not None and exc.code >= 500:
        logger.error("%s", exc)
    return problem_response(exc)


def _connexion_problem(exc: ProblemException) -> Response:
    problem, status = build_problem(exc, get_config().exceptions)
    detail = exc.detail
    if isinstance(detail, list):
        detail = "; ".join(str(item) for item in detail)
    # jsonschema appends the failing schema and instance after a blank line; the first line says it.
    text = str(detail).split("\n\n", 1)[0].strip() if detail else ""
    text = text or str(exc.title or problem.get("title", ""))
    logger.info("request rejected (%s): %s", status, text)
    return _response(problem, status, text)


def _unexpected_error(exc: Exception) -> Response:
    # Unlike rejected requests, a bug needs its traceback in the log.
    logger.exception("unexpected error while handling the request")
    problem, status = build_problem(exc, get_config().exceptions)
    return _response(problem, status, "an unexpected error occurred; see the server log")


def _response(problem: dict[str, Any], status: int, detail: str) -> Response:
    conf = get_config().exceptions
    body = {**problem, "detail": shorten_detail(detail)}
    if conf.public_members is not None:
        body = {key: value for key, value in body.items() if key in conf.public_members}
    return Response(json.dumps(body), status=status, content_type=conf.media_type)
