"""The systemd units in deploy/ parse, start what exists in this checkout, and keep Rasa and the
action server private, restarted with back-off, in production mode with the secrets from a file."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from indgang.devstack import rasa_argv
from indgang.settings import PROJECT_DIR, SECRET_FIELDS

DEPLOY = PROJECT_DIR / "deploy"
INSTALL_DIR = "/opt/indgang"  # where deploy/README.md installs the checkout
UNITS = ("indgang-gateway.service", "indgang-rasa.service", "indgang-actions.service")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(DEPLOY / name, encoding="utf-8")
    return parser


def command(name: str) -> list[str]:
    return shlex.split(unit(name)["Service"]["ExecStart"].replace(INSTALL_DIR, str(PROJECT_DIR)))


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_runs_in_production_with_its_secrets_from_a_file_and_always_restarts(name: str) -> None:
    service = unit(name)["Service"]
    assert "INDGANG_ENV=production" in service["Environment"].split()
    assert service["EnvironmentFile"] == "/etc/indgang/indgang.env"
    assert service["Restart"] == "always"
    assert float(service["RestartSec"]) <= 1 and int(service["RestartMaxDelaySec"]) == 30
    assert unit(name)["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up on a crash loop
    assert service["WorkingDirectory"] == INSTALL_DIR


@pytest.mark.parametrize(
    ("name", "module"),
    [("indgang-gateway.service", "webhook.main"), ("indgang-actions.service", "actions.server")],
)
def test_python_units_start_an_existing_module_entry_point(name: str, module: str) -> None:
    argv = command(name)
    assert argv[:3] == [str(PROJECT_DIR / ".venv" / "bin" / "python"), "-m", module]
    source = PROJECT_DIR / (module.replace(".", "/") + ".py")
    assert 'if __name__ == "__main__":' in source.read_text(encoding="utf-8")


def test_the_private_parts_listen_on_loopback_and_rasa_wants_its_token() -> None:
    rasa = command("indgang-rasa.service")
    assert rasa[0] == str(PROJECT_DIR / ".venv-rasa" / "bin" / "rasa") and rasa[1] == "run"
    assert "--auth-token=${RASA_AUTH_TOKEN}" in rasa  # one word: a token may start with "-"
    assert rasa[rasa.index("--interface") + 1] == "127.0.0.1"
    for option in ("--endpoints", "--credentials"):
        assert (PROJECT_DIR / rasa[rasa.index(option) + 1]).is_file()
    actions = command("indgang-actions.service")
    assert actions[actions.index("--host") + 1] == "127.0.0.1"


def test_every_secret_the_production_check_wants_is_in_the_example_environment_file() -> None:
    names = {line.split("=", 1)[0] for line in (DEPLOY / "indgang.env.example").read_text().splitlines()}
    assert {field.upper() for field in SECRET_FIELDS} <= names


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` on copies pointing at this checkout (it checks the binaries)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of the build machine (Debian's systemd package)"
    env_file = DEPLOY / "indgang.env.example"
    for name in (*UNITS, "indgang.target"):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        text = text.replace("/etc/indgang/indgang.env", str(env_file)).replace(INSTALL_DIR, str(PROJECT_DIR))
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / n) for n in (*UNITS, "indgang.target"))],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # systemd before 254 does not know the back-off keys yet and ignores them (RestartSec stays).
    newer_keys = ("Unknown key 'RestartSteps'", "Unknown key 'RestartMaxDelaySec'")
    lines = result.stderr.splitlines()
    problems = [line for line in lines if line and not any(key in line for key in newer_keys)]
    assert result.returncode == 0 and problems == [], result.stderr


def test_a_token_that_starts_with_a_dash_reaches_rasa_as_the_token() -> None:
    """Rasa's parser read "--auth-token -Thz..." as an option without its value and exited with
    2: one random token in 64 starts with "-", and every stack test of that run failed."""
    argv = rasa_argv("-ThzjMTdH", "5005", PROJECT_DIR / "bot/models/indgang.tar.gz")
    assert "--auth-token=-ThzjMTdH" in argv and "-ThzjMTdH" not in argv
