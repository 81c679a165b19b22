"""Signatures on agent → control plane messages (both sides import this; no Django).

A joined host holds a key only it and the control plane know (given once at
join). Its agent signs every message it sends to ``control``: HMAC-SHA256 over
the task name and the JSON arguments, carried in two message headers. The
control plane checks the signature and that the message is about the sender's
own host (``apps.hosts.senders``), so a host's Redis credentials cannot be used
to speak for another host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

HOST_HEADER = "berth_host"
SIGNATURE_HEADER = "berth_sig"


def canonical(task_name: str, args: Sequence) -> bytes:
    return json.dumps([task_name, list(args)], sort_keys=True, separators=(",", ":")).encode()


def sign(key: str, task_name: str, args: Sequence) -> str:
    return hmac.new(key.encode(), canonical(task_name, args), hashlib.sha256).hexdigest()


def headers(host_name: str, key: str, task_name: str, args: Sequence) -> dict[str, str]:
    return {HOST_HEADER: host_name, SIGNATURE_HEADER: sign(key, task_name, args)}


def valid(key: str, task_name: str, args: Sequence, signature) -> bool:
    return isinstance(signature, str) and hmac.compare_digest(signature, sign(key, task_name, args))
