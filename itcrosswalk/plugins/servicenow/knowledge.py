"""ServiceNow's knowledge base, problem state model and hardware assets: the streams and their
mapping.

- ``kb_knowledge`` (every version; ``latest`` marks the one an article is judged by, and
  reusable ``kb_knowledge_block`` rows are left out), ``kb_use``, ``kb_feedback`` and
  ``m2m_kb_task``. What ``sys_view_count`` counts is the instance's
  ``glide.knowman.view_age.days``: a rolling window, a lifetime count, or unknown.
- ``problem``: the ticket stream, plus the state model the instance's ``sys_choice`` names for
  ``problem.state`` (Madrid's 101-107 or the legacy 1-4), and on legacy instances a state 2
  ("Known Error") read as a known error.
- ``alm_hardware``: state and substate from the instance's ``sys_choice`` codes for
  ``alm_asset`` (never the out-of-box numbers assumed), and ``sys_choice`` itself.

Choice lists that cannot be read (an ACL) leave the state to the display label the record
carries, and the record says so in ``extra``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...core.errors import AccessDenied, NotFound
from ...core.model import (
    Asset,
    Choice,
    KnowledgeArticle,
    KnowledgeFeedback,
    KnowledgeLink,
    KnowledgeUse,
    Record,
)
from . import mapping
from .adapter import KeysetPaginator, TableStream
from .mapping import (
    _choice,
    _extra,
    _provenance,
    display,
    parse_bool,
    parse_date,
    parse_int,
    parse_number,
    value,
)
from .root_cause import state_model_of

if TYPE_CHECKING:
    from ...core.adapter import Stream, Window
    from .adapter import ServiceNowAdapter

log = logging.getLogger("itcrosswalk.servicenow")

ARTICLE_STATES: dict[str, str] = {
    "draft": "draft",
    "review": "review",
    "scheduled_publish": "scheduled",
    "published": "published",
    "pending_retirement": "pending_retirement",
    "retired": "retired",
    "outdated": "outdated",
}
ARTICLE_STATE_LABELS: dict[str, str] = {
    "draft": "draft",
    "review": "review",
    "scheduled for publish": "scheduled",
    "published": "published",
    "pending retirement": "pending_retirement",
    "retired": "retired",
    "outdated": "outdated",
}
# alm_asset.install_status label (lower case) -> AssetState: the codes come from sys_choice.
ASSET_STATE_LABELS: dict[str, str] = {
    "in use": "in_use",
    "on order": "on_order",
    "in maintenance": "in_maintenance",
    "in stock": "in_stock",
    "retired": "retired",
    "missing": "missing",
    "in transit": "in_transit",
    "consumed": "consumed",
}
LEGACY_PROBLEM_STATES: dict[str, str] = {
    "1": "new",  # Open
    "2": "in_progress",  # Known Error
    "3": "in_progress",  # Pending Change
    "4": "closed",  # Closed/Resolved
}
CHOICE_LISTS = (
    "nameINproblem,alm_asset,kb_knowledge^elementINstate,install_status,substatus,workflow_state"
)
VIEW_AGE_PROPERTY = "glide.knowman.view_age.days"


def describe() -> dict[str, Any]:
    """The knowledge, problem and asset crosswalk tables (``crosswalk plugins show``)."""
    return {
        "article_states": ARTICLE_STATES,
        "article_state_labels": ARTICLE_STATE_LABELS,
        "asset_state_labels": ASSET_STATE_LABELS,
        "legacy_problem_states": LEGACY_PROBLEM_STATES,
    }


# -- mapping -------------------------------------------------------------------------------------

_ARTICLE_USED = {
    "number",
    "version",
    "latest",
    "short_description",
    "kb_knowledge_base",
    "kb_category",
    "workflow_state",
    "author",
    "ownership_group",
    "published",
    "valid_to",
    "active",
    "sys_view_count",
    "use_count",
    "rating",
    "flagged",
    "text",
}


def map_article(
    raw: Mapping[str, Any], *, source: str, base: str, view_kind: str = "unknown"
) -> KnowledgeArticle:
    extra = _extra(raw, _ARTICLE_USED)
    published = parse_date(value(raw, "published"))
    return KnowledgeArticle(
        **_provenance(raw, source=source, table="kb_knowledge", base=base),
        number=value(raw, "number") or None,
        version=display(raw, "version"),
        # An instance without versioning has no ``latest``: each row is its own article.
        latest=parse_bool(value(raw, "latest")) if "latest" in raw else True,
        title=value(raw, "short_description") or None,
        knowledge_base=display(raw, "kb_knowledge_base"),
        category=display(raw, "kb_category"),
        state=_choice(raw, "workflow_state", ARTICLE_STATES, ARTICLE_STATE_LABELS, extra),
        author=display(raw, "author"),
        owner_group=display(raw, "ownership_group"),
        published_on=published,
        valid_to=parse_date(value(raw, "valid_to")),
        reviewed_on=published,
        active=parse_bool(value(raw, "active")),
        view_count=parse_int(value(raw, "sys_view_count")),
        view_count_kind=view_kind,
        use_count=parse_int(value(raw, "use_count")),
        rating=parse_number(value(raw, "rating")),
        flagged=parse_bool(value(raw, "flagged")),
        extra=extra,
    )


def _yes(text: str) -> bool | None:
    if text == "":
        return None
    return text.lower() in ("true", "yes", "1")


def map_use(raw: Mapping[str, Any], *, source: str, base: str) -> KnowledgeUse:
    extra = _extra(raw, {"article", "user", "viewed", "used", "times_viewed"})
    article = value(raw, "article")
    if not article:
        raise ValueError("kb_use row names no article")
    return KnowledgeUse(
        **_provenance(raw, source=source, table="kb_use", base=base),
        article_id=article,
        user=display(raw, "user"),
        viewed=_yes(value(raw, "viewed")),
        used=_yes(value(raw, "used")),
        times_viewed=parse_int(value(raw, "times_viewed")),
        extra=extra,
    )


def map_feedback(raw: Mapping[str, Any], *, source: str, base: str) -> KnowledgeFeedback:
    used = {"article", "user", "rating", "useful", "flagged", "comments", "reason", "resolved"}
    extra = _extra(raw, used)
    article = value(raw, "article")
    if not article:
        raise ValueError("kb_feedback row names no article")
    return KnowledgeFeedback(
        **_provenance(raw, source=source, table="kb_feedback", base=base),
        article_id=article,
        user=display(raw, "user"),
        rating=parse_int(value(raw, "rating")),
        useful=_yes(value(raw, "useful")),
        flagged=_yes(value(raw, "flagged")),
        comment=value(raw, "comments") or None,
        reason=display(raw, "reason"),
        resolved=_yes(value(raw, "resolved")),
        extra=extra,
    )


def map_link(raw: Mapping[str, Any], *, source: str, base: str) -> KnowledgeLink:
    extra = _extra(raw, {"task", "kb_knowledge"})
    article, task = value(raw, "kb_knowledge"), value(raw, "task")
    if not article or not task:
        raise ValueError("m2m_kb_task row lacks its task or its article")
    return KnowledgeLink(
        **_provenance(raw, source=source, table="m2m_kb_task", base=base),
        article_id=article,
        task_id=task,
        task_number=display(raw, "task"),
        extra=extra,
    )


def map_choice(raw: Mapping[str, Any], *, source: str, base: str) -> Choice:
    used = {"name", "element", "value", "label", "sequence", "inactive", "dependent_value"}
    extra = _extra(raw, used)
    return Choice(
        **_provenance(raw, source=source, table="sys_choice", base=base),
        table_name=value(raw, "name"),
        element=value(raw, "element"),
        value=value(raw, "value"),
        label=value(raw, "label") or None,
        sequence=parse_int(value(raw, "sequence")),
        inactive=parse_bool(value(raw, "inactive")),
        dependent_value=value(raw, "dependent_value") or None,
        extra=extra,
    )


_ASSET_USED = {
    "asset_tag",
    "display_name",
    "serial_number",
    "model",
    "model_category",
    "install_status",
    "substatus",
    "purchase_date",
    "warranty_expiration",
    "retirement_date",
    "retired",
    "cost",
    "cost_cc",
    "depreciation",
    "salvage_value",
    "depreciated_amount",
    "residual",
    "assigned_to",
    "department",
    "location",
    "ci",
}


def map_asset(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    states: Mapping[str, str] | None = None,
    substates: Mapping[str, str] | None = None,
) -> Asset:
    """An ``alm_hardware`` row. ``states``/``substates`` are the instance's ``sys_choice``
    (code -> label); without them the record's display label decides, and ``extra`` says so."""
    extra = _extra(raw, _ASSET_USED)
    code = value(raw, "install_status")
    if states:
        label = states.get(code)
        by_code = {code: ASSET_STATE_LABELS.get((label or "").lower(), "unknown")} if label else {}
        state = _choice(raw, "install_status", by_code, {}, extra)
        if label is None and code:
            extra["native_install_status"] = {"value": code, "display_value": None}
    else:
        state = _choice(raw, "install_status", {}, ASSET_STATE_LABELS, extra)
        if code:
            extra["state_from"] = "display label (sys_choice not readable)"
    sub = value(raw, "substatus")
    cost_text = value(raw, "cost")
    currency = value(raw, "cost_cc") or (cost_text.split(";", 1)[0] if ";" in cost_text else None)
    return Asset(
        **_provenance(raw, source=source, table="alm_hardware", base=base),
        asset_tag=value(raw, "asset_tag") or None,
        name=value(raw, "display_name") or None,
        serial=value(raw, "serial_number") or None,
        model=display(raw, "model"),
        model_category=display(raw, "model_category"),
        state=state,
        substate=(substates or {}).get(sub) or display(raw, "substatus"),
        state_code=code or None,
        purchase_date=parse_date(value(raw, "purchase_date")),
        warranty_expiration=parse_date(value(raw, "warranty_expiration")),
        planned_retirement=parse_date(value(raw, "retirement_date")),
        retired_on=parse_date(value(raw, "retired")),
        cost=parse_number(cost_text),
        currency=currency,
        depreciation=display(raw, "depreciation"),
        salvage_value=parse_number(value(raw, "salvage_value")),
        depreciated_amount=parse_number(value(raw, "depreciated_amount")),
        residual_value=parse_number(value(raw, "residual")),
        assigned_to=display(raw, "assigned_to"),
        department=display(raw, "department"),
        location=display(raw, "location"),
        ci_id=value(raw, "ci") or None,
        extra=extra,
    )


# -- streams -------------------------------------------------------------------------------------


class _Table(TableStream):
    """A Table API table outside the ticket/work/device catalogue, read in the same keyset
    order; ``condition`` is an encoded query every read of it adds."""

    condition = ""

    def __init__(self, adapter: ServiceNowAdapter, table: str, entity: str) -> None:
        self.adapter = adapter
        self.table = table
        self.name = table  # type: ignore[misc]
        self.entity = entity  # type: ignore[misc]
        self.id_sweep = False  # type: ignore[misc]
        self.paginator = KeysetPaginator()

    def query(self, window: Window, token: Mapping[str, Any]) -> str:
        query = super().query(window, token)
        return f"{self.condition}^{query}" if self.condition else query

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        return []

    def _mapped(self, raw: Mapping[str, Any], **kwargs: Any) -> Record:
        raise NotImplementedError

    def map(self, raw: Mapping[str, Any]) -> Record:
        return self._mapped(raw, source=self.adapter.source.name, base=self.adapter.base)


def _choices(adapter: ServiceNowAdapter, name: str, element: str) -> dict[str, str] | None:
    """code -> label of one choice list; None when the account may not read ``sys_choice``."""
    try:
        rows, _headers = adapter.list(
            "sys_choice",
            query=f"name={name}^element={element}^inactive=false^ORDERBYsequence",
            limit=500,
            fields=["value", "label"],
        )
    except (AccessDenied, NotFound) as exc:
        log.warning(
            "source %s: cannot read the choices of %s.%s: %s",
            adapter.source.name,
            name,
            element,
            exc,
        )
        return None
    return {value(r, "value"): value(r, "label") for r in rows}


class Articles(_Table):
    condition = "sys_class_name!=kb_knowledge_block"  # reusable blocks are not articles

    def __init__(self, adapter: ServiceNowAdapter) -> None:
        super().__init__(adapter, "kb_knowledge", "knowledge_article")
        self._view_kind: str | None = None

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        if self._view_kind is None:
            self._view_kind = self._read_view_kind()

    def _read_view_kind(self) -> str:
        try:
            rows, _h = self.adapter.list(
                "sys_properties", query=f"name={VIEW_AGE_PROPERTY}", limit=1, fields=["value"]
            )
        except (AccessDenied, NotFound):
            return "unknown"
        if not rows:
            return "unknown"
        days = value(rows[0], "value").strip()
        if not days.isdigit():
            return "unknown"
        return "lifetime" if int(days) == 0 else f"rolling_{int(days)}d"

    def map(self, raw: Mapping[str, Any]) -> Record:
        return map_article(
            raw,
            source=self.adapter.source.name,
            base=self.adapter.base,
            view_kind=self._view_kind or "unknown",
        )


class Uses(_Table):
    def __init__(self, adapter: ServiceNowAdapter) -> None:
        super().__init__(adapter, "kb_use", "knowledge_use")

    def _mapped(self, raw: Mapping[str, Any], **kwargs: Any) -> Record:
        return map_use(raw, **kwargs)


class Feedback(_Table):
    def __init__(self, adapter: ServiceNowAdapter) -> None:
        super().__init__(adapter, "kb_feedback", "knowledge_feedback")

    def _mapped(self, raw: Mapping[str, Any], **kwargs: Any) -> Record:
        return map_feedback(raw, **kwargs)


class TaskArticles(_Table):
    def __init__(self, adapter: ServiceNowAdapter) -> None:
        super().__init__(adapter, "m2m_kb_task", "knowledge_link")

    def _mapped(self, raw: Mapping[str, Any], **kwargs: Any) -> Record:
        return map_link(raw, **kwargs)


class Choices(_Table):
    condition = CHOICE_LISTS

    def __init__(self, adapter: ServiceNowAdapter) -> None:
        super().__init__(adapter, "sys_choice", "choice")

    def _mapped(self, raw: Mapping[str, Any], **kwargs: Any) -> Record:
        return map_choice(raw, **kwargs)


class Assets(_Table):
    def __init__(self, adapter: ServiceNowAdapter) -> None:
        super().__init__(adapter, "alm_hardware", "asset")
        self._loaded = False
        self._states: dict[str, str] | None = None
        self._substates: dict[str, str] | None = None

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        if not self._loaded:
            self._states = _choices(self.adapter, "alm_asset", "install_status")
            self._substates = _choices(self.adapter, "alm_asset", "substatus")
            self._loaded = True

    def map(self, raw: Mapping[str, Any]) -> Record:
        return map_asset(
            raw,
            source=self.adapter.source.name,
            base=self.adapter.base,
            states=self._states,
            substates=self._substates,
        )


class Problems(TableStream):
    """The problem ticket stream, with the instance's state model from ``sys_choice``."""

    def __init__(self, adapter: ServiceNowAdapter) -> None:
        super().__init__(adapter, "problem")
        self._model: str | None = None
        self._loaded = False

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        super().prepare(raws)
        if not self._loaded:
            codes = _choices(self.adapter, "problem", "state")
            self._model = detect_state_model(codes)
            self._loaded = True

    def map(self, raw: Mapping[str, Any]) -> Record:
        record = super().map(raw)
        stored = value(raw, "state")
        model = self._model
        if model is None:
            model = state_model_of(stored)
            record.extra["state_model_from"] = "state value (sys_choice not readable)"
        record.problem_state_model = model  # type: ignore[attr-defined]
        if model == "legacy":
            if record.state == "unknown" and stored in LEGACY_PROBLEM_STATES:  # type: ignore[attr-defined]
                record.state = LEGACY_PROBLEM_STATES[stored]  # type: ignore[attr-defined]
                record.extra.pop("native_state", None)
            if record.known_error is None and stored:  # type: ignore[attr-defined]
                record.known_error = stored == "2"  # type: ignore[attr-defined]
        return record


def detect_state_model(codes: Mapping[str, str] | None) -> str | None:
    """``madrid`` when the instance's ``problem.state`` choices are 101-107, ``legacy`` when
    they are 1-4; None when they cannot be read (or are neither)."""
    if not codes:
        return None
    values = set(codes)
    if values & {"101", "102", "103", "104", "106", "107"}:
        return "madrid"
    if values & {"1", "2", "3", "4"}:
        return "legacy"
    return None


def streams(adapter: ServiceNowAdapter, catalogue: list[Stream]) -> list[Stream]:
    """The adapter's streams with the problem stream's state model, and the knowledge, choice
    and asset streams after them."""
    out: list[Stream] = [
        Problems(adapter) if getattr(s, "table", None) == "problem" else s for s in catalogue
    ]
    return out + [
        Articles(adapter),
        Uses(adapter),
        Feedback(adapter),
        TaskArticles(adapter),
        Choices(adapter),
        Assets(adapter),
    ]


__all__ = ["streams", "describe", "mapping"]
