"""The same docker CLI commands against Berth and against a private dockerd (Debian's
docker.io), where the behaviour matters: exit codes, stream separation, ``run`` pulling a
missing image from a local registry, error exit codes."""

import json
import shutil

import pytest

from bench.reference_docker import PrivateDockerd
from tests.dockerapi_helpers import GREETING, Cli, cli_config, start_registry_with_image

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


@pytest.fixture(scope="module")
def registry_image(tmp_path_factory):
    registry, reference = start_registry_with_image(tmp_path_factory.mktemp("reference-reg"))
    yield reference
    registry.stop()


@pytest.fixture(scope="module")
def engines(stack, tmp_path_factory, registry_image):
    if not shutil.which("dockerd"):
        pytest.skip("dockerd (Debian's docker.io) is not installed")
    layout, api = stack
    berth = Cli(f"tcp://{layout.docker_tcp}",
                cli_config(tmp_path_factory.mktemp("reference-config"), api.token))
    with PrivateDockerd() as dockerd:
        yield {"berth": berth, "dockerd": Cli(f"unix://{dockerd.socket}", None)}


def both(engines, *args: str) -> dict:
    return {name: cli(*args) for name, cli in engines.items()}


def test_run_pulls_a_missing_image_the_same_way(engines, registry_image):
    results = both(engines, "run", "--rm", registry_image)
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
        assert result.stdout == GREETING, name
        assert f"Unable to find image '{registry_image}' locally" in result.stderr, name


def test_exit_codes_and_streams_match(engines, registry_image):
    script = "echo out; echo err >&2; exit 3"
    results = both(engines, "run", "--rm", registry_image, "sh", "-c", script)
    assert {(r.returncode, r.stdout, r.stderr) for r in results.values()} == {(3, "out\n",
                                                                                "err\n")}
    results = both(engines, "run", "--rm", registry_image, "no-such-binary")
    codes = {name: result.returncode for name, result in results.items()}
    assert codes["dockerd"] == 127 and codes["berth"] == 127, codes


def test_an_emptied_entrypoint_matches(engines, registry_image):
    # The image's Cmd is `cat /greeting`: an emptied entrypoint drops it as well.
    results = both(engines, "run", "--rm", "--entrypoint", "", registry_image, "echo", "hi")
    assert {(r.returncode, r.stdout) for r in results.values()} == {(0, "hi\n")}
    results = both(engines, "run", "--rm", "--entrypoint", "", registry_image)
    codes = {name: result.returncode for name, result in results.items()}
    assert codes == {"berth": 125, "dockerd": 125}, results
    assert all("no command specified" in r.stderr.lower() for r in results.values()), results


def test_detached_logs_and_wait_match(engines, registry_image):
    name = "dockerapi-reference"
    for cli in engines.values():
        cli.ok("run", "-d", "--name", name, registry_image, "sh", "-c",
               "echo one; echo two >&2; exit 4")
    try:
        waits = both(engines, "wait", name)
        assert {result.stdout for result in waits.values()} == {"4\n"}
        logs = both(engines, "logs", name)
        assert {(r.stdout, r.stderr) for r in logs.values()} == {("one\n", "two\n")}
        inspected = {engine: json.loads(cli.ok("inspect", name))[0]
                     for engine, cli in engines.items()}
        for key in ("Status", "Running", "ExitCode", "Pid", "OOMKilled"):
            assert inspected["berth"]["State"][key] == inspected["dockerd"]["State"][key], key
        assert inspected["berth"]["Config"]["Cmd"] == inspected["dockerd"]["Config"]["Cmd"]
        assert inspected["berth"]["Config"]["Image"] == inspected["dockerd"]["Config"]["Image"]
        assert set(inspected["dockerd"]["State"]) <= set(inspected["berth"]["State"]) | {
            "Health"}
    finally:
        for cli in engines.values():
            cli("rm", "-f", name)


def test_errors_for_missing_objects_match(engines):
    for args in (["rm", "nope-ref"], ["inspect", "nope-ref"], ["logs", "nope-ref"],
                 ["rmi", "nope-ref:1"], ["stop", "nope-ref"]):
        results = both(engines, *args)
        codes = {name: result.returncode for name, result in results.items()}
        assert codes["berth"] == codes["dockerd"] == 1, (args, codes)
        assert results["berth"].stderr == results["dockerd"].stderr, args
