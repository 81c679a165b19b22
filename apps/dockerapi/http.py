"""HTTP/1.1 on asyncio streams: what the Docker API needs and Django's handlers cannot do.

Requests may carry a ``Content-Length`` body, a chunked body (``docker cp``,
``docker load``) or none. Answers are whole (``Content-Length``), streamed
(chunked, every write flushed at once: wait, events, logs -f, stats, pull)
or a hijack (``101 UPGRADED``, then the socket is a raw pipe: attach, exec).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_LINE = 64 * 1024
MAX_HEADERS = 200
READ_CHUNK = 64 * 1024
JSON = "application/json"  # exactly this: the docker CLI compares the whole string


class HttpError(Exception):
    """The request cannot be read as HTTP; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Body:
    """The request body, read on demand: ``Content-Length`` bytes, chunked, or nothing."""

    def __init__(self, reader: asyncio.StreamReader, length: int | None, chunked: bool):
        self.reader = reader
        self.remaining = length or 0
        self.chunked = chunked
        self.chunk_left = 0
        self.done = not chunked and not length

    @property
    def declared_length(self) -> int | None:
        return None if self.chunked else self.remaining

    async def read(self, size: int = READ_CHUNK) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the body."""
        if self.done:
            return b""
        if self.chunked:
            return await self._read_chunked(size)
        data = await self.reader.read(min(size, self.remaining))
        if not data:
            raise HttpError(400, "the body ended before Content-Length bytes")
        self.remaining -= len(data)
        self.done = self.remaining == 0
        return data

    async def _read_chunked(self, size: int) -> bytes:
        if self.chunk_left == 0:
            line = await _line(self.reader)
            try:
                self.chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError(400, "bad chunk size in the request body") from None
            if self.chunk_left == 0:
                while await _line(self.reader):  # trailers, then the blank line
                    pass
                self.done = True
                return b""
        data = await self.reader.read(min(size, self.chunk_left))
        if not data:
            raise HttpError(400, "the chunked body ended early")
        self.chunk_left -= len(data)
        if self.chunk_left == 0:
            await self.reader.readexactly(2)  # the CRLF after each chunk
        return data

    async def read_all(self, limit: int) -> bytes:
        parts, size = [], 0
        while chunk := await self.read():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"the request body is larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def drain(self) -> None:
        while await self.read():
            pass


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    http_version: str
    body: Body
    api_version: str | None = None  # from a /vX.Y prefix
    match: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def keep_alive(self) -> bool:
        connection = self.header("connection").lower()
        if self.http_version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    @property
    def wants_upgrade(self) -> bool:
        return self.header("upgrade").lower() == "tcp"


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HttpError(431, "a request line or header is too long") from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise HttpError(400, "the connection closed inside a request") from None
        raise EOFError from None
    return line.rstrip(b"\r\n")


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request's head (its body is read later); None when the client closed."""
    try:
        line = await _line(reader)
        while not line:  # tolerate blank lines between requests
            line = await _line(reader)
    except EOFError:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        try:
            raw = await _line(reader)
        except EOFError:
            raise HttpError(400, "the connection closed inside the headers") from None
        if not raw:
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise HttpError(400, f"malformed header line {name[:40]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    else:
        raise HttpError(431, "too many headers")
    return Request(
        method=method.upper(),
        path=unquote(urlsplit(target).path),
        query=parse_qs(urlsplit(target).query, keep_blank_values=True),
        headers=headers,
        http_version=version,
        body=_body(reader, headers),
    )


def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> Body:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Body(reader, None, True)
    length = headers.get("content-length", "").strip()
    if not length:
        return Body(reader, 0, False)
    if not length.isdecimal():
        raise HttpError(400, f"bad Content-Length {length!r}")
    return Body(reader, int(length), False)


def status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    if status == 101:
        reason = "UPGRADED"
    return f"HTTP/1.1 {status} {reason}\r\n".encode()


def head_bytes(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [status_line(status)]
    lines += [f"{name}: {value}\r\n".encode("latin-1") for name, value in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


@dataclass
class Reply:
    """A whole answer: JSON (``data``) or bytes (``body``)."""

    status: int = 200
    data: Any = None
    body: bytes | None = None
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        if self.data is None:
            return b""
        return json.dumps(self.data, separators=(",", ":")).encode() + b"\n"


def error_reply(status: int, message: str) -> Reply:
    return Reply(status, {"message": message})


class ChunkedWriter:
    """A streamed body: every ``write`` is one chunk, flushed before it returns."""

    def __init__(self, writer: asyncio.StreamWriter, head: bool = False):
        self.writer = writer
        self.head = head
        self.closed = False

    async def write(self, data: bytes) -> None:
        if not data or self.head:
            return
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def close(self) -> None:
        if self.closed or self.head:
            return
        self.closed = True
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()
