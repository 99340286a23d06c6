"""Writers in forked children: the same files as written in one process, a failure raised as
the child raised it, and the output folder left as it was when anything fails."""

from __future__ import annotations

import os
import signal
import sys
import threading

import pandas as pd
import pytest

from servicecircle import InputError
from servicecircle._background import JOBS_ENV, child_slots
from servicecircle.outputs import RunOutput

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="writers fork only on Linux with two cores or more",
)


def test_files_written_in_children_are_all_there_after_commit(tmp_path, monkeypatch):
    monkeypatch.setenv(JOBS_ENV, "4")
    assert child_slots() == 3
    frame = pd.DataFrame({"a": range(5000), "b": ["驿站"] * 5000})
    out_dir = tmp_path / "out"
    with RunOutput(out_dir) as out:
        out.text_from("page.html", lambda: f"pid {os.getpid()}")
        out.csv("t.csv", frame)
        out.with_writer("w.txt", lambda p: p.write_text(str(os.getpid())))
        out.json("summary.json", {"n": 1})
    assert sorted(os.listdir(out_dir)) == ["page.html", "summary.json", "t.csv", "w.txt"]
    assert pd.read_csv(out_dir / "t.csv").equals(frame)
    assert (out_dir / "page.html").read_text() != f"pid {os.getpid()}"  # built in a child


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failing_writer_fails_the_run_as_it_raised_and_leaves_the_folder(
    tmp_path, monkeypatch, jobs
):
    monkeypatch.setenv(JOBS_ENV, jobs)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "old.csv").write_text("kept\n")

    def bad() -> str:
        raise InputError("facility file x.csv: the page cannot be built; fix the file")

    with pytest.raises(InputError, match="page cannot be built"), RunOutput(out_dir) as out:
        out.text_from("page.html", bad)
        out.csv("t.csv", pd.DataFrame({"a": [1]}))
    assert os.listdir(out_dir) == ["old.csv"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".servicecircle-staging-")]


def test_a_writer_killed_by_a_signal_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(JOBS_ENV, "2")

    def dies() -> str:
        os.kill(os.getpid(), signal.SIGKILL)
        return ""

    with (
        pytest.raises(RuntimeError, match=r"page.html failed .*signal 9"),
        RunOutput(tmp_path / "o") as out,
    ):
        out.text_from("page.html", dies)
    assert not (tmp_path / "o").exists()


def test_an_error_in_the_run_stops_the_children(tmp_path, monkeypatch):
    monkeypatch.setenv(JOBS_ENV, "2")
    import time

    with pytest.raises(ValueError, match="later step"), RunOutput(tmp_path / "o") as out:
        out.text_from("slow.html", lambda: time.sleep(30) or "")
        raise ValueError("a later step failed")
    assert not (tmp_path / "o").exists()


def test_no_child_while_another_thread_runs(monkeypatch):
    monkeypatch.setenv(JOBS_ENV, "4")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert child_slots() == 0
    finally:
        stop.set()
        thread.join()
    assert child_slots() == 3
    monkeypatch.setenv(JOBS_ENV, "many")
    assert child_slots() == 0
