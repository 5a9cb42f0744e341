"""logs and ssh, the parts without I/O: durations, journald/loop-file parsing, merging in time order, VM names,
the OpenSSH command line, streamed lines."""

import json

import pytest

from flwrazure.errors import UsageError
from flwrazure.plan import logs, names


def test_durations():
    assert [logs.parse_duration(t) for t in ("90s", "10m", "2h", "1d", "1h30m", "45", " 2 h ")] == \
        [90, 600, 7200, 86400, 5400, 45, 7200]
    for bad in ("", "ten minutes", "10x", "5m3", "-5m", "1.5h"):
        with pytest.raises(UsageError, match="is not a duration"):
            logs.parse_duration(bad)


def entry(ts_us: int, msg, cursor: str) -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": str(ts_us), "MESSAGE": msg, "__CURSOR": cursor})


def test_journal_parsing_keeps_time_and_cursor():
    out = "\n".join([entry(1_700_000_000_000_000, "INFO : Starting", "c1"), "garbage line",
                     entry(1_700_000_001_500_000, list(b"bytes \xff"), "c2"),
                     entry(1_700_000_002_000_000, "two\nlines", "c3")])
    lines, cursor = logs.parse_journal("vm", out)
    assert [(ln.ts, ln.text) for ln in lines] == [(1_700_000_000.0, "INFO : Starting"), (1_700_000_001.5, "bytes \ufffd"),
                                                  (1_700_000_002.0, "two"), (1_700_000_002.0, "lines")]
    assert cursor == "c3"
    assert logs.parse_journal("vm", "") == ([], None)
    again, cursor = logs.parse_journal("vm", out, seen="c1")  # --cursor includes the entry shown last time
    assert [ln.text for ln in again][0] == "bytes \ufffd" and cursor == "c3"


def test_journal_commands():
    assert logs.journal_command("flower-superlink", 20, None).endswith("-n 20")
    since = logs.journal_command("flower-supernode", None, 600)
    assert "--since=@$(( $(date +%s) - 600 ))" in since and " -n " not in since
    after = logs.journal_command("flower-supernode", None, None, "s=abc;i=1", 1700000000.5)
    assert "--cursor='s=abc;i=1'" in after and "|| journalctl" in after and "--since=@1700000000.500000" in after


def test_loop_file_offsets_keep_partial_lines_for_later():
    lines, nxt = logs.parse_file("vm", "@100\nfirst\nsecond\npart", tail_mode=False, now=5.0)
    assert [ln.text for ln in lines] == ["first", "second"] and nxt == 100 + len("first\nsecond\n")
    assert logs.parse_file("vm", "@100\npart", tail_mode=False, now=5.0) == ([], 100)
    lines, nxt = logs.parse_file("vm", "@2048\na\nb\n", tail_mode=True, now=None)
    assert [ln.text for ln in lines] == ["a", "b"] and nxt == 2048 and lines[0].ts is None
    assert "[ \"$s\" -lt \"$o\" ] && o=0" in logs.file_command("/x/flower-supernode.log", None, 7)  # truncated file


def test_merge_in_time_order_with_prefix():
    L = logs.Line
    merged = logs.merge({"flower-server": [L("flower-server", 10.0, "s1"), L("flower-server", None, "s1b"),
                                           L("flower-server", 30.0, "s3")],
                         "flower-client-1": [L("flower-client-1", None, "c0"), L("flower-client-1", 20.0, "c2"),
                                             L("flower-client-1", 10.0, "c1-same-time")]})
    assert [ln.text for ln in merged] == ["c0", "s1", "s1b", "c1-same-time", "c2", "s3"]
    assert logs.prefix(merged[0], 15) == "flower-client-1 | c0"


def test_vm_names_full_and_short():
    assert names.resolve_vm("flower", 3, "flower-client-2").vm == "flower-client-2"
    assert names.resolve_vm("flower", 3, "client-2").vm == "flower-client-2"
    assert names.resolve_vm("flower", 3, "2").vm == "flower-client-2"
    assert names.resolve_vm("flower", 3, "server").role == "server"
    assert names.resolve_vm("flower", 3, "client-4") is None and names.resolve_vm("flower", 3, "0") is None


def test_ssh_command_line_uses_only_the_clusters_key_and_pins():
    from pathlib import Path

    from flwrazure.remote.shell import _Lines, ssh_argv

    argv = ssh_argv("198.18.0.9", "azureuser", "/k/id_ed25519", Path("/k/known_hosts"))
    assert argv[:3] == ["ssh", "-F", "/dev/null"] and argv[-1] == "azureuser@198.18.0.9"
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/k/known_hosts" in argv
    assert "IdentitiesOnly=yes" in argv and "GlobalKnownHostsFile=/dev/null" in argv
    got = []
    sink = _Lines(got.append)
    for chunk in ("a\nb", "c\n", "tail"):
        sink.write(chunk)
    sink.close()
    assert got == ["a", "bc", "tail"]
