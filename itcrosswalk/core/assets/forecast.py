"""The hardware refresh forecast: which devices come due in which fiscal year, and what they cost.

A device is due when it reaches its model category's refresh age (``[assets] refresh_years``,
from its purchase date); one without a purchase date is due when its warranty ends; one with
neither is listed as undated. A device already past due is due this fiscal year. Each due
device is costed at its category's price (``[assets] prices``), raised by ``inflation`` for
every fiscal year after the current one. Beside the money: how many of the due devices the
device manager (Intune) reports idle (no check-in for ``idle_days``) or does not know at all,
since a device nobody uses may not need replacing, and one nobody can find needs finding
first. Devices in scope are the assets in use or in maintenance.

Fiscal years follow ``[metrics] fiscal_year_start`` and are named by the year they end in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..config import Config
from ..errors import ConfigError
from ..metrics.knowledge import fiscal_year
from ..store import ENTITY_TABLES, Store

IN_SERVICE = ("in_use", "in_maintenance")
GROUPINGS = {"department": "department", "model": "model", "site": "location"}


@dataclass
class DueDevice:
    """One device in the forecast: when it comes due, why, and what replacing it costs."""

    source: str
    source_id: str
    asset_tag: str | None
    serial: str | None
    model: str | None
    model_category: str | None
    group: str
    purchase_date: date | None
    warranty_expiration: date | None
    due: date | None
    due_because: str
    fiscal_year: int | None
    overdue: bool
    cost: float | None
    intune: str
    last_check_in: datetime | None


@dataclass
class Forecast:
    """The forecast: per fiscal year the devices and cost, by group, and every device."""

    as_of: date
    moment: datetime
    by: str
    years: list[int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, dict[int, float]] = field(default_factory=dict)
    devices: list[DueDevice] = field(default_factory=list)
    undated: int = 0
    unpriced: list[str] = field(default_factory=list)
    total_devices: int = 0
    total_cost: float = 0.0
    intune_synced: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "moment": self.moment.isoformat(),
            "by": self.by,
            "fiscal_years": [f"FY{y}" for y in self.years],
            "rows": self.rows,
            "groups": {
                name: {f"FY{y}": round(v, 2) for y, v in per.items()}
                for name, per in sorted(self.groups.items())
            },
            "total_devices": self.total_devices,
            "total_cost": round(self.total_cost, 2),
            "undated": self.undated,
            "unpriced_categories": self.unpriced,
            "intune_synced": self.intune_synced,
            "devices": [
                {
                    **{k: v for k, v in vars(d).items() if k != "last_check_in"},
                    "purchase_date": d.purchase_date.isoformat() if d.purchase_date else None,
                    "warranty_expiration": d.warranty_expiration.isoformat()
                    if d.warranty_expiration
                    else None,
                    "due": d.due.isoformat() if d.due else None,
                    "last_check_in": d.last_check_in.isoformat() if d.last_check_in else None,
                }
                for d in self.devices
            ],
        }


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def forecast(
    store: Store,
    config: Config,
    *,
    years: int = 5,
    by: str = "department",
    now: datetime | None = None,
    source: str | None = None,
) -> Forecast:
    """The refresh forecast for the next ``years`` fiscal years, the current one first."""
    if by not in GROUPINGS:
        raise ConfigError(f"--by {by!r}: choose from {', '.join(GROUPINGS)}")
    if not 1 <= years <= 15:
        raise ConfigError(f"--years {years}: give 1 to 15 fiscal years")
    policy = config.assets
    start_month = config.metrics.fiscal_year_start
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    today = moment.date()
    current = fiscal_year(today, start_month)
    span = list(range(current, current + years))
    result = Forecast(as_of=today, moment=moment, by=by, years=span)
    a = ENTITY_TABLES["asset"]
    d = ENTITY_TABLES["device"]
    where = [a.c.deleted.is_(False), a.c.state.in_(IN_SERVICE)]
    if source:
        where.append(a.c.source == source)
    managed = [d.c.platform == "intune", d.c.deleted.is_(False)]
    with store.engine.connect() as conn:
        total_assets = conn.execute(
            sa.select(sa.func.count()).where(a.c.deleted.is_(False))
        ).scalar()
        if not total_assets:
            raise ConfigError(
                "no synced source holds hardware asset records (ServiceNow alm_hardware): "
                "sync one before forecasting, there is nothing to forecast from"
            )
        result.intune_synced = bool(
            conn.execute(sa.select(sa.func.count()).where(*managed)).scalar()
        )
        seen = {
            key: last
            for key, last in conn.execute(
                sa.select(d.c.serial_key, sa.func.max(d.c.last_seen_at))
                .where(*managed, d.c.serial_key.is_not(None))
                .group_by(d.c.serial_key)
            )
        }
        rows = conn.execute(
            sa.select(
                a.c.source,
                a.c.source_id,
                a.c.asset_tag,
                a.c.serial,
                a.c.serial_key,
                a.c.model,
                a.c.model_category,
                a.c[GROUPINGS[by]].label("grp"),
                a.c.purchase_date,
                a.c.warranty_expiration,
            )
            .where(*where)
            .order_by(a.c.source, a.c.source_id)
        ).all()
    idle_before = moment - timedelta(days=policy.idle_days)
    per_year = {y: {"devices": 0, "cost": 0.0, "overdue": 0, "idle": 0, "missing": 0} for y in span}
    warranties = dict.fromkeys(span, 0)
    unpriced: set[str] = set()
    for row in rows:
        category = row.model_category
        refresh = policy.refresh_years.get(category or "", policy.default_refresh_years)
        if row.purchase_date is not None:
            due: date | None = _add_years(row.purchase_date, refresh)
            because = f"refresh age ({refresh} years)"
        elif row.warranty_expiration is not None:
            due, because = row.warranty_expiration, "warranty end (no purchase date)"
        else:
            due, because = None, "no purchase or warranty date"
        if row.warranty_expiration is not None:
            wy = fiscal_year(row.warranty_expiration, start_month)
            if wy in warranties:
                warranties[wy] += 1
        overdue = due is not None and due < today
        year = None if due is None else max(current, fiscal_year(due, start_month))
        if not result.intune_synced:
            intune, last = "not synced", None
        elif row.serial_key is None:
            intune, last = "no serial", None
        elif row.serial_key not in seen:
            intune, last = "missing", None
        else:
            last = seen[row.serial_key]
            intune = "idle" if last is None or last < idle_before else "seen"
        price = policy.prices.get(category or "")
        cost = None
        if year is not None and year in per_year:
            if price is None:
                unpriced.add(category or "(no category)")
            else:
                cost = round(price * (1 + policy.inflation) ** (year - current), 2)
        device = DueDevice(
            source=row.source,
            source_id=row.source_id,
            asset_tag=row.asset_tag,
            serial=row.serial,
            model=row.model,
            model_category=category,
            group=row.grp or "(none)",
            purchase_date=row.purchase_date,
            warranty_expiration=row.warranty_expiration,
            due=due,
            due_because=because,
            fiscal_year=year,
            overdue=overdue,
            cost=cost,
            intune=intune,
            last_check_in=last,
        )
        if due is None:
            result.undated += 1
            result.devices.append(device)
            continue
        if year not in per_year:
            continue  # due after the forecast's last year
        result.devices.append(device)
        bucket = per_year[year]
        bucket["devices"] += 1
        bucket["overdue"] += int(overdue)
        bucket["idle"] += int(intune == "idle")
        bucket["missing"] += int(intune == "missing")
        if cost is not None:
            bucket["cost"] += cost
            per_group = result.groups.setdefault(device.group, dict.fromkeys(span, 0.0))
            per_group[year] += cost
    for year in span:
        bucket = per_year[year]
        result.rows.append(
            {
                "fiscal_year": f"FY{year}",
                "devices": bucket["devices"],
                "cost": round(bucket["cost"], 2),
                "overdue": bucket["overdue"],
                "idle_in_intune": bucket["idle"],
                "missing_in_intune": bucket["missing"],
                "warranties_ending": warranties[year],
            }
        )
    result.total_devices = sum(r["devices"] for r in result.rows)
    result.total_cost = round(sum(r["cost"] for r in result.rows), 2)
    result.unpriced = sorted(unpriced)
    return result


# -- output ------------------------------------------------------------------------------------


def stacked_columns(
    labels: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str, salt: str
) -> str:
    """Vertical stacked columns, one per label (fiscal years), a segment per series."""
    import matplotlib

    from ..reports.charts import _RC, _figure, _short, _svg

    with matplotlib.rc_context(_RC):
        fig = _figure(7.6, 3.4)
        ax = fig.add_subplot()
        positions = list(range(len(labels)))
        bottom = [0.0] * len(labels)
        cmap = matplotlib.colormaps["tab20"]
        for index, (name, values) in enumerate(series.items()):
            ax.bar(positions, values, bottom=bottom, color=cmap(index % 20), label=_short(name, 28))
            bottom = [a + b for a, b in zip(bottom, values, strict=True)]
        ax.set_xticks(positions, list(labels))
        ax.set_ylabel("replacement cost")
        ax.set_title(title, loc="left", fontsize=10)
        if series:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
        return _svg(fig, salt)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hardware refresh forecast</title>
{% include "_style.html.j2" %}
</head><body>
<h1>Hardware refresh forecast</h1>
<p class="meta">As of {{ f.as_of }}; fiscal years {{ f.fiscal_years[0] }} to {{ f.fiscal_years[-1] }}, by {{ f.by }}.
Devices in use or in maintenance, due at their category's refresh age (or their warranty end where no purchase date is known).</p>
<div class="cards">
  <div class="card"><span class="n" id="total-devices" data-value="{{ f.total_devices }}">{{ f.total_devices }}</span><span class="l">devices due</span></div>
  <div class="card"><span class="n" id="total-cost" data-value="{{ '%.2f' % f.total_cost }}">{{ '{:,.2f}'.format(f.total_cost) }}</span><span class="l">replacement cost</span></div>
  <div class="card"><span class="n" id="undated" data-value="{{ f.undated }}">{{ f.undated }}</span><span class="l">without purchase or warranty date</span></div>
</div>
{% if not f.intune_synced %}<p class="unverified">No device manager (Intune) is synced: idle and missing devices cannot be told.</p>{% endif %}
{% if f.unpriced_categories %}<p class="unverified">No price for: {{ f.unpriced_categories | join(", ") }} (not in the cost).</p>{% endif %}
<div class="chart">{{ chart | safe }}</div>
<h2>Per fiscal year</h2>
<table><tr><th>fiscal year</th><th class="num">devices</th><th class="num">cost</th><th class="num">overdue</th><th class="num">idle in Intune</th><th class="num">missing in Intune</th><th class="num">warranties ending</th></tr>
{% for r in f.rows %}<tr class="year" data-year="{{ r.fiscal_year }}"><td>{{ r.fiscal_year }}</td><td class="num" data-field="devices">{{ r.devices }}</td><td class="num" data-field="cost">{{ '%.2f' % r.cost }}</td><td class="num">{{ r.overdue }}</td><td class="num">{{ r.idle_in_intune }}</td><td class="num">{{ r.missing_in_intune }}</td><td class="num">{{ r.warranties_ending }}</td></tr>
{% endfor %}</table>
<h2>By {{ f.by }}</h2>
<table><tr><th>{{ f.by }}</th>{% for y in f.fiscal_years %}<th class="num">{{ y }}</th>{% endfor %}</tr>
{% for name, per in f.groups.items() %}<tr><td>{{ name }}</td>{% for y in f.fiscal_years %}<td class="num">{{ '%.2f' % per.get(y, 0) }}</td>{% endfor %}</tr>
{% endfor %}</table>
</body></html>
"""


def render_html(result: Forecast) -> str:
    """A self-contained page: the cards, the stacked chart per fiscal year, the tables."""
    from ..reports.render import _environment

    data = result.as_json()
    labels = data["fiscal_years"]
    series = {name: [per.get(y, 0.0) for y in labels] for name, per in data["groups"].items()}
    chart = stacked_columns(
        labels, series, title=f"Replacement cost per fiscal year, by {result.by}", salt="forecast"
    )
    env = _environment()
    return env.from_string(_PAGE).render(f=data, chart=chart)


def render_xlsx(result: Forecast) -> bytes:
    """A workbook for budget planning: the years, the groups, and every device."""
    import io

    from openpyxl import Workbook

    from ..reports.render import _sheet

    data = result.as_json()
    book = Workbook()
    book.remove(book.active)
    columns = [
        "fiscal_year",
        "devices",
        "cost",
        "overdue",
        "idle_in_intune",
        "missing_in_intune",
        "warranties_ending",
    ]
    _sheet(book, "Fiscal years", columns, data["rows"])
    groups = [{result.by: name, **per} for name, per in data["groups"].items()]
    _sheet(book, f"By {result.by}", [result.by, *data["fiscal_years"]], groups)
    device_columns = [
        "asset_tag", "serial", "model", "model_category", "group", "purchase_date",
        "warranty_expiration", "due", "due_because", "fiscal_year", "overdue", "cost", "intune",
        "last_check_in", "source", "source_id",
    ]  # fmt: skip
    _sheet(book, "Devices", device_columns, data["devices"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write(result: Forecast, directory: Path) -> list[Path]:
    """``forecast.html``, ``forecast.xlsx`` and ``forecast.json`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / "forecast.html"
    html_path.write_text(render_html(result), encoding="utf-8")
    xlsx_path = directory / "forecast.xlsx"
    xlsx_path.write_bytes(render_xlsx(result))
    json_path = directory / "forecast.json"
    json_path.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
    return [html_path, xlsx_path, json_path]
