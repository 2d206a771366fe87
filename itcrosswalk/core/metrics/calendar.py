"""Business time: how many working seconds lie between two moments on the City's calendar.

Business hours are local time in the calendar's zone on its workdays, less its holidays. The
SLA metric asks this once per ticket, so a lookup must cost O(1): the calendar keeps, for each
day of the span it has seen, the working seconds of all days before it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..config import CalendarConfig


@dataclass
class BusinessCalendar:
    """Working time on a weekly schedule with holidays, in one time zone."""

    zone: ZoneInfo
    workdays: frozenset[int]
    start: time
    end: time
    holidays: frozenset[date] = frozenset()
    _first: date | None = field(default=None, init=False, repr=False)
    _bounds: list[tuple[float, float]] = field(default_factory=list, init=False, repr=False)
    _cumulative: list[float] = field(default_factory=list, init=False, repr=False)
    _starts: list[float] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def from_config(cls, config: CalendarConfig) -> BusinessCalendar:
        def hhmm(text: str) -> time:
            hours, minutes = (int(part) for part in text.split(":"))
            return time.max if hours == 24 else time(hours, minutes)

        return cls(
            zone=ZoneInfo(config.timezone),
            workdays=frozenset(config.workdays),
            start=hhmm(config.start),
            end=hhmm(config.end),
            holidays=frozenset(config.holidays),
        )

    def _day_window(self, day: date) -> tuple[float, float]:
        """The working interval of one local day as epoch seconds (empty when not a workday)."""
        midnight = datetime.combine(day, time(0), self.zone).timestamp()
        if day.weekday() not in self.workdays or day in self.holidays:
            return midnight, midnight
        opens = datetime.combine(day, self.start, self.zone).timestamp()
        closes = datetime.combine(day, self.end, self.zone).timestamp()
        return opens, max(opens, closes)

    def _extend(self, first: date, last: date) -> None:
        """Make sure the tables cover ``first`` .. ``last`` (local days)."""
        if self._first is None:
            self._first = first
        elif first < self._first:
            # Rebuild from the earlier day: rare (the span is set by the first query's data).
            old_last = self._first + timedelta(days=len(self._bounds) - 1)
            self._first, self._bounds, self._cumulative, self._starts = first, [], [], []
            last = max(last, old_last)
        assert self._first is not None
        day = self._first + timedelta(days=len(self._bounds))
        total = self._cumulative[-1] + self._span(self._bounds[-1]) if self._bounds else 0.0
        while day <= last:
            window = self._day_window(day)
            self._bounds.append(window)
            self._cumulative.append(total)
            self._starts.append(datetime.combine(day, time(0), self.zone).timestamp())
            total += self._span(window)
            day += timedelta(days=1)

    @staticmethod
    def _span(window: tuple[float, float]) -> float:
        return window[1] - window[0]

    def _position(self, epoch: float) -> float:
        """Working seconds from the start of the table to ``epoch``."""
        index = bisect.bisect_right(self._starts, epoch) - 1
        opens, closes = self._bounds[index]
        if epoch <= opens:
            return self._cumulative[index]
        if epoch >= closes:
            return self._cumulative[index] + closes - opens
        return self._cumulative[index] + epoch - opens

    def seconds_between(self, start: float, end: float) -> float:
        """Working seconds between two epoch moments (0 when ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        # The tables cover whole local days; a day's margin on each side keeps the bisection
        # inside them whatever the zone's offset.
        if not self._starts or start < self._starts[1] or end >= self._starts[-1]:
            first = datetime.fromtimestamp(start, self.zone).date() - timedelta(days=2)
            last = datetime.fromtimestamp(end, self.zone).date() + timedelta(days=2)
            self._extend(first, last)
        return self._position(end) - self._position(start)

    def days(self, first: date, last: date) -> list[tuple[float, float, float, float]]:
        """The local days ``first`` .. ``last``, each as (its local midnight, the opening and
        closing of its working window, the working seconds of the days before it in the list),
        in epoch seconds: the tables :meth:`seconds_between` looks moments up in, for a store to
        do the same arithmetic in SQL."""
        out: list[tuple[float, float, float, float]] = []
        total, day = 0.0, first
        while day <= last:
            opens, closes = self._day_window(day)
            out.append(
                (datetime.combine(day, time(0), self.zone).timestamp(), opens, closes, total)
            )
            total += self._span((opens, closes))
            day += timedelta(days=1)
        return out

    def working_seconds_per_day(self) -> float:
        """Seconds of one full working day (the unit of a ``bd`` target)."""
        reference = datetime(2001, 1, 1)  # a Monday; the length ignores the zone's offsets
        opens = datetime.combine(reference.date(), self.start)
        closes = datetime.combine(reference.date(), self.end)
        return max(0.0, (closes - opens).total_seconds())
