"""Environment variables read as numbers and switches."""

from __future__ import annotations

import pytest

from sealagent.envvars import env_flag, env_int, parse_number
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
