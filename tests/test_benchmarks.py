"""The benchmarks in tests/benchmarks still run: each is run end to end at a tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not {0, 1} <= os.sched_getaffinity(0),
    reason="the benchmarks pin the server to CPU 0 and the load to CPU 1")


def run_benchmark(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_fanout_benchmark_measures_every_server_it_is_given(tmp_path: Path) -> None:
    """The fan-out benchmark measures each server's deliveries, CPU, memory and latency, and
    writes the table and every result as JSON."""
    out = tmp_path / "fanout.json"
    run = run_benchmark("tests.benchmarks.fanout", "--clients", "12", "--samples", "2",
                        "--repetitions", "1", "--warmup", "0.2", "--seconds", "0.5",
                        "--loads", "100", "--servers", "tui-chat,tui-chat :memory:",
                        "--json", str(out))
    assert run.returncode == 0, run.stderr
    written = json.loads(out.read_text())
    assert {result["server"] for result in written["results"]} == {"tui-chat",
                                                                   "tui-chat :memory:"}
    for result in written["results"]:
        assert result["errors"] == 0
        assert result["deliveries_per_s"] > 0 and result["server_cpu"] > 0
        assert result["rss_per_connection_kib"] > 0
        latency = result["latency"]["100 msg/s"]
        assert latency["samples"] > 0 and 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert "| 12 | tui-chat :memory: |" in written["table"]
    assert "| - |" in written["table"]  # no Node ws in this run: no ratio to it


def test_fanout_benchmark_rejects_a_server_it_does_not_know() -> None:
    """A misspelt server name is an error naming the servers there are, not a silent skip."""
    run = run_benchmark("tests.benchmarks.fanout", "--servers", "tui-chat,node-ws")
    assert run.returncode == 2
    assert "unknown server 'node-ws'" in run.stderr and "Node ws" in run.stderr


def test_send_cost_benchmark_measures_every_writer_variant() -> None:
    """The write-cost benchmark reports a cost per write for one Python writer and for two,
    and for the C loop and io_uring, or says why it could not build them here."""
    run = run_benchmark("tests.benchmarks.send_cost", "--clients", "20", "--rounds", "5")
    assert run.returncode == 0, run.stderr
    assert "one writer on CPU 0:" in run.stdout and "two writer threads" in run.stdout
    if "C floor: skipped" in run.stdout:
        assert run.stdout.count("us per write") == 4
    else:
        assert run.stdout.count("write loop") == 2 and run.stdout.count("io_uring") == 2
        assert run.stdout.count("us per write") == 8


def test_client_benchmark_absorbs_a_burst_and_answers_keys(tmp_path: Path) -> None:
    """The client benchmark gets a burst into the real app's log, bounded by the scrollback,
    while every key press it sends is answered."""
    out = tmp_path / "client.json"
    run = run_benchmark("tests.benchmarks.client_app", "--count", "3000", "--rate", "20000",
                        "--scrollback", "1000", "--json", str(out))
    assert run.returncode == 0, run.stderr
    figures = json.loads(out.read_text())
    assert figures["messages"] == 3000 and figures["log_lines"] == 1000
    assert figures["keys_sent"] > 0 and figures["keys_unanswered"] == 0
    assert figures["absorbed_msgs_per_s"] > 0 and figures["launch_to_interactive_s"] > 0


def test_hostile_text_benchmark_times_every_case() -> None:
    """The hostile-text benchmark decodes, vets and cleans each of its frames and prints a
    time for each."""
    run = run_benchmark("tests.benchmarks.hostile_text", "--bytes", "2000", "--repeat", "1")
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()[1:]
    assert len(rows) == 8 and all(row.split()[-1].replace(".", "").isdigit() for row in rows)


def test_catchup_benchmark_measures_memory_and_a_whole_catch_up() -> None:
    """The catch-up benchmark fills a room, reports the memory its non-readers hold and how
    long one reader takes to get all of it."""
    run = run_benchmark("tests.benchmarks.catchup", "--messages", "300", "--chars", "2000",
                        "--stalled", "2")
    assert run.returncode == 0, run.stderr
    assert "MB per client" in run.stdout and "one client reading all of it:" in run.stdout


def test_user_list_benchmark_times_a_change_for_every_size() -> None:
    """The user-list benchmark prints the cost of a pause alone and of a change for each
    room size it is given."""
    run = run_benchmark("tests.benchmarks.user_list", "--sizes", "10,500", "--changes", "2")
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()
    assert [row.split(":")[0].strip() for row in rows] == [
        "baseline (a pause alone)", "10 members", "500 members"]
    assert all(row.endswith("ms per change") for row in rows)


def test_handshake_memory_benchmark_reports_the_rss_after_each_round() -> None:
    """The handshake memory benchmark prints the server's RSS at start and after each round
    of unfinished handshakes."""
    run = run_benchmark("tests.benchmarks.handshake_memory", "--rounds", "2", "--connections", "2")
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()
    assert rows[0].startswith("server RSS at start: ") and len(rows) == 3
    assert rows[2].startswith("after round 2 (4 closed): ") and rows[2].endswith(" MB")
