"""plan.admin.bounded: registration and unregistration commands run at most N at a time on the server VM (a
hundred flwr processes at once exhaust its memory), executed here by a real shell."""

from __future__ import annotations

import subprocess

import pytest

from flwrazure.plan.admin import bounded


def _run(script: str) -> None:
    subprocess.run(["sh", "-c", script], check=True, timeout=60)


def test_runs_every_item_at_most_n_at_a_time(tmp_path):
    running, log = tmp_path / "running", tmp_path / "log"
    running.mkdir()
    items = [f"flower-client-{i}" for i in range(1, 25)]
    step = (f"mkdir {running}/@; ls {running} | wc -l >> {log}; sleep 0.15; rmdir {running}/@; "
            f"echo done > {tmp_path}/@.out")
    _run(bounded(items, step, 4))
    peaks = [int(x) for x in log.read_text().split()]
    assert len(peaks) == 24 and max(peaks) <= 4 and max(peaks) >= 2, peaks  # parallel, but bounded
    assert all((tmp_path / f"{i}.out").read_text() == "done\n" for i in items)


def test_items_carry_two_fields_for_unregistration(tmp_path):
    _run(bounded(["flower-client-1:11", "flower-client-2:22"], f"vm=@; echo ${{vm#*:}} > {tmp_path}/${{vm%%:*}}"))
    assert (tmp_path / "flower-client-1").read_text() == "11\n" and (tmp_path / "flower-client-2").read_text() == "22\n"


@pytest.mark.parametrize("bad", ["a b", "x;rm", "$(id)", "", "q'"])
def test_refuses_items_that_are_not_plain_names(bad):
    with pytest.raises(ValueError):
        bounded([bad], "echo @")
