"""The README is the user's manual: every setting it must document, and the two commands."""

from __future__ import annotations

from indgang.settings import PROJECT_DIR, Settings

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert missing == [], f"add these to README.md's configuration table: {missing}"


def test_the_readme_leads_with_the_two_commands() -> None:
    head = README[:1500]
    assert "make run" in head and "make test" in head


def test_ci_runs_the_readme_test_command_and_nothing_else() -> None:
    lines = [
        line.strip()
        for line in (PROJECT_DIR / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[-1] == "make test"
