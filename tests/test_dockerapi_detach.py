"""Detach keys: parsed as moby parses them, found in input that arrives in pieces."""

import pytest

from apps.dockerapi import detach
from apps.dockerapi.errors import DockerError


def test_keys_are_parsed_as_moby_parses_them():
    assert detach.parse(None) == b"\x10\x11"
    assert detach.parse("ctrl-a,x,ctrl-@,ctrl-_") == b"\x01x\x00\x1f"
    for bad in ("ctrl-", "ctrl-ab", "ab", "ctrl-1", ""):
        with pytest.raises(DockerError) as refusal:
            detach.parse(bad if bad else ",")
        assert refusal.value.status == 400


def test_the_sequence_is_found_across_pieces_and_false_starts_pass():
    watcher = detach.Watcher(b"\x10\x11")
    assert watcher.feed(b"ab\x10") == (b"ab", False)
    assert watcher.feed(b"c") == (b"\x10c", False)  # a false start was input after all
    assert watcher.feed(b"\x10\x10") == (b"\x10", False)
    assert watcher.feed(b"\x11dropped") == (b"", True)


def test_a_single_key_and_a_sequence_at_once():
    assert detach.Watcher(b"\x01").feed(b"x\x01y") == (b"x", True)
    assert detach.Watcher(b"\x10\x11").feed(b"ls\n\x10\x11") == (b"ls\n", True)
