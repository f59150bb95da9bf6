"""Request bodies TESK refuses before Connexion reads them.

- JSON nested deeper than a task needs: Python's JSON parser recurses, so a body of ten thousand
  `[` would end in a RecursionError (a 500) deep inside the framework; a task needs about five
  levels.
- Strings with lone UTF-16 surrogates (`"\\ud800"` is valid JSON): no database and no UTF-8
  encoder accepts them, so they would fail only when the task is stored.

The size limit itself is FOCA's (MAX_CONTENT_LENGTH), which answers 413 before this runs.
"""

from __future__ import annotations

import re
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
        check_document(document, max_depth)

    app.before_request(check_json_depth)


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_document(document: Any, max_depth: int) -> None:
    """Raise InvalidRequest for nesting deeper than `max_depth` or a lone surrogate anywhere."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise InvalidRequest(
                    "the request body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which "
                    "is not text"
                )
            continue
        if isinstance(node, dict):
            children: list[Any] = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth + 1 > max_depth:
            raise InvalidRequest(_too_deep(max_depth))
        stack.extend((child, depth + 1) for child in children)


def _too_deep(limit: int) -> str:
    return f"the request body is nested deeper than {limit} levels"
