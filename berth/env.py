"""Typed readers for environment variables.

Settings are configured only through the environment (12-factor), so a typo
such as ``BERTH_DEBUG=ture`` must stop the process with a message naming the
variable instead of silently falling back to a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})


class EnvError(ImproperlyConfigured):
    """A variable is set but cannot be read as the type its setting needs."""


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    """Treat an empty variable like an unset one: ``FOO=`` in a unit file means "no value"."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise EnvError(f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def env_int(
    name: str,
    default: int,
    environ: Mapping[str, str] | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value, 10)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise EnvError(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise EnvError(f"{name}={number} is above the maximum {maximum}")
    return number


def env_list(
    name: str,
    default: list[str] | tuple[str, ...],
    environ: Mapping[str, str] | None = None,
    *,
    separator: str = ",",
) -> list[str]:
    """Split on ``separator`` and drop blanks, so ``"a, b,"`` reads as ``["a", "b"]``."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(separator) if item.strip()]
