"""Accounts have no enumerations of their own; token keywords live here for symmetry."""

# `Token` is DRF's historical keyword, `Bearer` what most HTTP clients send.
TOKEN_KEYWORDS = ("Token", "Bearer")
