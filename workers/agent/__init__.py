"""The host agent: wraps workers.engine in Celery tasks on the host's own queue
and reports state back to the control plane. Imports no Django models: every
fact it sends travels as a Celery message (docs/agent-protocol.md)."""
