"""A renewing token in a header of its own, renewed once when the answer says it went stale."""

from __future__ import annotations

from typing import Any

import requests
import responses

from itcrosswalk.core.http import HttpPolicy, RenewingBearer, build_session, is_html


class HeaderSession(RenewingBearer):
    header = "authToken"
    scheme = ""

    def __init__(self) -> None:
        self.issued = 0

    def token(self, *, renew: bool = False) -> str:
        if renew or not self.issued:
            self.issued += 1
        return f"session-{self.issued}"

    def stale(self, response: requests.Response) -> bool:
        return response.status_code == 401 or is_html(response)


@responses.activate
def test_a_sign_in_page_renews_the_session_once_in_its_own_header() -> None:
    url = "https://ppm.example.gov/ppm/rest/v1/projects"
    responses.add(responses.GET, url, body="<html><title>Sign In</title></html>",
                  content_type="text/html", status=200)  # fmt: skip
    responses.add(responses.GET, url, json={"_results": []}, status=200)
    auth = HeaderSession()
    session = build_session("ppm", base_url=url, policy=HttpPolicy(max_retries=0), auth=auth)
    answer = session.get(url)
    assert answer.json() == {"_results": []}
    sent: list[Any] = [call.request.headers for call in responses.calls]
    assert [h["authToken"] for h in sent] == ["session-1", "session-2"]
    assert all("Authorization" not in h for h in sent)
