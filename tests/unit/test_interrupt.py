"""Ctrl-C: worker pools let go at once, the line says what is left and what finishes or removes it, a remote
install waits for one an interrupted start left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from flwrazure import workers
from flwrazure.plan import bootstrap
from flwrazure.plan import interrupt as plan


def test_ctrl_c_while_tasks_block_returns_at_once_and_cancels_the_queue():
    """As start's pool with every VM in a pip install: the main thread waits on the first; Ctrl-C comes. A plain
    `with ThreadPoolExecutor()` would wait the 30 s of the running tasks here."""
    release = threading.Event()
    main = threading.main_thread().ident
    # Python's Ctrl-C handler, as a terminal's foreground process has it: a job a non-interactive shell started in
    # the background (a CI runner's) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT)).start()  # Ctrl-C, to the main thread
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            with workers.pool(4) as pool:
                jobs = [pool.submit(release.wait, 30) for _ in range(8)]
                for job in jobs:
                    job.result()
        took = time.monotonic() - began
    finally:
        release.set()
        signal.signal(signal.SIGINT, before)
    assert took < 1.5, took
    assert sum(job.cancelled() for job in jobs) == 4  # not started: never will be
    assert not any(job.cancelled() for job in jobs[:4])


def test_pool_waits_for_its_tasks_when_the_block_ends_or_fails():
    done: list[int] = []
    with workers.pool(2) as pool:
        for i in range(4):
            pool.submit(lambda i=i: (time.sleep(0.05), done.append(i)))
    assert sorted(done) == [0, 1, 2, 3]
    done.clear()
    with pytest.raises(ValueError):
        with workers.pool(2) as pool:
            for i in range(4):
                pool.submit(lambda i=i: (time.sleep(0.05), done.append(i)))
            raise ValueError("a VM failed")
    assert sorted(done) == [0, 1, 2, 3]  # an error is not Ctrl-C: the other VMs' work finishes


@pytest.mark.parametrize("left, words", [
    (plan.Left("c", "c-rg", vms=3, ips=3, group=True), "3 VMs exist in c-rg and are billed; re-run `flwrazure "
                                                       "create-cluster --clients 2` to finish, or `flwrazure "
                                                       "teardown --cluster c` to remove it all."),
    (plan.Left("c", "c-rg", vms=1, group=True), "1 VM exists in c-rg and is billed;"),
    (plan.Left("c", "c-rg", ips=2, group=True), "2 public IPs (no VM yet) exist in c-rg and are billed;"),
    (plan.Left("c", "c-rg", group=True), "resource group c-rg exists, with nothing billed in it yet;"),
    (plan.Left("c", "c-rg"), "nothing was created; re-run `flwrazure create-cluster --clients 2` to do it."),
    (None, "nothing was created; re-run"),
])
def test_the_line_for_create(left, words):
    assert words in plan.line("create-cluster", left, "flwrazure create-cluster --clients 2")


def test_the_line_for_other_commands():
    left = plan.Left("c", "c-rg", vms=4, group=True, at_most=True)
    assert plan.line("scale", left, "flwrazure scale --clients 1 --yes").startswith(
        "up to 4 VMs exist in c-rg and are billed; re-run `flwrazure scale --clients 1 --yes` to finish")
    td = plan.line("teardown", left, "flwrazure teardown --yes")
    assert "may remain in c-rg" in td and "re-run `flwrazure teardown --yes` to finish deleting" in td
    assert "flwrazure resume --cluster c" in plan.line("pause", left, "flwrazure pause")
    assert plan.line("status", None, "flwrazure status") == "nothing was changed."


def test_the_command_to_re_run_is_the_one_typed_without_index_credentials():
    assert plan.rerun(["up", "--cloud", "local", "--index-url", "https://me:s3cret@pkgs.example/simple/"]) == \
        "flwrazure up --cloud local --index-url 'https://***@pkgs.example/simple/'"
    assert plan.rerun(["create-cluster", "--ssh-source", "my laptop"]) == \
        "flwrazure create-cluster --ssh-source 'my laptop'"


@pytest.mark.parametrize("shell", [s for s in ("/bin/sh", "/bin/bash") if os.path.exists(s)])
def test_an_install_waits_for_the_one_an_interrupted_start_left(tmp_path, shell):
    """The first install (Ctrl-C'd: it goes on without us) holds the lock; the re-run's waits, then runs."""
    lock, log = tmp_path / ".install.lock", tmp_path / "log"
    first = subprocess.Popen([shell, "-c", bootstrap.one_at_a_time(
        f"echo first-begins >> {log}; sleep 1; echo first-ends >> {log}", str(lock), 30)])
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run([shell, "-c", bootstrap.one_at_a_time(f"echo second >> {log}", str(lock), 30)],
                            timeout=30)
    first.wait(timeout=30)
    assert second.returncode == 0 and first.returncode == 0
    assert log.read_text().split() == ["first-begins", "first-ends", "second"]
    held = subprocess.Popen([shell, "-c", bootstrap.one_at_a_time("sleep 2", str(lock), 30)])
    time.sleep(0.3)
    late = subprocess.run([shell, "-c", bootstrap.one_at_a_time(f"echo never >> {log}", str(lock), 1)], timeout=30,
                          capture_output=True, text=True)
    held.wait(timeout=30)
    assert late.returncode == bootstrap.LOCKED_EXIT and "never" not in log.read_text()  # waited 1 s, ran nothing
    assert late.stderr.strip() == "another install into this venv was still running after 1 s"


def test_busy_says_whether_a_command_holds_the_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("FLWRAZURE_HOME", str(tmp_path))
    from flwrazure.workstation import state

    assert state.busy("c") is False  # no directory, no lock
    code = ("import sys, time; from flwrazure.workstation import state\n"
            "with state.exclusive('c', 'create-cluster', create=True):\n"
            "    print('held', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "FLWRAZURE_HOME": str(tmp_path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert state.busy("c") is True
    finally:
        holder.kill()
        holder.wait()
    assert state.busy("c") is False  # killed: the kernel let the lock go
