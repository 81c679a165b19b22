"""The real docker CLI against a live Berth's Docker Engine API (TCP with a token, and the
root-only unix socket): everyday commands, their output, errors and exit codes."""

import json
import os
import shlex
import socket
import stat
import subprocess
import threading
import time
import urllib.request

import pytest

from tests.dockerapi_helpers import (
    DOCKER,
    GREETING,
    Cli,
    cli_config,
    raw_http,
    start_registry_with_image,
)
from tests.engine.registries import skopeo

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


@pytest.fixture(scope="module")
def docker(stack, tmp_path_factory):
    layout, api = stack
    config = cli_config(tmp_path_factory.mktemp("docker-config"), api.token)
    return Cli(f"tcp://{layout.docker_tcp}", config)


@pytest.fixture(scope="module")
def registry_image(tmp_path_factory):
    registry, reference = start_registry_with_image(tmp_path_factory.mktemp("dockerapi-reg"))
    yield reference
    registry.stop()


def test_version_and_info_negotiate_the_api(docker):
    assert docker.ok("version", "--format", "{{.Server.APIVersion}}").strip() == "1.51"
    assert docker.ok("version", "--format", "{{.Server.Os}}").strip() == "linux"
    info = json.loads(docker.ok("info", "--format", "{{json .}}"))
    assert info["OSType"] == "linux" and info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["NCPU"] >= 1


def test_ping_and_errors_over_raw_http(stack):
    layout, _ = stack
    answer = raw_http(layout.docker_tcp,
                      b"HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = answer.decode()
    assert head.startswith("HTTP/1.1 200") and "Api-Version: 1.51" in head
    assert "Ostype: linux" in head
    answer = raw_http(layout.docker_tcp, b"GET /v1.51/nothing/here HTTP/1.1\r\nHost: x\r\n"
                                         b"Connection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and b"Content-Type: application/json\r\n" in head
    assert json.loads(body) == {"message": "page not found"}
    answer = raw_http(layout.docker_tcp, b"GET /v9.99/info HTTP/1.1\r\nHost: x\r\n"
                                         b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") and b"too new" in answer


def test_a_token_is_required_on_tcp(stack, tmp_path):
    layout, _ = stack
    anonymous = Cli(f"tcp://{layout.docker_tcp}", cli_config(tmp_path, None))
    result = anonymous("ps")
    assert result.returncode == 1 and "authentication required" in result.stderr
    (tmp_path / "bad").mkdir()
    wrong = Cli(f"tcp://{layout.docker_tcp}", cli_config(tmp_path / "bad", "not-a-token"))
    result = wrong("images")
    assert result.returncode == 1 and "invalid Berth API token" in result.stderr


def test_unix_socket_is_root_only_and_acts_as_admin(stack, docker):
    layout, _ = stack
    mode = os.stat(layout.docker_socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    local = Cli(f"unix://{layout.docker_socket}", None)
    name = "dockerapi-unix"
    local.ok("run", "-d", "--name", name, "busybox", "sleep", "60")
    try:
        # The same object through TCP with the admin's token, and through the REST API.
        assert docker.ok("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
    finally:
        local.ok("rm", "-f", name)


def test_run_rm_gives_the_exit_code_and_both_streams(docker):
    result = docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert docker("run", "--rm", "busybox", "true").returncode == 0
    leftovers = docker.ok("ps", "-a", "--filter", "ancestor=busybox", "--format", "{{.Command}}")
    assert "exit 3" not in leftovers


def test_run_i_reads_piped_input_to_its_end(docker):
    result = docker("run", "-i", "--rm", "busybox", "sh", "-c", "wc -l; echo done",
                    input="one\ntwo\nthree\n", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "done"]


def test_run_rm_keeps_the_end_of_long_output(docker):
    result = docker("run", "--rm", "busybox", "seq", "20000", timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert len(lines) == 20000 and lines[-1] == "20000"


def test_detached_container_lifecycle(docker, stack):
    _, api = stack
    name = "dockerapi-life"
    container_id = docker.ok("run", "-d", "--name", name, "--label", "suite=dockerapi",
                             "-e", "GREETING=hi", "-w", "/tmp", "--hostname", "boxhost",
                             "--restart", "on-failure:2", "-m", "64m", "--cpus", "0.5",
                             "busybox", "sh", "-c", "echo started; sleep 600").strip()
    assert len(container_id) == 64
    try:
        status, row = api.json("GET", f"/api/containers/{container_id}/")
        assert status == 200 and row["name"] == name  # the REST API shows the same object
        _, audit = api.json("GET", f"/api/audit/?object_id={container_id}")
        created = [e for e in audit["results"] if e["action"] == "container.create"]
        assert created and created[0]["actor"] == "admin" and created[0]["via"] == "token"
        listed = docker.ok("ps", "--filter", "label=suite=dockerapi",
                           "--format", "{{.Names}}|{{.Status}}|{{.Image}}")
        assert listed.startswith(f"{name}|Up ") and listed.strip().endswith("|busybox")
        inspected = json.loads(docker.ok("inspect", name))[0]
        assert inspected["Id"] == container_id and inspected["Name"] == f"/{name}"
        assert inspected["State"]["Status"] == "running" and inspected["State"]["Pid"] > 0
        assert inspected["Config"]["Hostname"] == "boxhost"
        assert inspected["Config"]["WorkingDir"] == "/tmp"
        assert "GREETING=hi" in inspected["Config"]["Env"]
        assert inspected["Config"]["Labels"]["suite"] == "dockerapi"
        assert inspected["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                           "MaximumRetryCount": 2}
        assert inspected["HostConfig"]["Memory"] == 64 * 2**20
        assert inspected["HostConfig"]["NanoCpus"] == 500_000_000
        assert docker.ok("logs", name) == "started\n"
        docker.ok("pause", name)
        assert "(Paused)" in docker.ok("ps", "--filter", f"name={name}", "--format", "{{.Status}}")
        docker.ok("unpause", name)
        docker.ok("update", "--restart", "always", name)
        policy = docker.ok("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", name)
        assert policy.strip() == "always"
        docker.ok("rename", name, f"{name}-2")
        name = f"{name}-2"
        docker.ok("update", "--restart", "no", name)
        assert docker.ok("stop", "-t", "1", name).strip() == name
        state = docker.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
        assert state.strip() == "exited 137"
        assert docker.ok("ps", "-a", "--filter", f"name={name}", "--format",
                         "{{.Status}}").startswith("Exited (137)")
        docker.ok("start", name)
        assert docker.ok("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
        docker.ok("restart", "-t", "0", name)
        assert docker.ok("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
    finally:
        docker.ok("rm", "-f", name)
    assert docker("inspect", name).returncode == 1
    assert api.call("GET", f"/api/containers/{container_id}/")[0] == 404


def test_wait_logs_and_stream_selection(docker):
    name = "dockerapi-logs"
    docker.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
              "echo one; echo two >&2; echo three; exit 5")
    try:
        assert docker.ok("wait", name).strip() == "5"
        result = docker("logs", name)
        assert result.stdout == "one\nthree\n" and result.stderr == "two\n"
        tail = docker("logs", "--tail", "2", name)
        assert len((tail.stdout + tail.stderr).splitlines()) == 2 and "three\n" in tail.stdout
        stamped = docker.ok("logs", "-t", name).splitlines()
        assert [line.split(" ", 1)[1] for line in stamped] == ["one", "three"]
        assert stamped[0][:4].isdigit() and stamped[0][19] == "." and "Z " in stamped[0]
        followed = docker("logs", "-f", name, timeout=30)  # ends: the container has exited
        assert followed.stdout == "one\nthree\n"
    finally:
        docker.ok("rm", name)


def test_missing_objects_and_conflicts(docker):
    for args in (["rm", "nope-x"], ["stop", "nope-x"], ["logs", "nope-x"], ["wait", "nope-x"]):
        result = docker(*args)
        assert result.returncode == 1, args
        assert "No such container: nope-x" in result.stderr, (args, result.stderr)
    result = docker("inspect", "nope-x")
    assert result.returncode == 1 and "No such object: nope-x" in result.stderr
    result = docker("rmi", "nope-x:1")
    assert result.returncode == 1 and "No such image: nope-x:1" in result.stderr
    name = "dockerapi-busy"
    docker.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
    try:
        result = docker("rm", name)
        assert result.returncode == 1 and "container is running" in result.stderr
        result = docker("run", "-d", "--name", name, "busybox", "true")
        assert result.returncode == 125 and "is already in use" in result.stderr
        result = docker("run", "--rm", "-v", "/tmp:/host", "busybox", "true")
        if result.returncode != 0:  # until volumes are wired: a clear refusal, never a 500
            assert result.returncode == 125 and "Error response from daemon" in result.stderr
    finally:
        docker.ok("rm", "-f", name)


def test_stats_top_and_system(docker):
    name = "dockerapi-stats"
    docker.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
    try:
        row = docker.ok("stats", "--no-stream", "--format", "{{.Name}}|{{.PIDs}}|{{.MemUsage}}",
                        name)
        shown, pids, memory = row.strip().split("|")
        assert shown == name and int(pids) >= 1 and "/" in memory
        df = docker.ok("system", "df", "--format", "{{.Type}}")
        assert "Images" in df and "Containers" in df
    finally:
        docker.ok("rm", "-f", name)


def test_run_pulls_a_missing_image_from_a_registry(docker, registry_image):
    result = docker("run", "--rm", registry_image)
    assert result.returncode == 0, result.stderr
    assert result.stdout == GREETING
    assert f"Unable to find image '{registry_image}' locally" in result.stderr
    images = docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert registry_image in images
    pulled = docker.ok("pull", registry_image)
    assert "Status: Image is up to date" in pulled or "Downloaded newer image" in pulled
    pushed_as = registry_image.replace("tools/box:v1", "tools/pushed:v2")
    docker.ok("tag", registry_image, pushed_as)
    pushed = docker.ok("push", pushed_as)
    assert "v2: digest: sha256:" in pushed
    registry, name = pushed_as.split("/", 1)
    request = urllib.request.Request(
        f"http://{registry}/v2/{name.replace(':', '/manifests/')}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"})
    manifest = json.loads(urllib.request.urlopen(request, timeout=10).read())
    assert manifest["schemaVersion"] == 2
    result = docker("pull", registry_image.rsplit(":", 1)[0] + ":missing")
    assert result.returncode == 1 and "Error response from daemon" in result.stderr


def test_image_tag_inspect_history_and_rmi(docker, registry_image):
    docker.ok("pull", registry_image)
    target = registry_image.rsplit(":", 1)[0] + ":retagged"
    docker.ok("tag", registry_image, target)
    inspected = json.loads(docker.ok("image", "inspect", target))[0]
    assert target in inspected["RepoTags"] and inspected["Id"].startswith("sha256:")
    assert inspected["Config"]["Cmd"] == ["cat", "/greeting"]
    assert len(inspected["RootFS"]["Layers"]) == 2
    assert len(docker.ok("history", "-q", target).split()) >= 1
    removed = docker.ok("rmi", target)
    assert f"Untagged: {target}" in removed
    assert docker("image", "inspect", target).returncode == 1


def test_events_stream_container_actions(docker, stack):
    layout, _ = stack
    since = time.time()
    name = "dockerapi-events"
    until = f"{since + 8:.0f}"
    box = {}

    def watch():
        box["result"] = docker("events", "--filter", "type=container", "--until", until,
                               "--format", "{{.Action}} {{.Actor.Attributes.name}}", timeout=30)

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(1)
    docker.ok("run", "--rm", "--name", name, "busybox", "true")
    thread.join(30)
    assert isinstance(box.get("result"), subprocess.CompletedProcess)
    lines = box["result"].stdout.splitlines()
    assert f"start {name}" in lines and f"die {name}" in lines and f"destroy {name}" in lines


def test_events_since_replays_what_happened(docker):
    name = "dockerapi-events-past"
    before = time.time()
    docker.ok("run", "--rm", "--name", name, "busybox", "true")
    after = time.time() + 1
    result = docker("events", "--since", f"{before:.3f}", "--until", f"{after:.3f}",
                    "--filter", f"container={name}", "--format",
                    "{{.Action}} {{.Actor.Attributes.name}} {{.Time}}", timeout=30)
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [action for action, _, _ in lines] == ["create", "start", "die", "destroy"], lines
    assert all(who == name and before - 1 <= int(at) <= after for _, who, at in lines)
    # Nothing from before `since`.
    result = docker("events", "--since", f"{after:.3f}", "--until", f"{after + 1:.3f}",
                    "--filter", f"container={name}", timeout=30)
    assert result.returncode == 0 and result.stdout == ""
    result = docker("events", "--since", "yesterday-ish", "--until", "1s")
    assert result.returncode != 0


def test_exec_output_exit_code_and_stdin(docker):
    name = "dockerapi-exec"
    docker.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
    try:
        result = docker("exec", name, "sh", "-c", "echo in-exec; echo oops >&2; exit 7")
        assert (result.returncode, result.stdout, result.stderr) == (7, "in-exec\n", "oops\n")
        assert docker("exec", "-i", name, "cat", input="piped in\n").stdout == "piped in\n"
        docker.ok("exec", "-d", name, "touch", "/tmp/detached")
        deadline = time.monotonic() + 10
        while docker("exec", name, "test", "-e", "/tmp/detached").returncode != 0:
            assert time.monotonic() < deadline, "exec -d never ran"
            time.sleep(0.1)
        result = docker("exec", name, "no-such-binary")
        assert result.returncode != 0
        docker.ok("stop", "-t", "0", name)
        result = docker("exec", name, "true")
        assert result.returncode == 1 and "is not running" in result.stderr
    finally:
        docker.ok("rm", "-f", name)


def test_an_anonymous_volume_goes_with_rm_v_only(docker):
    def volumes_of(name: str) -> list[str]:
        mounts = json.loads(docker.ok("inspect", "-f", "{{json .Mounts}}", name))
        return [mount["Name"] for mount in mounts if mount["Type"] == "volume"]

    docker.ok("create", "--name", "anon-kept", "-v", "/scratch", "busybox", "true")
    docker.ok("create", "--name", "anon-gone", "-v", "/scratch", "busybox", "true")
    kept, gone = volumes_of("anon-kept"), volumes_of("anon-gone")
    assert len(kept) == 1 and len(gone) == 1 and kept != gone
    try:
        docker.ok("rm", "anon-kept")
        docker.ok("rm", "-v", "anon-gone")
        listed = docker.ok("volume", "ls", "-q").split()
        assert kept[0] in listed and gone[0] not in listed
    finally:
        docker("rm", "-f", "anon-kept", "anon-gone")
        docker("volume", "rm", *kept)


def test_volumes_binds_networks_and_ports(docker, tmp_path):
    volume, network, name = "dockerapi-vol", "dockerapi-net", "dockerapi-web"
    assert docker.ok("volume", "create", volume).strip() == volume
    assert volume in docker.ok("volume", "ls", "--format", "{{.Name}}").split()
    try:
        docker.ok("run", "--rm", "-v", f"{volume}:/data", "busybox", "sh", "-c",
                  "echo kept > /data/file")
        assert docker.ok("run", "--rm", "-v", f"{volume}:/data:ro", "busybox",
                         "cat", "/data/file") == "kept\n"
        (tmp_path / "from-host").write_text("bound\n")
        assert docker.ok("run", "--rm", "-v", f"{tmp_path}:/h:ro", "busybox",
                         "cat", "/h/from-host") == "bound\n"
        inspected = json.loads(docker.ok("volume", "inspect", volume))[0]
        assert inspected["Name"] == volume and inspected["Driver"] == "local"
        network_id = docker.ok("network", "create", network).strip()
        assert len(network_id) == 64
        assert network in docker.ok("network", "ls", "--format", "{{.Name}}").split()
        docker.ok("run", "-d", "--name", name, "--network", network, "-p", "127.0.0.1::80",
                  "busybox", "httpd", "-f", "-p", "80")
        port = docker.ok("port", name, "80").strip()
        assert port.startswith("127.0.0.1:") and int(port.rsplit(":", 1)[1]) > 0
        links = json.loads(docker.ok("inspect", "-f", "{{json .NetworkSettings.Networks}}", name))
        assert links[network]["IPAddress"]
        members = json.loads(docker.ok("network", "inspect", network))[0]["Containers"]
        assert [member["Name"] for member in members.values()] == [name]
        result = docker("network", "rm", network)
        assert result.returncode == 1 and "Error response from daemon" in result.stderr
    finally:
        docker("rm", "-f", name)
        docker("network", "rm", network)
        docker("volume", "rm", volume)
    assert docker("volume", "inspect", volume).returncode == 1
    assert docker("network", "inspect", network).returncode == 1


def test_cp_diff_export_and_commit(docker, tmp_path):
    name = "dockerapi-files"
    docker.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
    try:
        (tmp_path / "in.txt").write_text("copied in\n")
        docker.ok("cp", str(tmp_path / "in.txt"), f"{name}:/tmp/")
        assert docker.ok("exec", name, "cat", "/tmp/in.txt") == "copied in\n"
        docker.ok("cp", f"{name}:/tmp/in.txt", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == "copied in\n"
        result = docker("cp", f"{name}:/no/such/file", str(tmp_path / "x"))
        assert result.returncode == 1 and "Could not find the file" in result.stderr
        assert "A /tmp/in.txt" in docker.ok("diff", name).splitlines()
        assert "sleep 600" in docker.ok("top", name)
        exported = docker("export", "-o", str(tmp_path / "fs.tar"), name)
        assert exported.returncode == 0, exported.stderr
        import tarfile

        with tarfile.open(tmp_path / "fs.tar") as archive:
            assert "tmp/in.txt" in archive.getnames()
        image_id = docker.ok("commit", name, "dockerapi-committed:v1").strip()
        assert image_id.startswith("sha256:")
        assert docker.ok("run", "--rm", "dockerapi-committed:v1", "cat", "/tmp/in.txt") == \
            "copied in\n"
    finally:
        docker.ok("rm", "-f", name)
        docker("rmi", "dockerapi-committed:v1")


def test_pull_all_tags(docker, registry_image):
    repository = registry_image.rsplit(":", 1)[0]
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{registry_image}", f"docker://{repository}:v2")
    try:
        result = docker("pull", "-a", repository)
        assert result.returncode == 0, result.stderr
        tags = docker.ok("images", "--format", "{{.Tag}}", repository).split()
        assert sorted(tags) == ["v1", "v2"]
        assert docker.ok("run", "--rm", f"{repository}:v2") == GREETING
    finally:
        docker("rmi", f"{repository}:v1", f"{repository}:v2")


def test_save_load_and_import(docker, tmp_path):
    docker.ok("tag", "busybox", "dockerapi-saved:v1")
    archive = tmp_path / "saved.tar"
    docker.ok("save", "-o", str(archive), "dockerapi-saved:v1")
    assert archive.stat().st_size > 1_000_000
    docker.ok("rmi", "dockerapi-saved:v1")
    assert "Loaded image: dockerapi-saved:v1" in docker.ok("load", "-i", str(archive))
    assert docker.ok("run", "--rm", "dockerapi-saved:v1", "echo", "loaded") == "loaded\n"
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as rootfs:  # a one-file root filesystem
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        rootfs.addfile(info, io.BytesIO(b"hello\n"))
    (tmp_path / "rootfs.tar").write_bytes(buffer.getvalue())
    image_id = docker.ok("import", str(tmp_path / "rootfs.tar"), "dockerapi-imported:v1").strip()
    assert image_id.startswith("sha256:")
    assert "dockerapi-imported:v1" in docker.ok("images", "--format",
                                                 "{{.Repository}}:{{.Tag}}").split()
    docker.ok("rmi", "dockerapi-saved:v1", "dockerapi-imported:v1")


def test_commit_and_import_apply_change_instructions(docker, tmp_path):
    name = "dockerapi-change"
    docker.ok("run", "-d", "--name", name, "-e", "KEPT=1", "busybox", "sleep", "600")
    try:
        docker.ok("commit", "--change", 'CMD ["sh", "-c", "echo $MODE $KEPT; pwd"]',
                  "--change", "ENV MODE=changed", "--change", "WORKDIR /tmp",
                  "--change", "LABEL tier=web", "--change", "EXPOSE 8080",
                  name, "dockerapi-changed:v1")
        assert docker.ok("run", "--rm", "dockerapi-changed:v1") == "changed 1\n/tmp\n"
        config = json.loads(docker.ok("image", "inspect", "-f", "{{json .Config}}",
                                      "dockerapi-changed:v1"))
        assert config["Labels"] == {"tier": "web"} and "8080/tcp" in config["ExposedPorts"]
        result = docker("commit", "--change", "FROM busybox", name, "dockerapi-bad:v1")
        assert result.returncode == 1 and "not a valid change command" in result.stderr
        # The same instructions on an imported root filesystem: the busybox binary alone.
        exported = tmp_path / "fs.tar"
        docker.ok("export", "-o", str(exported), name)
        docker.ok("import", "--change", 'ENTRYPOINT ["/bin/echo"]', "--change", "CMD imported",
                  str(exported), "dockerapi-imported-change:v1")
        assert docker.ok("run", "--rm", "dockerapi-imported-change:v1") == \
            "/bin/sh -c imported\n"
    finally:
        docker("rm", "-f", name)
        docker("rmi", "dockerapi-changed:v1", "dockerapi-imported-change:v1")


def test_attach_follows_output_until_exit(docker):
    name = "dockerapi-attach"
    docker.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
              "echo early; sleep 3; echo late; echo late-err >&2; exit 2")
    try:
        deadline = time.monotonic() + 10
        while docker("logs", name).stdout != "early\n":  # attach shows only what comes next
            assert time.monotonic() < deadline
            time.sleep(0.1)
        result = docker("attach", "--no-stdin", name, timeout=30)
        assert result.returncode == 2, result.stderr
        assert "late\n" in result.stdout and "early" not in result.stdout
        assert result.stderr == "late-err\n"
    finally:
        docker("rm", "-f", name)


def _typed_into_a_terminal(docker, args: str, keys: str | list[str]) -> \
        subprocess.CompletedProcess:
    """``docker <args>`` under a pseudo terminal (script(1)), keys typed after two seconds;
    a list is typed piece by piece, a moment apart (as a person types)."""
    command = f"{docker_binary_line(docker)} {args}"
    pieces = [keys] if isinstance(keys, str) else keys
    typing = "; sleep 0.3; ".join(f"printf {shlex.quote(piece)}" for piece in pieces)
    pipeline = (f"(sleep 2; {typing}; sleep 1) | "
                f"script -qec {shlex.quote(command)} /dev/null")
    return subprocess.run(["bash", "-c", pipeline + "; exit ${PIPESTATUS[1]}"],
                          capture_output=True, text=True, timeout=60)


def test_interactive_run_and_exec_through_a_terminal(docker):
    result = _typed_into_a_terminal(docker, "run -it --rm busybox sh",
                                    "tty; echo typed-$((40+2))\nexit 5\n")
    assert result.returncode == 5, result.stdout
    assert "/dev/pts/" in result.stdout and "typed-42" in result.stdout
    name = "dockerapi-exec-tty"
    docker.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
    try:
        result = _typed_into_a_terminal(docker, f"exec -it {name} sh",
                                        "echo in-exec-$((1+1))\nexit 3\n")
        assert result.returncode == 3 and "in-exec-2" in result.stdout, result.stdout
    finally:
        docker.ok("rm", "-f", name)


def test_detach_keys_leave_the_container_running(docker, stack):
    name = "dockerapi-detach"
    layout, api = stack
    # On the unix socket: over TCP the CLI 28 misses its own escape (the error comes back
    # wrapped by the TCP copy) and waits for the exit, against dockerd as well.
    local = Cli(f"unix://{layout.docker_socket}", None)
    try:
        result = _typed_into_a_terminal(local, f"run -it --name {name} busybox sh",
                                        ["echo before-$((1+1))\n", "\x10", "\x11"])
        assert result.returncode == 0, result.stdout
        assert "before-2" in result.stdout
        assert docker.ok("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
        # A client that does not watch for the keys itself: the server detaches it.
        host, port = layout.docker_tcp.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall((f"POST /v1.47/containers/{name}/attach?stream=1&stdin=1&stdout=1"
                          f"&detachKeys=ctrl-a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          f"Upgrade: tcp\r\nX-Berth-Token: {api.token}\r\n\r\n").encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 101")
            sock.sendall(b"echo after-$((2+2))\n")
            received = b""
            while b"after-4" not in received:
                received += sock.recv(4096) or b"<closed early>"
                assert b"<closed early>" not in received, received
            sock.sendall(b"\x01")
            while sock.recv(4096):  # the server ends the attach
                pass
        assert docker.ok("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
        answer = raw_http(layout.docker_tcp, (
            f"POST /v1.47/containers/{name}/attach?stream=1&stdin=1&detachKeys=ctrl- HTTP/1.1"
            f"\r\nHost: x\r\nConnection: close\r\nX-Berth-Token: {api.token}\r\n\r\n").encode())
        assert answer.startswith(b"HTTP/1.1 400") and b"Invalid detach keys" in answer
    finally:
        docker("rm", "-f", name)


def docker_binary_line(docker) -> str:
    config = ["--config", str(docker.config)] if docker.config is not None else []
    return shlex.join([DOCKER, "-H", docker.host, *config])


def _user_with_token(layout, username: str, team: str, *, read_only: bool = False) -> str:
    from berth import ctl

    ctl.manage(layout, "shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from apps.teams.services import ensure_team_owner\n"
        f"user, _ = get_user_model().objects.get_or_create(username={username!r})\n"
        f"ensure_team_owner({team!r}, user)\n"))
    return ctl.manage(layout, "create_token", username, *(["--read-only"] if read_only else []))


def test_a_token_sees_and_acts_only_in_its_teams(stack, docker, tmp_path):
    layout, api = stack
    other = Cli(f"tcp://{layout.docker_tcp}",
                cli_config(tmp_path, _user_with_token(layout, "dockerapi-bob", "bobs")))
    name = "dockerapi-admins"
    admin_id = docker.ok("run", "-d", "--name", name, "busybox", "sleep", "600").strip()
    try:
        assert admin_id[:12] not in other.ok("ps", "-aq")
        for args in (["inspect", name], ["stop", admin_id], ["logs", admin_id]):
            result = other(*args)
            assert result.returncode == 1 and "No such" in result.stderr, args
        assert "No such container" in other("rm", "-f", admin_id).stderr  # exit 0, as dockerd
        own_id = other.ok("run", "-d", "--name", name, "busybox", "sleep", "600").strip()
        _, row = api.json("GET", f"/api/containers/{own_id}/")
        assert row["team"] == "bobs"  # the same name, in the token's own team
        other.ok("rm", "-f", name)
        assert docker.ok("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
    finally:
        docker.ok("rm", "-f", admin_id)
    (tmp_path / "ro").mkdir()
    reader = Cli(f"tcp://{layout.docker_tcp}", cli_config(
        tmp_path / "ro", _user_with_token(layout, "dockerapi-bob", "bobs", read_only=True)))
    assert reader.ok("ps", "-a") is not None
    result = reader("run", "--rm", "busybox", "true")
    assert result.returncode == 125 and "read-only" in result.stderr
