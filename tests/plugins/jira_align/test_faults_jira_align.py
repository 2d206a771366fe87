"""Transport faults against the requests-based Jira Align adapter over real HTTPS: answers
cut off mid-body are read again within one retry budget; one trickling past the deadline is cut
there, and only its stream fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from itcrosswalk.core.config import Config
from itcrosswalk.core.sync import SyncEngine

from .conftest import Site

TWO_STREAMS = 'streams = ["portfolios", "programs"]'


def _by_stream(result: Any) -> dict[str, Any]:
    return {s.stream: s for s in result.streams}


def _portfolio_requests(site: Site) -> int:
    return sum(1 for _, path in site.app.requests if "/portfolios" in path.lower())


def _portfolios(site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any) -> int:
    """How many portfolios a sync without faults reads."""
    config = make_config(site, extra='streams = ["portfolios"]', store_url="sqlite://")
    return int(SyncEngine(config, open_store(config), pm=pm).sync("align").streams[0].read)


def test_an_answer_cut_off_mid_body_is_read_again(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    expected = _portfolios(site, make_config, open_store, pm)
    config = make_config(site, extra=TWO_STREAMS)
    asked_before = _portfolio_requests(site)
    site.faults.reset_mid_body_next = 2
    result = SyncEngine(config, open_store(config), pm=pm).sync("align")
    streams = _by_stream(result)
    assert result.exit_code == 0, [s.message for s in result.streams]
    assert streams["portfolios"].read == expected > 0
    assert streams["programs"].read > 0
    # As many requests as the sync without faults made (asked_before), and the two cut ones.
    assert _portfolio_requests(site) - asked_before == asked_before + 2


def test_cuts_that_persist_fail_that_stream_only(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra=TWO_STREAMS, retries=1)
    site.faults.reset_mid_body_next = 2
    result = SyncEngine(config, open_store(config), pm=pm).sync("align")
    streams = _by_stream(result)
    assert streams["portfolios"].status == "error"
    assert "the connection was cut while reading the answer to GET" in streams["portfolios"].message
    assert "(2 attempts)" in streams["portfolios"].message
    assert streams["programs"].status == "ok" and streams["programs"].read > 0


def test_an_answer_trickling_past_the_deadline_fails_that_stream_only(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra=TWO_STREAMS + "\ntimeout = 3\ndeadline = 0.5")
    site.faults.trickle_next = 1
    site.faults.trickle_rate = 200
    result = SyncEngine(config, open_store(config), pm=pm).sync("align")
    streams = _by_stream(result)
    assert streams["portfolios"].status == "error"
    assert "took longer than the deadline of 0.5s for one request" in streams["portfolios"].message
    assert site.faults.trickled < 400
    assert streams["programs"].status == "ok" and streams["programs"].read > 0
