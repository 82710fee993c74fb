"""Client commands fail as one line on stderr, never as a traceback."""

from __future__ import annotations

import argparse

import pytest

from gossip.cli.api_command import INTERRUPTED, api_command
from gossip.client.api import ApiClient, ApiClientError


def _args() -> argparse.Namespace:
    return argparse.Namespace(api="127.0.0.1:1", api_token=None)


def test_a_command_gets_a_client_for_the_given_api_and_returns_its_status() -> None:
    seen: list[tuple[str, int]] = []

    def command(client: ApiClient, args: argparse.Namespace) -> int:
        seen.append((client.host, client.port))
        return 3

    assert api_command("members", command)(_args()) == 3
    assert seen == [("127.0.0.1", 1)]


@pytest.mark.parametrize("error", [ApiClientError("HTTP 404: no such key"), OSError("no file")])
def test_an_api_or_file_error_is_one_line_naming_the_command_and_exit_1(
    error: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    def command(client: ApiClient, args: argparse.Namespace) -> int:
        raise error

    assert api_command("kv put", command)(_args()) == 1
    assert capsys.readouterr().err == f"gossip kv put: {error}\n"


def test_a_bad_api_address_is_reported_like_an_api_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def command(client: ApiClient, args: argparse.Namespace) -> int:
        return 0

    args = argparse.Namespace(api="[::1", api_token=None)
    assert api_command("info", command)(args) == 1
    assert capsys.readouterr().err.startswith("gossip info: bad API address")


def test_ctrl_c_exits_130_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    def command(client: ApiClient, args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    assert api_command("monitor", command)(_args()) == INTERRUPTED == 130
    assert capsys.readouterr().err == ""
