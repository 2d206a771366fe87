"""Fields the platform left empty but the store knows: filled in, and marked as derived.

A ServiceNow incident often carries no department of its own, an Intune device none at all;
their requester's and primary user's departments are in ``people``. Without them every
department breakdown is led by "(none)". What is filled in here says so in ``extra``
(``department_derived``: ``requester`` or ``primary_user``), so a reader (and ``--explain``)
can tell the platform's value from ours; the platform's own value, when it has one, always
wins, because a record the platform sends again is stored as sent and derived anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from .store import ENTITY_TABLES, Store

DERIVED_KEY = "department_derived"

# entity -> (the field naming the person, how the derivation is named in extra)
PERSON_FIELDS = {"ticket": ("requester", "requester"), "device": ("owner", "primary_user")}


def _norm(value: Any) -> str:
    return " ".join(str(value).split()).casefold()


def _index(rows: Iterable[Any], *, ids: bool = False) -> dict[str, set[str]]:
    """Each way a person is named (UPN, e-mail, full name; ``ids``: the platform's id) -> the
    departments under it."""
    index: dict[str, set[str]] = {}
    for row in rows:
        for key in (row.upn, row.email, row.name, row.source_id if ids else None):
            if key:
                index.setdefault(_norm(key), set()).add(row.department)
    return index


def derive_departments(store: Store, source: str) -> dict[str, int]:
    """Fill the empty departments of ``source``'s tickets and devices from their people.

    A person is looked for in the same source first, then in any source (an Intune owner's UPN
    is a ServiceNow user's e-mail); a name that belongs to people of several departments is
    left alone. Returns how many records were filled per entity.
    """
    people = ENTITY_TABLES["person"]
    query = sa.select(
        people.c.source,
        people.c.source_id,
        people.c.upn,
        people.c.email,
        people.c.name,
        people.c.department,
    ).where(people.c.deleted.is_(False), people.c.department.is_not(None))
    with store.engine.connect() as conn:
        everyone = list(conn.execute(query))
    local = _index((r for r in everyone if r.source == source), ids=True)
    anywhere = _index(everyone)
    filled: dict[str, int] = {}
    for entity, (field, how) in PERSON_FIELDS.items():
        table = ENTITY_TABLES[entity]
        person = table.c[field]
        with store.engine.begin() as conn:
            rows = conn.execute(
                sa.select(table.c.source_id, person, table.c.extra).where(
                    table.c.source == source,
                    table.c.deleted.is_(False),
                    table.c.department.is_(None),
                    person.is_not(None),
                )
            ).all()
            updates = []
            for row in rows:
                key = _norm(row[1])
                departments = local.get(key) or anywhere.get(key) or set()
                if len(departments) != 1:
                    continue  # nobody known by that name, or several people in several departments
                (department,) = departments
                extra = dict(row.extra or {})
                extra[DERIVED_KEY] = how
                updates.append({"key": row.source_id, "department": department, "extra": extra})
            if updates:
                conn.execute(
                    table.update()
                    .where(table.c.source == source, table.c.source_id == sa.bindparam("key"))
                    .values(department=sa.bindparam("department"), extra=sa.bindparam("extra")),
                    updates,
                )
        filled[entity] = len(updates)
    return filled
