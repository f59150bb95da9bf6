"""Request bodies TESK refuses before Connexion parses them: JSON nested deeper than a task needs.

Python's JSON parser recurses, so a body of ten thousand `[` would end in a RecursionError (a 500)
deep inside the framework; a task needs about five levels. The size limit itself is FOCA's
(MAX_CONTENT_LENGTH), which answers 413 before this runs.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from tesk.tes.errors import InvalidRequest


def register_body_checks(app: Flask, max_depth: int) -> None:
    def check_json_depth() -> None:
        if request.method not in ("POST", "PUT", "PATCH") or not request.is_json:
            return
        try:
            document = request.get_json(silent=True)  # cached: Connexion reuses it
        except RecursionError:
            raise InvalidRequest(_too_deep(max_depth)) from None
        if json_depth(document, max_depth) > max_depth:
            raise InvalidRequest(_too_deep(max_depth))

    app.before_request(check_json_depth)


def json_depth(document: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON document (a scalar is 0); stops counting past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def _too_deep(limit: int) -> str:
    return f"the request body is nested deeper than {limit} levels"
