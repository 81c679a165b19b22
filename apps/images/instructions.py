"""Dockerfile instructions as image config changes (``docker commit --change``,
``docker import --change``).

The instructions that only set configuration are accepted, as dockerd accepts
them there: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and
WORKDIR. The result uses the keys of ``apps.containers.files.COMMIT_CHANGES``;
the engine merges Env, Labels, ExposedPorts and Volumes into what the image has
and replaces the rest.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from berth.errors import InvalidInput

FIELD = "changes"
MAX_INSTRUCTIONS = 100
MAX_LENGTH = 64 * 1024


def parse_changes(lines: Any) -> dict:
    """Every instruction in ``lines`` (a list of strings), in order, as one changes dict."""
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise InvalidInput("changes must be a list of Dockerfile instructions", field=FIELD)
    if len(lines) > MAX_INSTRUCTIONS or sum(len(line) for line in lines) > MAX_LENGTH:
        raise InvalidInput(f"at most {MAX_INSTRUCTIONS} changes of {MAX_LENGTH} bytes in all",
                           field=FIELD)
    changes: dict = {}
    for line in lines:
        if line.strip():
            changes = merge(changes, _instruction(line.strip()))
    return changes


def merge(first: dict, then: dict) -> dict:
    """``then`` applied over ``first``: lists of Env and maps of Labels, ExposedPorts and
    Volumes add up, the other keys are replaced."""
    merged = dict(first)
    for key, value in then.items():
        if key == "Env":
            names = {item.partition("=")[0] for item in value}
            kept = [item for item in merged.get("Env") or [] if item.partition("=")[0] not in names]
            merged["Env"] = [*kept, *value]
        elif key in ("Labels", "ExposedPorts", "Volumes"):
            merged[key] = {**(merged.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def _instruction(line: str) -> dict:
    instruction, _, rest = line.partition(" ")
    instruction, rest = instruction.upper(), rest.strip()
    handler = HANDLERS.get(instruction)
    if handler is None:
        raise InvalidInput(f"{instruction} is not a valid change command; use one of "
                           f"{', '.join(sorted(HANDLERS))}", field=FIELD)
    if not rest:
        raise InvalidInput(f"{instruction} requires an argument", field=FIELD)
    key, value = handler(instruction, rest)
    return {key: value}


def _command(instruction: str, rest: str) -> tuple[str, list[str]]:
    """The JSON (exec) form as it is; the shell form run by /bin/sh -c."""
    words = _json_list(rest)
    key = "Cmd" if instruction == "CMD" else "Entrypoint"
    return key, words if words is not None else ["/bin/sh", "-c", rest]


def _pairs(instruction: str, rest: str) -> tuple[str, Any]:
    """``k=v k2="v 2"``, or the legacy ``k v`` (one pair, the value all the rest)."""
    words = _split(instruction, rest)
    if "=" not in words[0]:
        name, _, value = rest.partition(" ")
        pairs = [(name, value.strip())]
    else:
        pairs = [word.partition("=")[::2] for word in words]
        if any("=" not in word for word in words):
            raise InvalidInput(f"{instruction} needs name=value pairs", field=FIELD)
    if any(not name for name, _ in pairs):
        raise InvalidInput(f"{instruction} names must not be empty", field=FIELD)
    if instruction == "ENV":
        return "Env", [f"{name}={value}" for name, value in pairs]
    return "Labels", dict(pairs)


def _expose(instruction: str, rest: str) -> tuple[str, dict]:
    ports = {}
    for word in _split(instruction, rest):
        number, _, protocol = word.partition("/")
        protocol = (protocol or "tcp").lower()
        if not number.isdigit() or not 0 < int(number) < 65536 or protocol not in (
                "tcp", "udp", "sctp"):
            raise InvalidInput(f"EXPOSE: invalid port {word!r}", field=FIELD)
        ports[f"{int(number)}/{protocol}"] = {}
    return "ExposedPorts", ports


def _volume(instruction: str, rest: str) -> tuple[str, dict]:
    paths = _json_list(rest)
    if paths is None:
        paths = rest.split()
    if not paths or any(not path.startswith("/") for path in paths):
        raise InvalidInput("VOLUME needs absolute paths", field=FIELD)
    return "Volumes", {path: {} for path in paths}


def _text(instruction: str, rest: str) -> tuple[str, str]:
    key = {"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[instruction]
    if instruction == "WORKDIR" and not rest.startswith("/"):
        raise InvalidInput("WORKDIR needs an absolute path", field=FIELD)
    return key, rest


def _json_list(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None  # Docker too runs a malformed JSON form as a shell command
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(f"{rest!r} must be a JSON list of strings", field=FIELD)
    return value


def _split(instruction: str, rest: str) -> list[str]:
    try:
        return shlex.split(rest)
    except ValueError as exc:
        raise InvalidInput(f"{instruction}: {exc}", field=FIELD) from None


HANDLERS = {
    "CMD": _command,
    "ENTRYPOINT": _command,
    "ENV": _pairs,
    "LABEL": _pairs,
    "EXPOSE": _expose,
    "VOLUME": _volume,
    "USER": _text,
    "WORKDIR": _text,
    "STOPSIGNAL": _text,
}
