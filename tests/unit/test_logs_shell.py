"""The shell commands logs and ssh send to a VM, run for real by a local shell (invoke's Context, the base of
Fabric's Connection, has the same run()): the restart loop's log read by offset, partial lines kept for later,
a truncated file read from its start; a command's output streamed line by line with its exit code."""

from invoke import Context

from flwrazure.plan.services import Layout
from flwrazure.remote import logs, shell
from flwrazure.remote.daemons import LOOP


def test_loop_log_by_offset(tmp_path):
    layout = Layout(str(tmp_path))
    (tmp_path / "flwrazure").mkdir()
    log = tmp_path / "flwrazure" / "flower-supernode.log"
    log.write_text("one\ntwo\nthree\n")
    ctx = Context()
    got, cursor = logs.recent(ctx, "vm", "flower-supernode", LOOP, layout, 2, None)
    assert [ln.text for ln in got] == ["two", "three"] and cursor.position == len("one\ntwo\nthree\n")
    assert logs.more(ctx, "vm", "flower-supernode", layout, cursor) == []
    with open(log, "a") as f:
        f.write("four ü\nfive (partial")
    got = logs.more(ctx, "vm", "flower-supernode", layout, cursor)
    assert [ln.text for ln in got] == ["four ü"] and all(ln.ts for ln in got)
    with open(log, "a") as f:
        f.write(")\n")
    assert [ln.text for ln in logs.more(ctx, "vm", "flower-supernode", layout, cursor)] == ["five (partial)"]
    log.write_text("new file\n")  # shorter than the offset: rotated or re-created, read from its start
    assert [ln.text for ln in logs.more(ctx, "vm", "flower-supernode", layout, cursor)] == ["new file"]
    _, empty = logs.recent(ctx, "vm", "flower-superlink", LOOP, layout, 0, None)  # no file yet
    assert empty.position == 0


def test_streamed_command_lines_and_exit_code():
    got = []
    code = shell.run_streamed(Context(), "echo a; echo b >&2; printf 'no newline'; exit 3", got.append)
    assert code == 3 and sorted(got) == ["a", "b", "no newline"]
