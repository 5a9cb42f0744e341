"""The comparator of the recordings conformance test: it must see every kind of difference it claims to check."""

from __future__ import annotations

from tests.helpers.recordings import compare, shape

OP = "/subscriptions/s/providers/Microsoft.Network/locations/eastus/operations/abc"
PUT = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v"
SDK = "Azure/azure-sdk-for-python:sdk/x.json"
CLI = "Azure/azure-cli:src/x.yaml"


def _ex(status=201, headers=None, body=None, path=PUT, source=SDK, kind=None) -> dict:
    ex = {"status": status, "headers": headers or {}, "response_body": body, "path": path, "source": source}
    if kind:
        ex["kind"] = kind
    return ex


def test_identical_shapes_match():
    h = {"azure-asyncoperation": "https://x/op", "retry-after": "3", "x-ms-ratelimit-remaining-subscription-writes": "1"}
    body = {"properties": {"provisioningState": "Updating"}}
    assert compare(_ex(headers=h, body=body), shape(201, {**h, "Content-Type": "x"}, body, PUT)) == []


def test_each_field_is_compared():
    h = {"azure-asyncoperation": "u", "retry-after": "3", "x-ms-ratelimit-remaining-subscription-writes": "1"}
    body = {"properties": {"provisioningState": "Updating"}}
    ex = _ex(headers=h, body=body)
    assert compare(ex, shape(200, h, body, PUT))[0].startswith("status:")
    assert compare(ex, shape(201, {**h, "location": "l"}, body, PUT))[0].startswith("lro:")
    assert compare(ex, shape(201, {k: v for k, v in h.items() if k != "retry-after"}, body, PUT))[0].startswith(
        "retry_after:")
    assert compare(ex, shape(201, {"azure-asyncoperation": "u", "retry-after": "3"}, body, PUT))[0].startswith(
        "ratelimit:")
    assert compare(ex, shape(201, h, {"properties": {"provisioningState": "Succeeded"}}, PUT))[0].startswith(
        "provisioningState:")
    poll = _ex(200, {}, {"status": "InProgress"}, OP, CLI)
    assert compare(poll, shape(200, {}, {"status": "InProgress", "name": "abc"}, OP))[0].startswith("async_keys:")
    err = _ex(400, {}, {"error": {"code": "NicInUse", "message": "m", "details": []}}, PUT, CLI)
    assert compare(err, shape(400, {}, {"error": {"code": "NicInUse", "message": "m"}}, PUT))[0].startswith(
        "error_keys:")
    assert compare(err, shape(400, {}, {"error": {"code": "Other", "message": "m", "details": []}}, PUT))[
        0].startswith("error_code:")
    gw = _ex(404, {"x-ms-failure-cause": "gateway"}, {"error": {"code": "ResourceNotFound", "message": "m"}}, PUT, CLI)
    assert compare(gw, shape(404, {}, {"error": {"code": "ResourceNotFound", "message": "m"}}, PUT))[0].startswith(
        "failure_cause:")
    cmp = _ex(200, {"x-ms-ratelimit-remaining-resource": "Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1199"},
              None, PUT, CLI)
    assert compare(cmp, shape(200, {"x-ms-ratelimit-remaining-resource": "Microsoft.Compute/PutVM3Min;1"}, None,
                              PUT))[0].startswith("compute_groups:")


def test_what_a_recording_cannot_show_is_not_compared():
    # the CLI recorder strips Retry-After: its absence there says nothing
    assert compare(_ex(201, {}, None, PUT, CLI), shape(201, {"retry-after": "3"}, None, PUT)) == []
    # a body quoted in an issue carries no headers
    quoted = _ex(409, {}, {"error": {"code": "SkuNotAvailable", "message": "m"}}, PUT, CLI, kind="quoted-in-issue")
    assert compare(quoted, shape(409, {"x-ms-failure-cause": "gateway"}, {"error": {
        "code": "SkuNotAvailable", "message": "x"}}, PUT)) == []
    # more rate-limit headers locally than recorded is fine (recordings keep only the relevant ones)
    assert compare(_ex(200, {}, None, PUT, CLI), shape(200, {"x-ms-ratelimit-remaining-subscription-reads": "9"},
                                                       None, PUT)) == []


def test_millisecond_hints_count_as_retry_after():
    assert shape(201, {"retry-after-ms": "150"}, None, PUT)["retry_after"] is True
