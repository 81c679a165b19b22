"""Docker-like container names: generated ``adjective_noun`` defaults and the name rule."""

from __future__ import annotations

import re
import secrets

NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
MAX_NAME_LENGTH = 128

ADJECTIVES = (
    "amber", "bold", "brave", "calm", "clever", "cosmic", "crisp", "eager", "fancy", "gentle",
    "happy", "jolly", "keen", "lively", "lucid", "mellow", "nimble", "noble", "plucky", "quiet",
    "rapid", "serene", "shiny", "snug", "steady", "sunny", "swift", "tidy", "vivid", "witty",
)  # fmt: skip
NOUNS = (
    "anchor", "beacon", "buoy", "cabin", "compass", "cove", "dinghy", "dock", "ferry", "galley",
    "harbor", "helm", "hull", "jetty", "keel", "lagoon", "mast", "marina", "oar", "pier",
    "port", "quay", "raft", "rudder", "sail", "schooner", "skiff", "tide", "wharf", "yacht",
)  # fmt: skip


def generate_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}_{secrets.choice(NOUNS)}"


def name_error(name: str) -> str | None:
    """Why ``name`` is not a valid container name, or None when it is."""
    if len(name) > MAX_NAME_LENGTH:
        return f"name is longer than {MAX_NAME_LENGTH} characters"
    if not NAME_PATTERN.fullmatch(name):
        return (
            f"invalid name {name!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return None
