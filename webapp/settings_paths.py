"""Folders that default to the instance folder when their setting is left empty."""
from __future__ import annotations

from pathlib import Path


def outbox_dir(config) -> Path:
    return Path(config.get("OUTBOX_DIR") or Path(config["INSTANCE_PATH"]) / "outbox")


def job_results_dir(config) -> Path:
    return Path(config.get("JOB_RESULTS_DIR") or Path(config["INSTANCE_PATH"]) / "jobs")
