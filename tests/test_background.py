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


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_writers_in_one_child_run_in_order_in_one_process(tmp_path, monkeypatch, jobs):
    """in_one_child: the block's writers run one after another in one child (here, with
    SERVICECIRCLE_WRITE_JOBS=1) while what follows is written here; all are committed."""
    monkeypatch.setenv(JOBS_ENV, jobs)
    out_dir = tmp_path / "out"
    with RunOutput(out_dir) as out:
        with out.in_one_child():
            out.text_from("a.html", lambda: str(os.getpid()))
            out.with_writer(
                "b.txt", lambda p: p.write_text(f"{os.getpid()} {p.with_name('a.html').exists()}")
            )
            out.text("c.txt", "plain")
        out.text("here.txt", str(os.getpid()))
    assert sorted(os.listdir(out_dir)) == ["a.html", "b.txt", "c.txt", "here.txt"]
    a = (out_dir / "a.html").read_text()
    assert (out_dir / "b.txt").read_text() == f"{a} True"  # the same process, a.html first
    here = str(os.getpid())
    assert (a == here) == (jobs == "1")
    assert (out_dir / "c.txt").read_text() == "plain"


def test_a_failure_in_one_child_fails_the_run_and_an_error_in_the_block_starts_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(JOBS_ENV, "2")

    def bad(path) -> None:
        raise InputError("the workbook cannot be written; close it in Excel")

    with pytest.raises(InputError, match="close it in Excel"), RunOutput(tmp_path / "o") as out:
        with out.in_one_child():
            out.text_from("a.html", lambda: "fine")
            out.with_writer("b.xlsx", bad)
        out.text("after.txt", "written here")
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv(JOBS_ENV, "1")  # a writer that ran would have run here, seen in ran
    ran = []
    with pytest.raises(ValueError, match="inside"), RunOutput(tmp_path / "p") as out:
        with out.in_one_child():
            out.with_writer("x.txt", lambda p: ran.append(p))
            raise ValueError("a step inside the block failed")
    assert ran == [] and not (tmp_path / "p").exists()


def test_a_block_that_raises_lists_none_of_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv(JOBS_ENV, "2")
    with RunOutput(tmp_path / "o") as out:
        out.text("kept.txt", "kept")
        with pytest.raises(ValueError), out.in_one_child():
            out.text_from("page.html", lambda: "never")
            raise ValueError("the map could not be made")
        assert out.files == ["kept.txt"]
    assert os.listdir(tmp_path / "o") == ["kept.txt"]
