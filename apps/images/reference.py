"""Image references are parsed by the engine; the control plane uses the same parser."""

from workers.engine.reference import Reference, normalize_reference, parse_reference

__all__ = ["Reference", "normalize_reference", "parse_reference"]
