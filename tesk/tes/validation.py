"""TES rules a task document and a listing request must follow, beyond the JSON schema.

Every check raises InvalidRequest with a message that names the offending field, so a client learns
what to fix from one response. Nothing here touches storage, the backend or the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from pydantic import ValidationError

from tesk.tes.errors import InvalidRequest
from tesk.tes.models import FileType, Input, Output, Resources, Task, View
from tesk.tes.states import State

GLOB_CHARS = frozenset("*?[")
MAX_PAGE_SIZE = 2047
DEFAULT_PAGE_SIZE = 256
# C0 and C1 control characters and the Unicode line separators: in a name, tag or path they serve
# only to forge log lines or HTTP headers (CR/LF) wherever the value is echoed.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class TaskLimits:
    max_executors: int
    max_inputs: int
    max_outputs: int
    max_tags: int
    max_content_bytes: int = 1024 * 1024
    max_name_bytes: int = 1024
    max_tag_key_bytes: int = 256
    max_tag_value_bytes: int = 1024


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
    if task.name is not None:
        check_label(task.name, "name", limits.max_name_bytes)
    for key, value in (task.tags or {}).items():
        check_label(key, f"tags[{key[:64]!r}] (key)", limits.max_tag_key_bytes)
        check_label(value, f"tags[{key[:64]!r}]", limits.max_tag_value_bytes)
    for index, executor in enumerate(task.executors):
        where = f"executors[{index}]"
        if not executor.image.strip():
            raise InvalidRequest(f"{where}.image: an executor needs a container image")
        if executor.workdir is not None:
            check_path(executor.workdir, f"{where}.workdir", Mount.NONE)
        if executor.stdin is not None:
            check_path(executor.stdin, f"{where}.stdin", Mount.DIRECTORY)
        for name in ("stdout", "stderr"):
            value = getattr(executor, name)
            if value is not None:
                check_path(value, f"{where}.{name}", Mount.PARENT)
    for index, item in enumerate(task.inputs or []):
        check_input(item, f"inputs[{index}]")
        if item.content is not None:
            size = len(item.content.encode("utf-8", errors="surrogatepass"))
            if size > limits.max_content_bytes:
                raise InvalidRequest(
                    f"inputs[{index}].content: {size} bytes, more than the limit of "
                    f"{limits.max_content_bytes} bytes; give larger inputs by 'url'"
                )
    for index, output in enumerate(task.outputs or []):
        check_output(output, f"outputs[{index}]")
    for index, volume in enumerate(task.volumes or []):
        check_path(volume, f"volumes[{index}]", Mount.DIRECTORY)
    if task.resources is not None:
        check_resources(task.resources)


def check_resources(resources: Resources) -> None:
    """Amounts no backend can give: fewer than one core, no or negative memory or disk."""
    cores = resources.cpu_cores
    if cores is not None and cores < 1:
        raise InvalidRequest(f"resources.cpu_cores: must be at least 1, not {cores}")
    for name in ("ram_gb", "disk_gb"):
        value = getattr(resources, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InvalidRequest(f"resources.{name}: must be a finite number above 0, not {value}")


def check_label(text: str, where: str, max_bytes: int) -> None:
    """A task name, tag key or tag value: no control characters, at most `max_bytes` in UTF-8."""
    control = _CONTROL.search(text)
    if control is not None:
        raise InvalidRequest(
            f"{where}: contains a {_char_name(control.group())} character (line breaks and other "
            "control characters are not allowed)"
        )
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise InvalidRequest(f"{where}: {size} bytes, more than the limit of {max_bytes} bytes")


def _char_name(char: str) -> str:
    names = {"\0": "NUL", "\t": "TAB", "\n": "LF (line break)", "\r": "CR (line break)"}
    return names.get(char, f"U+{ord(char):04X} control")


def _check_count(field: str, count: int, limit: int) -> None:
    if count > limit:
        raise InvalidRequest(
            f"{field}: a task may have at most {limit} {field}, this one has {count}"
        )


class Mount(Enum):
    """What of a path the task volume mounts (see tesk/engine/volumes.py)."""

    NONE = "none"  # nothing: a working directory
    DIRECTORY = "directory"  # the path itself: a volume, a DIRECTORY input or output
    PARENT = "parent"  # the directory holding it: a file (or an input of unknown type)


def check_path(path: str, where: str, mount: Mount = Mount.PARENT) -> None:
    """A path inside the task's containers: absolute, without `..`.

    The task volume is mounted as directories, and `/` cannot be one of them: a mounted directory
    may not be `/`, so a file may not sit directly in `/`.
    """
    if not path.startswith("/"):
        raise InvalidRequest(f"{where}: {path!r} is not an absolute path")
    control = _CONTROL.search(path)
    if control is not None:
        raise InvalidRequest(
            f"{where}: the path contains a {_char_name(control.group())} character"
        )
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest(f"{where}: {path!r} must not contain '..'")
    if mount is Mount.DIRECTORY and not parts:
        raise InvalidRequest(f"{where}: {path!r} is '/'; use a directory such as '/data'")
    if mount is Mount.PARENT and len(parts) < 2:
        raise InvalidRequest(
            f"{where}: {path!r} is '/' or directly under '/'; put files in a directory such as "
            "'/data'"
        )


def has_glob(path: str) -> bool:
    return any(ch in GLOB_CHARS for ch in path)


def input_uses_content(item: Input) -> bool:
    """Whether an input is created from its `content` (which then wins over `url`)."""
    return bool(item.content) or (item.content is not None and not item.url)


def check_input(item: Input, where: str) -> None:
    directory = item.type is FileType.DIRECTORY
    check_path(item.path, f"{where}.path", Mount.DIRECTORY if directory else Mount.PARENT)
    uses_content = input_uses_content(item)
    if not uses_content and not item.url:
        raise InvalidRequest(f"{where}: an input needs a 'url' or a 'content'")
    if uses_content and directory:
        raise InvalidRequest(f"{where}.content: 'content' makes a file, but type is DIRECTORY")


def check_output(output: Output, where: str) -> None:
    if not output.url:
        raise InvalidRequest(f"{where}.url: an output needs a URL")
    if not has_glob(output.path):
        directory = output.type is FileType.DIRECTORY
        check_path(output.path, f"{where}.path", Mount.DIRECTORY if directory else Mount.PARENT)
        return
    # The directory before the first wildcard is what gets mounted.
    static = output.path.split("/")
    first_glob = next(i for i, part in enumerate(static) if has_glob(part))
    check_path(output.path, f"{where}.path", Mount.NONE)
    if first_glob < 2:
        raise InvalidRequest(
            f"{where}.path: {output.path!r} has a wildcard directly under '/'; put the files in "
            "a directory such as '/data'"
        )
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
