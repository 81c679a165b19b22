"""Audit log (``record`` is the one way to write it)."""


def record(action: str, obj=None, **kwargs):
    """See ``apps.audit.services.record``; imported lazily so models load first."""
    from apps.audit.services import record as record_event

    return record_event(action, obj, **kwargs)
