"""Dockerfile instructions as image config changes (commit and import ``--change``)."""

import pytest

from apps.images.instructions import merge, parse_changes
from berth.errors import InvalidInput


def test_each_instruction_lands_in_its_config_key():
    assert parse_changes([
        'CMD ["echo", "hi"]', "ENTRYPOINT /run.sh --fast", 'ENV A=1 B="two words"',
        "ENV LEGACY value with spaces", "LABEL tier=web", "EXPOSE 80 53/udp",
        'VOLUME ["/data"]', "VOLUME /logs", "WORKDIR /srv", "USER nobody", "STOPSIGNAL SIGINT",
        "ENV A=3", "  ", "cmd [\"later\"]",
    ]) == {
        "Cmd": ["later"],
        "Entrypoint": ["/bin/sh", "-c", "/run.sh --fast"],
        "Env": ["B=two words", "LEGACY=value with spaces", "A=3"],
        "Labels": {"tier": "web"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}, "/logs": {}},
        "WorkingDir": "/srv",
        "User": "nobody",
        "StopSignal": "SIGINT",
    }


@pytest.mark.parametrize(("lines", "message"), [
    (["FROM busybox"], "not a valid change command"),
    (["RUN true"], "not a valid change command"),
    (["CMD"], "requires an argument"),
    (["EXPOSE eighty"], "invalid port"),
    (["EXPOSE 70000"], "invalid port"),
    (["WORKDIR relative"], "absolute"),
    (["VOLUME data"], "absolute"),
    (["ENV A=1 B"], "name=value"),
    (["LABEL =x"], "must not be empty"),
    (['ENV A="unclosed'], "ENV"),
    (['CMD ["a", 1]'], "JSON list of strings"),
    ("CMD x", "list of Dockerfile instructions"),
    (["LABEL a=b"] * 101, "at most 100"),
])
def test_bad_instructions_are_refused_with_a_reason(lines, message):
    with pytest.raises(InvalidInput) as refusal:
        parse_changes(lines)
    assert message in refusal.value.message and refusal.value.field == "changes"


def test_later_changes_add_to_lists_and_maps_and_replace_the_rest():
    first = {"Env": ["A=1", "B=2"], "Labels": {"x": "1"}, "Cmd": ["old"]}
    then = {"Env": ["A=9"], "Labels": {"y": "2"}, "Cmd": ["new"]}
    assert merge(first, then) == {"Env": ["B=2", "A=9"], "Labels": {"x": "1", "y": "2"},
                                  "Cmd": ["new"]}
