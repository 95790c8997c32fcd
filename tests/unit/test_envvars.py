"""Environment variables read as numbers and switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealagent.cli import main
from sealagent.envvars import check_tmpdir, env_flag, env_int, parse_number
from sealagent.errors import ConfigError


def test_switches_accept_the_usual_words_and_refuse_typos() -> None:
    env = {"A": "YES", "B": " off ", "C": "", "D": "ture"}
    assert [env_flag(env, n) for n in ("A", "B", "C", "UNSET")] == [True, False, False, False]
    with pytest.raises(ConfigError, match="D='ture': expected 1, true, yes, on"):
        env_flag(env, "D")


def test_numbers_name_the_variable() -> None:
    env = {"N": "12", "BAD": "1e3", "LOW": "-1"}
    assert env_int(env, "N", 5) == 12 and env_int(env, "UNSET", 5) == 5
    with pytest.raises(ConfigError, match="BAD='1e3': expected an integer ≥ 0"):
        env_int(env, "BAD", 5)
    with pytest.raises(ConfigError, match="LOW='-1': expected an integer ≥ 0"):
        env_int(env, "LOW", 5)
    assert parse_number("F", "0.5", "float") == 0.5
    with pytest.raises(ConfigError, match="F='nan': expected a number ≥ 0"):
        parse_number("F", "nan", "float")
    with pytest.raises(ConfigError, match="an integer number of bytes"):
        parse_number("M", "+5", "bytes")


def test_check_tmpdir(tmp_path: Path) -> None:
    check_tmpdir({})
    check_tmpdir({"TMPDIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="TMPDIR=/nonexistent is not a writable directory"):
        check_tmpdir({"TMPDIR": "/nonexistent"})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a writable directory"):
        check_tmpdir({"TMPDIR": str(tmp_path / "file")})


@pytest.mark.parametrize("argv", [["bench", "--sector-size", "2KiB"],
                                  ["devnet", "--sectors", "1"]])
def test_scratch_commands_refuse_an_unusable_tmpdir(
        argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TMPDIR", "/nonexistent")
    assert main(argv) == 2
    assert "TMPDIR=/nonexistent is not a writable directory" in capsys.readouterr().err
