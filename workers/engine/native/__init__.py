"""Native helpers built by `make` next to the interpreter."""

import sys
from pathlib import Path

SUPERVISOR = Path(sys.executable).parent / "berth-supervisor"


def missing() -> str | None:
    """Why containers cannot run on this installation, or None when they can."""
    if SUPERVISOR.exists():
        return None
    return f"{SUPERVISOR} is not built: run `make` (it compiles native/supervisor.c)"
