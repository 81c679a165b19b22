"""A SECRET_KEY that survives restarts without anyone having to invent one.

Sessions and CSRF tokens are signed with SECRET_KEY, so a key regenerated on
every start would log everybody out; a key committed to the repository would
let anyone forge them. Generating it once into the var directory avoids both.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

MIN_LENGTH = 50


def load_or_create_secret_key(path: Path) -> str:
    """Read the key at ``path``, creating it (mode 0600) first if it does not exist.

    The key is written to a private temporary file and then hard-linked into
    place, so concurrent first starts (web and worker) agree on one complete
    key: the loser of the race reads what the winner linked.
    """
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp already created it 0600
            handle.write(secrets.token_urlsafe(64))
        with contextlib.suppress(FileExistsError):  # another process won the race
            os.link(tmp_name, path)
    finally:
        os.unlink(tmp_name)
    return _read_key(path)


def _read_key(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < MIN_LENGTH:
        raise ImproperlyConfigured(
            f"{path} holds a secret key shorter than {MIN_LENGTH} characters; "
            "delete it to have a new one generated, or set SECRET_KEY"
        )
    return key
