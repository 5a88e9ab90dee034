"""`[app.local] environment = "go"`: a Go team's unchanged `go build`, its modules from the Go module
proxy, the program in stageproof's cache (never in their tree), built again only when a .go file,
go.mod or go.sum changes; `{binary}` in a command is that program."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.config import LocalCommands
from harness.core.run import run
from harness.stages.local_env import prepare

GO_APP = Path(__file__).resolve().parents[1] / "fixtures" / "stand-ins" / "go-app"


def test_go_build_makes_the_program_once_outside_their_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "team"
    shutil.copytree(GO_APP, tree)
    before = sorted(path.name for path in tree.rglob("*"))
    commands = LocalCommands(workdir=tree, serve=["{binary}"], environment="go")
    env = prepare(commands, run_dir=tmp_path / "run", timeout=300)
    argv = env.argv([*commands.serve, "-version"])
    assert argv[0] == env.binary and Path(env.binary).is_relative_to(tmp_path / "cache")
    assert run(argv).stdout.startswith("go1.")
    assert sorted(path.name for path in tree.rglob("*")) == before  # nothing written into their tree
    assert "go build of team in" in capsys.readouterr().out
    assert prepare(commands, run_dir=tmp_path / "run", timeout=300).binary == env.binary
    assert "(cached go-" in capsys.readouterr().out
    main = tree / "main.go"
    main.write_text(main.read_text().replace("listening on", "serving on"))
    assert prepare(commands, run_dir=tmp_path / "run", timeout=300).binary != env.binary  # a code change rebuilds


def test_go_without_a_go_mod_is_one_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"environment.*\"go\" needs .*go\.mod"):
        LocalCommands(workdir=tmp_path, serve=["{binary}"], environment="go")
