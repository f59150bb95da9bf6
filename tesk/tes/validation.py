"""TES rules a task document and a listing request must follow, beyond the JSON schema.

Every check raises InvalidRequest with a message that names the offending field, so a client learns
what to fix from one response. Nothing here touches storage, the backend or the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from tesk.tes.errors import InvalidRequest
from tesk.tes.models import Input, Output, Task, View
from tesk.tes.states import State

GLOB_CHARS = frozenset("*?[")
MAX_PAGE_SIZE = 2047
DEFAULT_PAGE_SIZE = 256


@dataclass(frozen=True)
class TaskLimits:
    max_executors: int
    max_inputs: int
    max_outputs: int
    max_tags: int


def parse_task(body: object) -> Task:
    """The task document of a CreateTask request body."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("the request body must be a JSON object (a TES task)")
    try:
        return Task.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each invalid field, e.g. `executors[0].command: ...`."""
    problems = []
    for error in exc.errors(include_url=False):
        where = field_path(error["loc"])
        problems.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(problems)


def field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def check_task(task: Task, limits: TaskLimits) -> None:
    """Raise InvalidRequest unless `task` follows the TES rules TESK enforces at create."""
    _check_count("executors", len(task.executors), limits.max_executors)
    _check_count("inputs", len(task.inputs or []), limits.max_inputs)
    _check_count("outputs", len(task.outputs or []), limits.max_outputs)
    _check_count("tags", len(task.tags or {}), limits.max_tags)
    for index, executor in enumerate(task.executors):
        where = f"executors[{index}]"
        if not executor.image.strip():
            raise InvalidRequest(f"{where}.image: an executor needs a container image")
        for name in ("workdir", "stdin", "stdout", "stderr"):
            value = getattr(executor, name)
            if value is not None:
                check_path(value, f"{where}.{name}")
    for index, item in enumerate(task.inputs or []):
        check_input(item, f"inputs[{index}]")
    for index, output in enumerate(task.outputs or []):
        check_output(output, f"outputs[{index}]")
    for index, volume in enumerate(task.volumes or []):
        check_path(volume, f"volumes[{index}]")


def _check_count(field: str, count: int, limit: int) -> None:
    if count > limit:
        raise InvalidRequest(
            f"{field}: a task may have at most {limit} {field}, this one has {count}"
        )


def check_path(path: str, where: str) -> None:
    """A path inside the task's containers: absolute, without `..`, below a top-level directory.

    The task volume is mounted as directories, so a file may not sit directly in `/` (its directory
    would be the root of the container) and no path may be `/` itself.
    """
    if not path.startswith("/"):
        raise InvalidRequest(f"{where}: {path!r} is not an absolute path")
    if "\0" in path:
        raise InvalidRequest(f"{where}: the path contains a NUL character")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest(f"{where}: {path!r} must not contain '..'")
    if len(parts) < 2:
        raise InvalidRequest(
            f"{where}: {path!r} is '/' or directly under '/'; use a directory such as '/data'"
        )


def has_glob(path: str) -> bool:
    return any(ch in GLOB_CHARS for ch in path)


def input_uses_content(item: Input) -> bool:
    """Whether an input is created from its `content` (which then wins over `url`)."""
    return bool(item.content) or (item.content is not None and not item.url)


def check_input(item: Input, where: str) -> None:
    check_path(item.path, f"{where}.path")
    if not input_uses_content(item) and not item.url:
        raise InvalidRequest(f"{where}: an input needs a 'url' or a 'content'")


def check_output(output: Output, where: str) -> None:
    check_path(output.path, f"{where}.path")
    if not output.url:
        raise InvalidRequest(f"{where}.url: an output needs a URL")
    if has_glob(output.path):
        prefix = output.path_prefix
        if not prefix:
            raise InvalidRequest(
                f"{where}.path_prefix: required because path {output.path!r} has wildcards"
            )
        if not output.path.startswith(prefix):
            raise InvalidRequest(
                f"{where}.path_prefix: path {output.path!r} does not start with {prefix!r}"
            )


def split_backend_parameters(
    parameters: Mapping[str, str], supported: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """(supported parameters with lower-case keys, unsupported keys as sent).

    TES keys are case-insensitive: two keys that differ only in case are one key twice.
    """
    known = {key.lower() for key in supported}
    kept: dict[str, str] = {}
    seen: dict[str, str] = {}
    unsupported: list[str] = []
    for key, value in parameters.items():
        folded = key.lower()
        if folded in seen:
            raise InvalidRequest(
                f"resources.backend_parameters: keys {seen[folded]!r} and {key!r} are the same "
                "key (keys are case-insensitive)"
            )
        seen[folded] = key
        if folded in known:
            kept[folded] = value
        else:
            unsupported.append(key)
    return kept, unsupported


def parse_view(value: str | None) -> View:
    if value is None:
        return View.MINIMAL
    try:
        return View(value)
    except ValueError:
        raise InvalidRequest(
            f"view: {value!r} is not one of {', '.join(v.value for v in View)}"
        ) from None


def parse_state(value: str | None) -> State | None:
    if value is None:
        return None
    try:
        return State(value)
    except ValueError:
        raise InvalidRequest(f"state: {value!r} is not a TES state") from None


def parse_page_size(value: int | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size: must be between 1 and {MAX_PAGE_SIZE}, not {value}")
    return value


def tag_filter(keys: Sequence[str], values: Sequence[str]) -> list[tuple[str, str | None]]:
    """Zip `tag_key` and `tag_value` by index; a key without a non-empty value matches any value."""
    if len(values) > len(keys):
        raise InvalidRequest(
            f"tag_value: {len(values)} values given for {len(keys)} tag_key parameters; "
            "every tag_value needs a tag_key at the same position"
        )
    pairs: list[tuple[str, str | None]] = []
    for index, key in enumerate(keys):
        value = values[index] if index < len(values) else None
        pairs.append((key, value or None))
    return pairs
