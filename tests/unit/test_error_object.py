"""The error object of --json (docs/json.md): when it is asked for, its code and its next steps."""

from flwrazure.azure.errors import AzureError
from flwrazure.errors import FlwrazureError, UsageError, describe, json_requested
from flwrazure.workstation.state import ClusterBusy


def test_json_is_asked_by_json_or_output_json_before_a_double_dash():
    assert json_requested(["status", "--json"]) and json_requested(["list", "-o", "json"])
    assert json_requested(["list", "--output=JSON"]) and json_requested(["list", "-ojson"])
    assert not json_requested(["status"]) and not json_requested(["list", "-o", "table"])
    assert not json_requested(["ssh", "--all", "--", "tool", "--json"])  # the remote command's own option


def test_codes_and_next_steps():
    argv = ["scale", "--clients", "3"]
    assert describe(UsageError("cluster x is paused: run `flwrazure resume --cluster x` first."), argv) == {
        "error": {"code": "usage", "message": "cluster x is paused: run `flwrazure resume --cluster x` first.",
                  "next": ["flwrazure resume --cluster x"]}}
    assert describe(FlwrazureError("no command here"), argv)["error"] == {
        "code": "failed", "message": "no command here", "next": []}
    busy = describe(ClusterBusy("another flwrazure command is working on cluster x (pid 7)"), argv)["error"]
    assert busy["code"] == "busy" and busy["next"] == ["flwrazure scale --clients 3"]
    # Azure's code; a re-run is the next step only when that is Azure's advice
    retry = describe(AzureError("virtual machine v", "InternalError", "boom"), argv)["error"]
    assert retry["code"] == "azure.InternalError" and retry["next"] == ["flwrazure scale --clients 3"]
    sku = describe(AzureError("virtual machine v", "SkuNotAvailable", "no"), argv)["error"]
    assert sku["code"] == "azure.SkuNotAvailable" and sku["next"] == ["az vm list-skus -l <region>"]
    given = describe(FlwrazureError("m `flwrazure a`", code="local.x", next=["flwrazure b"]), argv)["error"]
    assert given == {"code": "local.x", "message": "m `flwrazure a`", "next": ["flwrazure b"]}
