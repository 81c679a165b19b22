"""Container networking for one host: bridges, veths, addresses, NAT, published ports, DNS.

    <engine root>/network/
        networks/<name>.json      a bridge network: bridge, subnet, gateway
        ipam/<name>.json          its leases (address → container), under a file lock
        endpoints/<id>.json       a container's netns, interfaces, aliases and ports
        netns/<id>                the container's network namespace (a bind-mounted nsfs file)

Everything the kernel holds (links, iptables rules in Berth's own chains) is
derived from these files, so a crashed agent rebuilds it and removes the rest.
Links and addresses go through pyroute2; rules through iptables-restore.
"""

from .errors import NetworkError
from .manager import Networks

__all__ = ["NetworkError", "Networks"]
