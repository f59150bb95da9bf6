"""The web dashboard: static files under /dashboard/ that use the TES API from the browser.

The pages hold no data and need no credentials; every task the dashboard shows comes from the TES
API, called by the browser with the user's own Authorization header, so the API's authentication
and ownership rules apply unchanged. See docs/dashboard.md.
"""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Flask, Response, redirect, request
from werkzeug.wrappers.response import Response as Redirect

PREFIX = "/dashboard"

# Nothing outside this origin may load: the dashboard works offline and a task's text (names,
# logs) can never pull in a script or an image from elsewhere.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
_ROOT_MARKER = "__TESK_ROOT__"


def register_dashboard(app: Flask) -> None:
    """Serve the dashboard at /dashboard/ and send / there."""
    blueprint = Blueprint(
        "dashboard",
        __name__,
        static_folder="static",
        static_url_path="/static",
        url_prefix=PREFIX,
    )
    # Every page is the same document; the script renders what the path names, so links to a task
    # or to a filtered list can be shared and reloaded.
    blueprint.add_url_rule("/", "index", _page)
    blueprint.add_url_rule("/tasks/<task_id>", "task", _page)
    blueprint.add_url_rule("/submit", "submit", _page)
    blueprint.add_url_rule("/service-info", "service_info", _page)
    blueprint.add_url_rule("/login", "login", _page)
    blueprint.after_request(_secure)
    app.register_blueprint(blueprint)
    app.add_url_rule("/", "root", _to_dashboard, methods=["GET"])
    app.add_url_rule(PREFIX, "dashboard_bare", _to_dashboard, methods=["GET"])


def _page(task_id: str | None = None) -> Response:
    # script_root: behind a proxy that mounts TESK under a path, links and API calls keep it.
    html = _index_html().replace(_ROOT_MARKER, _attribute(request.script_root))
    return Response(html, mimetype="text/html")


def _to_dashboard() -> Redirect:
    return redirect(f"{request.script_root}{PREFIX}/", code=302)


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _index_html() -> str:
    return resources.files(__package__).joinpath("static/index.html").read_text("utf-8")


def _attribute(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
