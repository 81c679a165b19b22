"""Container JSON, and the request bodies of its actions.

Request serializers only check shapes and document the API; the service
functions make every decision, so other callers get the same rules. Option
fields are plain JSON here: ``apps.containers.options`` parses them.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.containers.choices import DEFAULT_WAIT_TIMEOUT, MAX_WAIT_TIMEOUT
from apps.containers.models import Container
from apps.containers.options import effective

STRINGS = {"type": "array", "items": {"type": "string"}}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
SIZE = {"oneOf": [{"type": "integer"}, {"type": "string"}]}


class ContainerOptionsSerializer(serializers.Serializer):
    """The create options in effect (defaults filled in); documentation only."""

    entrypoint = serializers.ListField(child=serializers.CharField(), allow_null=True)
    working_dir = serializers.CharField(allow_null=True)
    user = serializers.CharField(allow_null=True)
    hostname = serializers.CharField(allow_null=True, help_text="null: the short id")
    read_only = serializers.BooleanField()
    tmpfs = serializers.DictField(child=serializers.CharField())
    mounts = serializers.ListField(child=serializers.DictField())
    extra_hosts = serializers.ListField(child=serializers.CharField())
    sysctls = serializers.DictField(child=serializers.CharField())
    memory = serializers.IntegerField(allow_null=True, help_text="bytes")
    memory_swap = serializers.IntegerField(allow_null=True, help_text="bytes; -1 unlimited")
    cpus = serializers.FloatField(allow_null=True)
    cpu_shares = serializers.IntegerField(allow_null=True)
    cpuset_cpus = serializers.CharField(allow_null=True)
    pids_limit = serializers.IntegerField(allow_null=True)
    stop_signal = serializers.CharField(allow_null=True)
    stop_timeout = serializers.IntegerField(allow_null=True, help_text="null: 10 seconds")
    log_max_size = serializers.IntegerField(allow_null=True, help_text="bytes")
    log_max_files = serializers.IntegerField(allow_null=True)
    no_new_privileges = serializers.BooleanField()
    userns = serializers.BooleanField()
    seccomp = serializers.ChoiceField(choices=["default", "unconfined"])
    tty = serializers.BooleanField()
    open_stdin = serializers.BooleanField()
    start = serializers.BooleanField()
    network = serializers.CharField()
    network_aliases = serializers.ListField(child=serializers.CharField())
    ports = serializers.ListField(child=serializers.DictField())
    networks = serializers.ListField(child=serializers.DictField())


class ContainerSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", read_only=True)
    team = serializers.CharField(source="team.slug", read_only=True)
    image = serializers.CharField(source="image_reference", read_only=True)
    labels = serializers.DictField(child=serializers.CharField(), read_only=True)
    options = serializers.SerializerMethodField()

    class Meta:
        model = Container
        fields = [
            "id",
            "name",
            "team",
            "state",
            "host",
            "image",
            "command",
            "env",
            "labels",
            "restart_policy",
            "auto_remove",
            "options",
            "pid",
            "exit_code",
            "oom_killed",
            "restart_count",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "health_status",
            "health",
        ]
        read_only_fields = fields

    @extend_schema_field(ContainerOptionsSerializer)
    def get_options(self, container) -> dict:
        return effective(container.options)


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
)
class CommandField(serializers.JSONField):
    """A list of arguments, or one string split like a shell would."""


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so a misspelt option is a 400, not silently ignored."""

    def validate(self, attrs):
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
        return attrs


def _option(schema, help_text: str):
    """A JSON request field the service validates, documented with ``schema``."""

    @extend_schema_field(schema)
    class OptionField(serializers.JSONField):
        pass

    return OptionField(required=False, allow_null=True, help_text=help_text)


class ContainerCreateSerializer(StrictSerializer):
    image = serializers.CharField(help_text='image reference, e.g. "busybox" or "ghcr.io/o/app:1"')
    command = CommandField(required=False, allow_null=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=128)
    host = serializers.CharField(required=False, allow_blank=True, help_text="host name")
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")
    constraints = _option(
        STRINGS, 'without "host": host labels to match, e.g. ["region==eu", "disk!=hdd"]'
    )
    env = _option({"oneOf": [STRINGS, STRING_MAP]}, '["K=V", ...] or {"K": "V"}')
    entrypoint = _option(
        {"oneOf": [STRINGS, {"type": "string"}]}, "replaces the image's Entrypoint"
    )
    working_dir = _option({"type": "string"}, "absolute path; default: the image's WorkingDir")
    user = _option({"type": "string"}, '"name", "name:group", "uid" or "uid:gid"')
    hostname = _option({"type": "string"}, "default: the container's short id")
    labels = _option(STRING_MAP, "string → string")
    read_only = _option({"type": "boolean"}, "read-only root filesystem")
    tmpfs = _option(STRING_MAP, '{"/run": "size=64m"}')
    mounts = _option(
        {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}},
        '"name:/path[:ro]", "/host/path:/path[:ro]", "/path" (anonymous volume), or '
        "{type: bind|volume|tmpfs, source, target, read_only, options}",
    )
    extra_hosts = _option(STRINGS, '["name:ip", ...] added to /etc/hosts')
    sysctls = _option(STRING_MAP, "namespaced sysctls only (net.*, fs.mqueue.*, IPC)")
    memory = _option(SIZE, 'bytes or "512m", "1g"; at least 6m')
    memory_swap = _option(SIZE, "memory + swap, bytes or size; -1 unlimited; default 2×memory")
    cpus = _option({"type": "number"}, "CPUs (quota per 100 ms period); at most the host's")
    cpu_shares = _option({"type": "integer"}, "relative weight, 2-262144")
    cpuset_cpus = _option({"type": "string"}, 'CPUs to run on, e.g. "0-1" or "0,2"')
    pids_limit = _option({"type": "integer"}, "most processes at once")
    restart_policy = _option(
        {"type": "string"}, '"no", "on-failure[:N]", "always" or "unless-stopped"'
    )
    stop_signal = _option({"type": "string"}, 'e.g. "SIGINT"; default: the image\'s, else SIGTERM')
    stop_timeout = _option({"type": "integer"}, "seconds stop/restart wait by default (10)")
    log_max_size = _option(SIZE, 'rotate the host\'s log file at this size, e.g. "10m"')
    log_max_files = _option({"type": "integer"}, "log files kept (needs log_max_size)")
    no_new_privileges = _option({"type": "boolean"}, "no_new_privs for the process")
    userns = _option(
        {"type": "boolean"}, "a user namespace of its own: root inside is unprivileged outside"
    )
    seccomp = _option(
        {"type": "string", "enum": ["default", "unconfined"]}, "unconfined: site admins only"
    )
    tty = _option({"type": "boolean"}, "give the process a terminal (its output is logged)")
    open_stdin = _option({"type": "boolean"}, "keep stdin open instead of at end of file")
    healthcheck = _option(
        {"type": "object", "properties": {
            "test": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "interval": {"oneOf": [{"type": "number"}, {"type": "string"}]},
            "timeout": {"oneOf": [{"type": "number"}, {"type": "string"}]},
            "start_period": {"oneOf": [{"type": "number"}, {"type": "string"}]},
            "retries": {"type": "integer"}}},
        'the image\'s HEALTHCHECK overridden: {"test": "cmd" or ["CMD", …] or ["NONE"], '
        '"interval": "30s", "timeout", "retries", "start_period"}',
    )
    auto_remove = _option({"type": "boolean"}, "remove the container when it exits")
    start = _option({"type": "boolean"}, "false: only create it (start it later)")
    network = _option({"type": "string"}, 'bridge (default), host, none or a team network')
    network_aliases = _option(STRINGS, "more names for it on its team network")
    ports = _option(
        {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}},
        '"[host_ip:][host_port:]container_port[/udp]" (ranges "8000-8001:80-81"), or '
        "{container_port, host_port (0: ephemeral), host_ip, protocol}",
    )


class StopSerializer(serializers.Serializer):
    timeout = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=3600,
        allow_null=True,
        default=None,
        help_text="seconds before SIGKILL; default: the container's stop_timeout (10)",
    )


class UpdateSerializer(StrictSerializer):
    memory = _option(SIZE, 'bytes or "512m", "1g"')
    memory_swap = _option(SIZE, "memory + swap; -1 unlimited")
    cpus = _option({"type": "number"}, "CPUs")
    cpu_shares = _option({"type": "integer"}, "relative weight")
    cpuset_cpus = _option({"type": "string"}, 'e.g. "0-1"')
    pids_limit = _option({"type": "integer"}, "most processes at once")
    restart_policy = _option({"type": "string"}, '"no", "on-failure[:N]", "always", …')


class RenameSerializer(StrictSerializer):
    name = serializers.JSONField(help_text="the new name, unique in the team")


@extend_schema_field(OpenApiTypes.STR)
class SignalField(serializers.JSONField):
    """A signal number (default 9) or name such as "TERM"."""


class KillSerializer(serializers.Serializer):
    signal = SignalField(required=False, allow_null=True)


class LogsQuerySerializer(serializers.Serializer):
    tail = serializers.IntegerField(required=False, min_value=0, allow_null=True)
    timestamps = serializers.BooleanField(required=False, default=False)
    since = serializers.CharField(
        required=False, help_text='RFC 3339, epoch seconds or a duration back from now ("10m")'
    )
    until = serializers.CharField(required=False, help_text="as since")
    stdout = serializers.BooleanField(required=False, default=True)
    stderr = serializers.BooleanField(required=False, default=True)
    follow = serializers.BooleanField(required=False, default=False)


class LogEventsQuerySerializer(LogsQuerySerializer):
    follow = serializers.BooleanField(required=False, default=True)
    after = serializers.CharField(
        required=False, help_text="resume after this entry id (as the Last-Event-ID header)"
    )


class StatsQuerySerializer(serializers.Serializer):
    stream = serializers.BooleanField(
        required=False, default=False, help_text="Server-Sent Events, one sample a second"
    )


class WaitQuerySerializer(serializers.Serializer):
    timeout = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_WAIT_TIMEOUT, default=DEFAULT_WAIT_TIMEOUT
    )


class WaitResultSerializer(serializers.Serializer):
    state = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    oom_killed = serializers.BooleanField()
    timed_out = serializers.BooleanField(help_text="true: the timeout passed first (still 200)")


class NetworkStatsSerializer(serializers.Serializer):
    rx_bytes = serializers.IntegerField()
    rx_packets = serializers.IntegerField()
    tx_bytes = serializers.IntegerField()
    tx_packets = serializers.IntegerField()


class BlkioSerializer(serializers.Serializer):
    read = serializers.IntegerField()
    write = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    cpu_usage_ns = serializers.IntegerField()
    memory_usage = serializers.IntegerField()
    memory_limit = serializers.IntegerField()
    memory_cache = serializers.IntegerField()
    pids = serializers.IntegerField()
    blkio = BlkioSerializer()
    networks = serializers.DictField(child=NetworkStatsSerializer())
    read_at = serializers.CharField()


class RemoveQuerySerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, default=False)
    volumes = serializers.BooleanField(
        required=False, default=False, help_text="also remove its anonymous volumes (rm -v)"
    )
