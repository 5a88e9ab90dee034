"""The subprocess helper never hides why a command failed, not even when it ran too long."""

from __future__ import annotations

import sys

import pytest

from harness.core.run import run
from harness.errors import CommandFailed

SLOW_TALKER = "import sys,time; print('partial', file=sys.stderr, flush=True); time.sleep(5)"


def test_timeout_keeps_the_stderr_printed_so_far() -> None:
    with pytest.raises(CommandFailed) as caught:
        run([sys.executable, "-c", SLOW_TALKER], timeout=0.5)
    err = caught.value
    assert "partial" in err.stderr
    assert "partial" in str(err)
    assert "timed out after 0.5s" in str(err)
    assert err.timed_out == 0.5
    assert err.returncode == -1


def test_non_zero_exit_carries_stderr_and_the_pasteable_command() -> None:
    with pytest.raises(CommandFailed) as caught:
        run([sys.executable, "-c", "import sys; sys.exit('boom')"])
    err = caught.value
    assert err.timed_out is None
    assert err.returncode == 1
    assert "boom" in err.stderr
    assert "exit 1" in str(err) and err.command in str(err)


def test_command_failed_positional_constructor_still_works() -> None:
    err = CommandFailed(["echo", "a b"], 2, "out", "")
    assert err.timed_out is None
    assert str(err) == "command failed (exit 2): echo 'a b'\nout"
