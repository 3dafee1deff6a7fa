"""Rasa's own dialogue tests (bot/tests/) against the trained model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from indgang.devstack import BOT_DIR, PROJECT_DIR, RASA_BIN, RASA_ENV, ensure_model


def test_test_stories_are_predicted_without_errors(tmp_path: Path) -> None:
    model = ensure_model()
    result = subprocess.run(
        [str(RASA_BIN), "test", "core", "--model", str(model), "--stories", str(BOT_DIR / "tests"),
         "--out", str(tmp_path),
         "--fail-on-prediction-errors", "--no-plot"],
        cwd=PROJECT_DIR, env={**os.environ, **RASA_ENV}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    failed = tmp_path / "failed_test_stories.yml"
    detail = failed.read_text() if failed.exists() else result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, detail
