"""A small typed client of the TES v1.1 HTTP API, for any TES server.

Responses are returned as the JSON documents the server sent (dicts), so that fields a server
adds or leaves out never break the client; the few values the commands rely on are read with
the helpers in tesk.client.tasks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tesk import __version__
from tesk.client import sse
from tesk.client.sse import StreamEvent
from tesk.observability.redact import redact

TES_BASE_PATH = "/ga4gh/tes/v1"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0
MAX_PAGE_SIZE = 2047

JsonObject = dict[str, Any]


class ClientError(Exception):
    """The request could not be made or the server refused it; the message is one line."""


class NotOffered(ClientError):
    """The server does not offer this stream (an older TESK, another TES server)."""


class ServerError(ClientError):
    """The server answered with an error status; `detail` is its reason, if it gave one."""

    def __init__(self, status: int, reason: str, detail: str | None) -> None:
        self.status = status
        self.detail = detail
        text = f"{status} {reason}".strip()
        super().__init__(f"{text}: {detail}" if detail else text)


@dataclass(frozen=True)
class Credentials:
    """Bearer token, or user and password for HTTP Basic (at most one of the two)."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    def apply(self, session: requests.Session) -> None:
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.user is not None:
            session.auth = (self.user, self.password or "")


def base_url(url: str) -> str:
    """The TES base URL for what a user typed: a server root, or a URL already ending in the
    TES base path (`/ga4gh/tes/v1`, or `/v1` of older servers). Raises ValueError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {redact(url)!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a TES base URL has no query or fragment: {redact(url)!r}")
    path = parts.path.rstrip("/")
    if not (path.endswith(TES_BASE_PATH) or path.endswith("/v1")):
        path += TES_BASE_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class TesClient:
    """Calls one TES server. Every method raises ClientError (or ServerError) on failure."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        credentials: Credentials | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.base = base_url(url)
        self._timeout = timeout_s
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"tesk-client/{__version__}"
        self._session.headers["Accept"] = "application/json"
        (credentials or Credentials()).apply(self._session)
        # Reads are safe to repeat when the server is briefly away (restart, rolling update).
        retry = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=retries,
            backoff_factor=backoff_s,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> TesClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- TES operations ---------------------------------------------------------------------

    def service_info(self) -> JsonObject:
        return self._json("GET", "/service-info")

    def create_task(self, task: Mapping[str, Any]) -> str:
        answer = self._json("POST", "/tasks", body=task)
        task_id = answer.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ClientError(f"the server answered CreateTask without a task id: {answer!r:.200}")
        return task_id

    def get_task(self, task_id: str, view: str = "MINIMAL") -> JsonObject:
        return self._json("GET", f"/tasks/{_segment(task_id)}", params={"view": view})

    def list_tasks(
        self,
        *,
        view: str = "MINIMAL",
        page_size: int | None = None,
        page_token: str | None = None,
        name_prefix: str | None = None,
        state: str | None = None,
        tags: Sequence[tuple[str, str | None]] = (),
    ) -> JsonObject:
        """One page of ListTasks; `next_page_token` in the answer asks for the next one."""
        params: list[tuple[str, str]] = [("view", view)]
        if page_size is not None:
            params.append(("page_size", str(page_size)))
        if page_token:
            params.append(("page_token", page_token))
        if name_prefix:
            params.append(("name_prefix", name_prefix))
        if state:
            params.append(("state", state))
        params += tag_params(tags)
        return self._json("GET", "/tasks", params=params)

    def iter_tasks(self, **filters: Any) -> Iterator[JsonObject]:
        """Every task matching the filters of `list_tasks`, following the page tokens."""
        token: str | None = filters.pop("page_token", None)
        seen: set[str] = set()
        while True:
            page = self.list_tasks(page_token=token, **filters)
            yield from page.get("tasks") or []
            token = page.get("next_page_token") or None
            if token is None:
                return
            if token in seen:
                raise ClientError("the server returned the same page token twice; stopping")
            seen.add(token)

    def cancel_task(self, task_id: str) -> None:
        self._json("POST", f"/tasks/{_segment(task_id)}:cancel")

    # -- TESK extensions --------------------------------------------------------------------

    def executor_output(
        self, task_id: str, index: int = 0, stream: str = "stdout", *, follow: bool = False
    ) -> Iterator[bytes]:
        """The bytes executor `index` wrote to `stream` (TESK's GET
        /tasks/{id}/executors/{index}/stdout|stderr), as they arrive; with `follow`, until the
        executor has ended."""
        url = f"{self.base}/tasks/{_segment(task_id)}/executors/{index}/{stream}"
        params = {"follow": "true"} if follow else None
        # A follower may wait long between two lines: no read timeout then.
        timeout = (self._timeout, None) if follow else self._timeout
        try:
            response = self._session.get(
                url, params=params, timeout=timeout, stream=True, headers={"Accept": "text/plain"}
            )
        except requests.exceptions.RequestException as exc:
            raise _request_failed("GET", url, exc, self) from None
        with response:
            if response.status_code >= 400:
                raise ServerError(response.status_code, _phrase(response), _detail(response))
            try:
                yield from response.iter_content(chunk_size=None)
            except requests.exceptions.RequestException as exc:
                raise ClientError(f"GET {redact(url)}: the stream broke: {_cause(exc)}") from None

    # -- TESK extensions ----------------------------------------------------------------------

    def task_events(self, task_id: str, last_event_id: int | None = None) -> Iterator[StreamEvent]:
        """The events of one task (its history first), until its final state; a broken
        connection is resumed after the last event. Raises NotOffered (404: the server has no
        event stream, or no such task) or a non-event-stream answer."""
        path = f"/tasks/{_segment(task_id)}/events"
        return sse.follow(
            lambda after: self._event_lines(path, [], after),
            last_event_id=last_event_id,
            until_final=True,
        )

    def events(
        self,
        *,
        state: str | None = None,
        name_prefix: str | None = None,
        tags: Sequence[tuple[str, str | None]] = (),
        last_event_id: int | None = None,
    ) -> Iterator[StreamEvent]:
        """The events of every task the caller may see, from now on (or after
        `last_event_id`; 0 replays all). Never ends on its own."""
        params: list[tuple[str, str]] = []
        if state:
            params.append(("state", state))
        if name_prefix:
            params.append(("name_prefix", name_prefix))
        params += tag_params(tags)
        return sse.follow(
            lambda after: self._event_lines("/events", params, after), last_event_id=last_event_id
        )

    def _event_lines(
        self, path: str, params: Sequence[tuple[str, str]], last_event_id: int | None
    ) -> Iterator[str]:
        """Open an event stream; its lines, which raise StreamBroken if the connection breaks."""
        url = self.base + path
        headers = {"Accept": sse.CONTENT_TYPE}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        try:
            # The server sends a comment at least every keepalive interval (15 s by default):
            # a connection silent for much longer is gone.
            response = self._session.get(
                url,
                params=params,
                headers=headers,
                stream=True,
                timeout=(self._timeout, sse.READ_TIMEOUT_S),
            )
        except requests.exceptions.RequestException as exc:
            raise sse.StreamBroken(f"cannot reach {redact(self.base)}: {_cause(exc)}") from None
        kind = response.headers.get("Content-Type", "")
        if response.status_code == 404:
            # An unknown task, or a server without events: either way there is nothing to follow
            # (a TESK server says which in the detail).
            detail = _detail(response)
            response.close()
            raise NotOffered(
                f"no event stream at {redact(url)}" + (f": {detail}" if detail else "")
            )
        if response.status_code >= 400:
            error = ServerError(response.status_code, _phrase(response), _detail(response))
            response.close()
            raise error
        if not kind.startswith(sse.CONTENT_TYPE):
            response.close()
            raise NotOffered(f"{redact(url)} is not an event stream ({kind or 'no content type'})")
        return _lines(response)

    # -- HTTP -------------------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        url = self.base + path
        try:
            response = self._session.request(
                method, url, params=params, json=body, timeout=self._timeout
            )
        except requests.exceptions.RequestException as exc:
            raise _request_failed(method, url, exc, self) from None
        if response.status_code >= 400:
            raise ServerError(response.status_code, _phrase(response), _detail(response))
        try:
            document = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise ClientError(
                f"{method} {redact(url)}: the answer is not JSON ({response.status_code}, {kind})"
            ) from None
        if not isinstance(document, dict):
            raise ClientError(f"{method} {redact(url)}: the answer is not a JSON object")
        return document


def _request_failed(
    method: str, url: str, exc: requests.exceptions.RequestException, client: TesClient
) -> ClientError:
    """The one-line error of a request that got no answer."""
    if isinstance(exc, requests.exceptions.RetryError):
        return ClientError(f"{method} {redact(url)}: the server kept failing ({exc})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ClientError(f"cannot reach {redact(client.base)}: {_cause(exc)}")
    if isinstance(exc, requests.exceptions.Timeout):
        return ClientError(f"{method} {redact(url)}: no answer within {client.timeout_s:g} s")
    return ClientError(f"{method} {redact(url)}: {_cause(exc)}")


def _lines(response: requests.Response) -> Iterator[str]:
    try:
        for line in response.iter_lines(decode_unicode=True):
            yield line if isinstance(line, str) else line.decode("utf-8", "replace")
    except requests.exceptions.RequestException as exc:
        raise sse.StreamBroken(f"the event stream broke: {_cause(exc)}") from None
    finally:
        response.close()


def tag_params(tags: Sequence[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """`tag_key`/`tag_value` query parameters, zipped by position as TES defines them.

    Keys with a value go first, so that keys matching any value need no empty placeholder.
    """
    with_value = [(k, v) for k, v in tags if v is not None]
    any_value = [k for k, v in tags if v is None]
    params = [("tag_key", key) for key, _ in with_value]
    params += [("tag_key", key) for key in any_value]
    params += [("tag_value", value) for _, value in with_value]
    return params


def _segment(task_id: str) -> str:
    if not task_id:
        raise ClientError("a task id is empty")
    return quote(task_id, safe="")


def _detail(response: requests.Response) -> str | None:
    """The server's reason: `detail` (or `message`, `msg`) of a JSON error body, else its text."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return redact(text[:300]) if text else None
    if isinstance(body, dict):
        for key in ("detail", "message", "msg", "error", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return redact(" ".join(value.split()))
        return redact(json.dumps(body)[:300])
    return None


def _phrase(response: requests.Response) -> str:
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return response.reason or ""


def _cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, on one line."""
    reason: BaseException = exc
    while True:
        nested = (
            reason.args[0] if reason.args and isinstance(reason.args[0], BaseException) else None
        )
        nested = nested or getattr(reason, "reason", None)
        if not isinstance(nested, BaseException) or nested is reason:
            break
        reason = nested
    text = " ".join(str(reason).split())
    # urllib3 prefixes its own object: "<urllib3.connection.HTTPConnection object at 0x..>: ..."
    if text.startswith("<") and ">: " in text:
        text = text.split(">: ", 1)[1]
    for noise in ("Failed to establish a new connection: ", "Failed to resolve "):
        if noise in text:
            text = text.split(noise, 1)[1] if noise.endswith(": ") else text[text.index(noise) :]
    return redact(text or type(reason).__name__)
