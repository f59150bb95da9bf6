"""Response bodies encoded by orjson.

Connexion serialises every handler's answer through Flask's JSON provider, indented and with
sorted keys; a ListTasks page of 256 BASIC tasks is ~0.5 MB of JSON, which the standard
library's encoder took longer to write than the store took to read. orjson writes the same
values compact, in document order (id and state first), as UTF-8 instead of \\u escapes.
Anything orjson cannot encode goes to Flask's encoder, as before.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return super().dumps(obj, **kwargs)


def use_orjson(app: Flask) -> None:
    app.json = OrjsonProvider(app)
