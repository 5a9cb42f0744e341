"""Which Azure answers mean "another operation is updating this resource, retry", and how long to wait."""

import json

import pytest

from flwrazure.azure.retry import conflict_delay, conflict_of

RETRYABLE = {"error": {"code": "RetryableError", "message": "A retryable error occurred.", "details": [
    {"code": "RetryableErrorDueToAnotherOperation",
     "message": "Operation PutVirtualNetworkGatewayOperation (0efc) is updating resource /x. The call can be "
                "retried in 12 seconds."}]}}
IN_PROGRESS = {"error": {"code": "AnotherOperationInProgress", "details": [],
                         "message": "Another operation on this or dependent resource is in progress."}}


@pytest.mark.parametrize("status, body, expected", [
    (429, RETRYABLE, ("RetryableError", 12.0)),
    (409, IN_PROGRESS, ("AnotherOperationInProgress", None)),
    (429, {"error": {"code": "SubscriptionRequestsThrottled", "message": "x"}}, None),  # throttling: the SDK's job
    (409, {"error": {"code": "Conflict", "message": "x"}}, None),
    (400, RETRYABLE, None),
    (409, None, None),
])
def test_conflict_of(status, body, expected):
    assert conflict_of(status, json.dumps(body) if body is not None else None) == expected


def test_conflict_of_tolerates_bodies_that_are_not_arm_errors():
    assert conflict_of(409, "<html>") is None and conflict_of(429, "[]") is None


def test_delay_prefers_the_server_then_doubles_with_jitter_and_a_cap():
    assert conflict_delay(1, None, None, 0.0) == 0.5 and conflict_delay(3, None, None, 0.0) == 2.0
    assert conflict_delay(10, None, None, 0.0) == 30.0
    assert conflict_delay(1, 12.0, None, 0.0) == 12.0 and conflict_delay(1, 12.0, 3.0, 0.0) == 3.0
    assert conflict_delay(1, None, 2.0, 0.99) == pytest.approx(2.99)
