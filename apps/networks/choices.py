"""Network modes a container may name instead of a network, and the default."""

DEFAULT_NETWORK = "bridge"  # each host's default bridge, shared by every team, like docker0
HOST = "host"
NONE = "none"
MODES = (DEFAULT_NETWORK, HOST, NONE)
DRIVER = "bridge"
