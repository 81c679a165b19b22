"""The create-container form: text fields in, the API's JSON shape out.

The form only turns text into the shapes ``services.create_container``
takes (lines into lists, "KEY=value" into objects, numbers into numbers);
every rule about what is valid lives in the service, whose ``InvalidInput``
names the field the error is shown next to.
"""

from __future__ import annotations

from django import forms

from apps.containers.options import RESTART_NAMES


def _text(label: str, help_text: str = "", placeholder: str = "", **kwargs) -> forms.CharField:
    attrs = {"placeholder": placeholder} if placeholder else {}
    return forms.CharField(
        label=label, required=False, help_text=help_text, widget=forms.TextInput(attrs), **kwargs
    )


def _lines(label: str, help_text: str, placeholder: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea({"rows": 3, "placeholder": placeholder}),
    )


class ContainerForm(forms.Form):
    image = _text("Image", "A reference a host has, e.g. busybox or registry:5000/app:1",
                  "busybox", max_length=512)
    name = _text("Name", "Empty: a generated name", "web-1")
    team = forms.ChoiceField(label="Team", required=False)
    host = forms.ChoiceField(label="Host", required=False)
    command = _text("Command", "Split like a shell would, e.g. sh -c 'echo hi'", "sh -c 'echo hi'")
    entrypoint = _text("Entrypoint", "Empty: the image's")
    working_dir = _text("Working directory", "Empty: the image's", "/app")
    user = _text("User", "name or uid[:gid]", "1000:1000")
    env = _lines("Environment", "One KEY=value a line", "LOG_LEVEL=debug")
    labels = _lines("Labels", "One key=value a line", "tier=web")
    ports = _lines("Published ports", "One host:container[/proto] a line, e.g. 8080:80",
                   "8080:80")
    mounts = _lines("Volumes and mounts",
                    "One volume:/path[:ro] or /host/path:/path[:ro] a line", "data:/var/lib/data")
    network = _text("Network", "bridge (default), host, none, or one of the team's networks",
                    "bridge")
    restart_policy = forms.ChoiceField(
        label="Restart policy", required=False,
        choices=[(name, name) for name in RESTART_NAMES],
    )
    memory = _text("Memory limit", "e.g. 256m, 1g", "256m")
    cpus = _text("CPUs", "e.g. 0.5", "0.5")
    pids_limit = _text("Process limit", "Most processes at once", "100")
    auto_remove = forms.BooleanField(label="Remove when it exits", required=False)
    tty = forms.BooleanField(label="Allocate a terminal", required=False)
    open_stdin = forms.BooleanField(label="Keep stdin open", required=False)

    def __init__(self, *args, teams=(), hosts=(), supported=frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(team.slug, team.name) for team in teams]
        self.fields["host"].choices = [("", "Any online host")] + [
            (host.name, host.name) for host in hosts
        ]
        # Ports, mounts and networks appear only where the services take them.
        for name in ("ports", "mounts", "network"):
            if name not in supported:
                del self.fields[name]

    def as_request(self) -> dict:
        """The cleaned text as the body ``POST /api/containers/`` takes."""
        data = self.cleaned_data
        body: dict = {"image": data["image"].strip(), "restart_policy": data["restart_policy"]}
        for name in ("name", "team", "host", "command", "working_dir", "user"):
            if data.get(name, "").strip():
                body[name] = data[name].strip()
        if data["entrypoint"].strip():
            body["entrypoint"] = data["entrypoint"].strip()
        if lines := _nonblank(data["env"]):
            body["env"] = lines
        if lines := _nonblank(data["labels"]):
            body["labels"] = dict(_pair(line) for line in lines)
        for name in ("ports", "mounts"):
            if name in self.fields and (lines := _nonblank(data[name])):
                body[name] = lines
        if "network" in self.fields and data["network"].strip():
            body["network"] = data["network"].strip()
        for name in ("memory", "cpus", "pids_limit"):
            if data[name].strip():
                body[name] = _number(data[name].strip())
        for name in ("auto_remove", "tty", "open_stdin"):
            if data[name]:
                body[name] = True
        return body

    def show_error(self, field: str | None, message: str) -> None:
        """Put a service's error next to its field, or above the form when it has none here."""
        self.add_error(field if field in self.fields else None, message)


def _nonblank(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _pair(line: str) -> tuple[str, str]:
    key, _, value = line.partition("=")
    return key.strip(), value.strip()


def _number(text: str):
    """"0.5" → 0.5, "100" → 100; anything else stays text for the service to judge."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
