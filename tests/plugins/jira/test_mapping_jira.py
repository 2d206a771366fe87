"""The mapping on the recorded payloads: offsets, SLA cycles, localized names, changelogs."""

from __future__ import annotations

from datetime import UTC, datetime

from itcrosswalk.plugins.jira import mapping

SITE = mapping.SiteFields(
    sla={"customfield_12151": "해결 시간 SLA", "customfield_12152": "최초 응답 SLA"}
)
RULES = mapping.TicketRules(
    kinds=mapping.DEFAULT_TICKET_KINDS, priorities=mapping.DEFAULT_PRIORITIES,
    states=mapping.DEFAULT_STATUS_STATES, first_response_sla=("최초 응답 SLA",),
)  # fmt: skip
T = {"iso8601": "2026-07-06T18:02:13+0900", "jira": "2026-07-06T18:02:13.432+0900", "friendly": "어제 18:02", "epochMillis": 1783328533432}  # fmt: skip
STOP = {"iso8601": "2026-07-07T10:01:40+0900", "jira": "2026-07-07T10:01:40.376+0900", "friendly": "오늘 10:01", "epochMillis": 1783386100376}  # fmt: skip
BREACH = {"iso8601": "2026-07-07T14:00:00+0900", "jira": "2026-07-07T14:00:00.000+0900", "friendly": "오늘 14:00", "epochMillis": 1783400400000}  # fmt: skip
ISSUE = {
    "id": "49224",
    "key": "TACEA-4540",
    "fields": {
        "updated": "2026-07-07T10:01:40.376+0900",
        "created": "2022-06-09T16:29:31.871-0700",
        "summary": "VPN down",
        "issuetype": {"id": "10105", "name": "[System] Incident"},
        "status": {"id": "3", "name": "닫힘", "statusCategory": {"key": "done"}},
        "resolution": {"name": "Won't Do"},
        "priority": {"name": "High"},
        "customfield_12152": {
            "id": "59", "name": "최초 응답 SLA",
            "completedCycles": [{"startTime": T, "stopTime": STOP, "breachTime": BREACH, "breached": False,
                                 "goalDuration": {"millis": 14400000, "friendly": "4시간"},
                                 "elapsedTime": {"millis": 3700376, "friendly": "1시간 1분"},
                                 "remainingTime": {"millis": 10699624, "friendly": "2시간 58분"}}],
            "slaDisplayFormat": "NEW_SLA_FORMAT",
        },
        "customfield_12151": {
            "id": "58", "name": "해결 시간 SLA", "completedCycles": [],
            "ongoingCycle": {"startTime": T, "breachTime": {**BREACH, "epochMillis": 1785142800000},
                             "breached": False, "paused": False, "withinCalendarHours": False,
                             "goalDuration": {"millis": 432000000, "friendly": "120시간"},
                             "elapsedTime": {"millis": 10800000, "friendly": "3시간"},
                             "remainingTime": {"millis": 421200000, "friendly": "117시간"}},
            "slaDisplayFormat": "NEW_SLA_FORMAT",
        },
    },
}  # fmt: skip


def test_timestamps_with_the_accounts_offset_become_utc() -> None:
    assert mapping.parse_datetime("2022-12-08T02:22:18.889-0800") == datetime(
        2022, 12, 8, 10, 22, 18, 889000, tzinfo=UTC
    )


def test_a_recorded_ticket_maps_on_categories_and_localized_slas() -> None:
    ticket = mapping.map_ticket(
        ISSUE, source="s", base="https://x", rules=RULES, site=SITE, counts=(2, 1)
    )
    assert ticket.kind == "incident" and ticket.priority == 2
    assert ticket.state == "cancelled", "a done category with Won't Do"
    assert ticket.responded_at == datetime.fromtimestamp(1783386100376 / 1000, UTC)
    assert ticket.reassignment_count == 2 and ticket.reopen_count == 1


def test_each_sla_cycle_is_a_record_read_from_millis() -> None:
    rows = mapping.sla_rows(ISSUE, SITE)
    assert [r["id"] for r in rows] == ["49224:customfield_12151:0", "49224:customfield_12152:0"]
    running = mapping.map_sla(
        rows[0], source="s", base="https://x", now=datetime(2026, 7, 7, 3, tzinfo=UTC)
    )
    assert running.stage == "in_progress" and running.has_breached is False
    assert running.business_elapsed_seconds == 10800 and running.elapsed_seconds is None
    late = mapping.map_sla(
        rows[0], source="s", base="https://x", now=datetime(2026, 8, 1, tzinfo=UTC)
    )
    assert late.has_breached is True, "a running clock past its breach time has breached"
    done = mapping.map_sla(
        rows[1], source="s", base="https://x", now=datetime(2026, 8, 1, tzinfo=UTC)
    )
    assert done.stage == "completed" and done.has_breached is False
    assert done.planned_end_at == datetime.fromtimestamp(1783400400, UTC)
    assert mapping.sla_rows({"id": "1", "fields": {"customfield_12151": None}}, SITE) == []
    never = {"id": "57", "completedCycles": [], "slaDisplayFormat": "NEW_SLA_FORMAT"}
    assert mapping.sla_rows({"id": "1", "fields": {"customfield_12151": never}}, SITE) == []


def test_reopens_count_status_ids_leaving_done_and_cleared_resolutions() -> None:
    site = mapping.SiteFields(done_statuses={"3"}, assignment_group="customfield_1")
    histories = [
        {"created": "1", "items": [{"fieldId": "status", "from": "1", "to": "3"}]},
        {"created": "2", "items": [{"fieldId": "status", "from": "3", "to": "2"},
                                   {"fieldId": "resolution", "from": "1", "to": None}]},
        {"created": "3", "items": [{"fieldId": "resolution", "from": "1", "to": None}]},
        {"created": "4", "items": [{"fieldId": "customfield_1", "fromString": "A", "toString": "B"}]},
    ]  # fmt: skip
    assert mapping.changelog_counts(histories, site) == (1, 2)
