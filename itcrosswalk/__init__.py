"""itcrosswalk: one common model of portfolio work, service tickets and managed endpoints."""

from __future__ import annotations

__version__ = "0.1.0"
