"""The SDK clients' requests session reads the proxy / CA-bundle environment once per host (requests walks the
whole environment twice per request for it): the answers must still be requests' own."""

from __future__ import annotations

import requests

from flwrazure.azure.target import _session

ARM = "https://management.azure.com/subscriptions/s/resourcegroups?api-version=2024-03-01"
LOCAL = "https://127.0.0.1:8443/subscriptions/s/resourcegroups?api-version=2024-03-01"


def _both(monkeypatch, url: str, verify=True) -> tuple[dict, dict]:
    ours = _session().merge_environment_settings(url, {}, False, verify, None)
    theirs = requests.Session().merge_environment_settings(url, {}, False, verify, None)
    return ours, theirs


def test_proxy_no_proxy_and_ca_bundle_are_requests_own_answers(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    ours, theirs = _both(monkeypatch, ARM)
    assert ours == theirs
    assert ours["proxies"]["https"] == "http://proxy.example:3128" and ours["verify"] == str(bundle)
    ours, theirs = _both(monkeypatch, LOCAL, verify="/tmp/local-ca.pem")
    assert ours == theirs and "https" not in ours["proxies"] and ours["verify"] == "/tmp/local-ca.pem"


def test_the_environment_is_read_once_per_host_and_the_answer_cannot_be_changed_by_its_user(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = _session()
    calls = []
    real = requests.Session.merge_environment_settings
    monkeypatch.setattr(requests.Session, "merge_environment_settings",
                        lambda self, *a: calls.append(a[0]) or real(self, *a))
    first = session.merge_environment_settings(ARM, {}, False, True, None)
    first["proxies"]["https"] = "changed by a caller"
    second = session.merge_environment_settings(ARM.replace("resourcegroups", "providers"), {}, False, True, None)
    session.merge_environment_settings(LOCAL, {}, False, True, None)
    assert len(calls) == 2  # management.azure.com once, 127.0.0.1 once
    assert second["proxies"]["https"] == "http://proxy.example:3128"
