"""Numbers as a reader expects them: counts as whole numbers, shares with a per-cent sign,
amounts in the City's currency with the sign before the symbol (``-$194,983``), and moments
to the minute in the City's zone, never with microseconds."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "NZD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
UNITS = {"hours": "h", "days": "days"}


def money(value: float | None, currency: str = "USD") -> str:
    """``-$194,983``: whole units, the sign before the symbol; codes without a symbol lead."""
    if value is None:
        return "—"
    sign = "-" if value < 0 else ""
    amount = f"{abs(value):,.0f}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{currency} {amount}"


def value(number: Any, unit: str, currency: str = "USD") -> str:
    """A metric's value in its unit, for a person."""
    if number is None:
        return "—"
    if not isinstance(number, int | float):
        return str(number)
    if unit == "count":
        return f"{number:,.0f}"
    if unit == "%":
        return f"{number:.1f}%"
    if unit == "currency":
        return money(float(number), currency)
    if unit == "ratio":
        return f"{number:.2f}"
    suffix = UNITS.get(unit)
    return f"{number:,.1f} {suffix}" if suffix else f"{number:,.2f}"


def moment(when: Any, zone: str = "UTC") -> str:
    """``2026-12-01 05:15 MST``: to the minute, in the City's zone."""
    if when is None or when == "":
        return "never"
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            return when
    if when.tzinfo is None:
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    local = when.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone)


def day(when: Any, zone: str = "UTC") -> str:
    """``2026-12-01``: a date in the City's zone (a finish date, a due date)."""
    text = moment(when, zone)
    return text[:10] if text != "never" else "—"
