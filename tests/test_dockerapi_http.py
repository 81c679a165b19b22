"""The Docker API front end's own parts, without a stack: HTTP parsing (chunked bodies),
stream framing, query parsing and the mapping of Docker create/update bodies."""

import asyncio
import struct

import pytest

from apps.containers.logs import Record
from apps.dockerapi import create, http
from apps.dockerapi.errors import DockerError
from apps.dockerapi.router import Context, find_route, split_version
from apps.dockerapi.routes import streams


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _read(data: bytes):
    async def go():
        reader = _reader(data)
        request = await http.read_request(reader)
        body = await request.body.read_all(1 << 20)
        following = await http.read_request(reader)
        return request, body, following

    return asyncio.run(go())


def test_chunked_request_body_is_decoded_and_the_next_request_follows():
    raw = (b"PUT /v1.51/containers/x/archive?path=%2Ftmp HTTP/1.1\r\nHost: a\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
           b"GET /_ping HTTP/1.1\r\nHost: a\r\n\r\n")
    request, body, following = _read(raw)
    assert request.method == "PUT" and request.path == "/v1.51/containers/x/archive"
    assert request.query == {"path": ["/tmp"]}
    assert body == b"hello world"
    assert following.method == "GET" and following.path == "/_ping"


def test_content_length_body_and_closed_connection():
    request, body, following = _read(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert body == b"abc" and following is None
    with pytest.raises(http.HttpError) as failure:
        _read(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert failure.value.status == 400


def test_routes_match_versioned_paths_and_names_with_slashes():
    from apps.dockerapi import routes  # noqa: F401 - registers the routes

    version, path = split_version("/v1.44/images/127.0.0.1:5000/app/x:1/json")
    assert version == "1.44"
    found, match = find_route("GET", path)
    assert found.handler.__name__ == "inspect_image" and match["name"] == "127.0.0.1:5000/app/x:1"
    found, match = find_route("HEAD", "/_ping")
    assert found.handler.__name__ == "ping"
    found, _ = find_route("HEAD", "/containers/abc/archive")
    assert found.handler.__name__ == "stat_path"
    assert find_route("GET", "/nothing") is None


def test_query_booleans_and_filters_as_docker_clients_send_them():
    request = http.Request("GET", "/containers/json", {
        "all": ["True"], "size": ["False"], "trunc": ["0"],
        "filters": ['{"label":{"a=b":true},"status":["exited"]}'],
    }, {}, "HTTP/1.1", http.Body(None, 0, False))
    ctx = Context(request, None, None, local=True, web_url="")
    assert ctx.q_bool("all") and not ctx.q_bool("size") and not ctx.q_bool("trunc")
    assert ctx.filters() == {"label": ["a=b"], "status": ["exited"]}


def test_multiplexed_frames_group_runs_of_one_stream():
    records = [Record("1-0", "t", "stdout", "F", "a"), Record("2-0", "t", "stdout", "F", "b"),
               Record("3-0", "t", "stderr", "F", "c")]
    data = streams.encode_records(records, False, tty=False)
    assert data == struct.pack(">BxxxL", 1, 4) + b"a\nb\n" + struct.pack(">BxxxL", 2, 2) + b"c\n"
    assert streams.encode_records(records, False, tty=True) == b"a\nb\nc\n"
    big = streams.frame(1, b"x" * (streams.FRAME + 1))
    assert len(big) == 2 * 8 + streams.FRAME + 1


def test_create_body_maps_onto_berth_options():
    body = {
        "Image": "busybox", "Cmd": ["sh"], "Env": ["A=1"], "Labels": {"k": "v"},
        "WorkingDir": "/w", "User": "1000", "Hostname": "h", "Tty": True, "OpenStdin": True,
        "Entrypoint": None,
        "HostConfig": {
            "Memory": 64 * 2**20, "NanoCpus": 1_500_000_000, "PidsLimit": 0,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "Binds": ["/srv:/data:ro,z"], "PortBindings": {"80/tcp": [{"HostIp": "",
                                                                        "HostPort": "8080"}]},
            "NetworkMode": "default", "LogConfig": {"Type": "", "Config": {}},
            "SecurityOpt": ["no-new-privileges"], "Dns": [], "CapAdd": None,
        },
    }
    data = create.create_data(body, "/web")
    assert data["name"] == "web" and data["image"] == "busybox" and data["start"] is False
    assert data["memory"] == 64 * 2**20 and data["cpus"] == 1.5 and "pids_limit" not in data
    assert data["restart_policy"] == "on-failure:3"
    assert data["mounts"] == ["/srv:/data:ro"]
    assert data["ports"] == [{"container_port": "80", "protocol": "tcp", "host_ip": "",
                              "host_port": "8080"}]
    assert "network" not in data and data["no_new_privileges"] is True
    assert data["tty"] and data["open_stdin"]


def test_volumes_paths_no_mount_covers_become_anonymous_volumes():
    # The CLI's `-v /scratch` arrives in Volumes; the SDK lists its binds' targets there too.
    body = {"Image": "busybox", "Volumes": {"/data/": {}, "/scratch": {}},
            "HostConfig": {"Binds": ["named:/data"]}}
    assert create.create_data(body, None)["mounts"] == [
        "named:/data",
        {"type": "volume", "source": "", "target": "/scratch", "read_only": False,
         "options": ""},
    ]
    with pytest.raises(DockerError) as failure:
        create.create_data({"Image": "busybox", "Volumes": ["/x"]}, None)
    assert failure.value.status == 400


def test_unsupported_create_fields_are_refused_not_dropped():
    for host in ({"Privileged": True}, {"CapAdd": ["NET_ADMIN"]}, {"PidMode": "host"},
                 {"LogConfig": {"Type": "syslog"}}, {"SecurityOpt": ["apparmor=x"]}):
        with pytest.raises(DockerError) as failure:
            create.create_data({"Image": "busybox", "HostConfig": host}, None)
        assert failure.value.status == 400
    with pytest.raises(DockerError):
        create.create_data({"HostConfig": {}}, None)


def test_update_body_keeps_only_what_changes():
    body = {"CpuShares": 0, "Memory": 0, "NanoCpus": 0, "MemorySwap": 0,
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}
    assert create.update_data(body) == {"restart_policy": "always"}
    assert create.update_data({"Memory": 1 << 27, "RestartPolicy": {"Name": ""}}) == {
        "memory": 1 << 27}
