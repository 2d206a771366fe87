"""Capacity benchmark: the capacity plan over many people booked on three platforms.

Run by hand, never by the test suite:

    .venv/bin/python bench/capacity_bench.py --people 2000 --months 12

Builds the inputs in memory (people, monthly-timephased assignments on two platforms, daily
timephased ones on a third, daily platform capacity for a tenth of the people) and times
``compute`` in CPU seconds (the machine is shared: CPU time, not wall time), by person and by
role, month and week.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date, timedelta

from itcrosswalk.core.capacity.engine import Inputs, compute
from itcrosswalk.core.config import CalendarConfig


def inputs(people: int, months: int, seed: int = 7) -> Inputs:
    rng = random.Random(seed)
    start = date(2026, 1, 1)
    data = Inputs()
    for i in range(people):
        upn = f"p{i}@city.example.gov"
        data.people.append({"source": "snow", "source_id": f"u{i}", "upn": upn, "name": f"P {i}",
                            "department": f"d{i % 10}", "active": True})  # fmt: skip
        for platform, source in (
            ("servicenow", "snow"),
            ("clarity", "clar"),
            ("project_online", "pwa"),
        ):
            if rng.random() < 0.5:
                continue
            sid = f"{source}-{i}"
            data.assignments.append({"source": source, "platform": platform, "source_id": sid,
                                     "person_upn": upn, "role": f"r{i % 7}", "planned_hours": None,
                                     "generic": False, "start": None, "finish": None})  # fmt: skip
            month = start
            for _ in range(months):
                following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
                if platform == "project_online":
                    day = month
                    while day < following:
                        if day.weekday() < 5:
                            data.periods.append({"source": source, "assignment_id": sid,
                                                 "period_start": day, "period_finish": day + timedelta(days=1),
                                                 "planned_hours": 3.0})  # fmt: skip
                        day += timedelta(days=1)
                else:
                    data.periods.append({"source": source, "assignment_id": sid, "period_start": month,
                                         "period_finish": following, "planned_hours": 60.0})  # fmt: skip
                month = following
        if i % 10 == 0:
            day = start
            while day < start + timedelta(days=31 * months):
                data.capacities.append({"source": "pwa", "source_id": f"c{i}{day}", "person_upn": upn,
                                        "period_start": day, "period_finish": day + timedelta(days=1),
                                        "hours": 6.0 if day.weekday() < 5 else 0.0})  # fmt: skip
                day += timedelta(days=1)
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    data = inputs(args.people, args.months)
    end = date(2026 + (args.months - 1) // 12, (args.months - 1) % 12 + 1, 1)
    end = date(end.year + end.month // 12, end.month % 12 + 1, 1)
    print(f"{args.people} people, {len(data.assignments)} assignments, {len(data.periods)} periods, "
          f"{len(data.capacities)} capacity rows, {args.months} months")  # fmt: skip
    for by, grain in (("person", "month"), ("role", "month"), ("person", "week")):
        began = time.process_time()
        result = compute(
            data, CalendarConfig(), start=date(2026, 1, 1), end=end, by=by, granularity=grain
        )
        spent = time.process_time() - began
        print(f"by {by} per {grain}: {spent:.2f} s CPU, {len(result.rows)} rows, "
              f"{len(result.findings)} cross-platform findings")  # fmt: skip


if __name__ == "__main__":
    main()
