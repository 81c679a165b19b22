"""The Docker Engine API (1.51) over Berth's services, for the docker CLI and SDKs."""
