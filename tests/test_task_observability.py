"""Each task writes one JSON log line carrying the id of the request that enqueued it."""
from __future__ import annotations

import logging

from tests.conftest import PASSWORD


def test_sign_up_task_logs_with_the_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="tasks"):
        response = client.post("/api/v1/users", json={"name": "Traced", "email": "traced@example.com",
                                                      "password": PASSWORD}, headers={"X-Request-ID": "trace-123"})
    assert response.status_code == 201
    lines = [r for r in caplog.records if r.name == "tasks"]
    assert lines, "no task log line"
    fields = lines[0].fields
    assert fields["request_id"] == "trace-123" and fields["state"] == "SUCCESS"
    assert fields["task"].startswith("delta.email.") and fields["duration_ms"] >= 0


def test_task_durations_are_in_metrics(client):
    client.post("/api/v1/users", json={"name": "Timed", "email": "timed@example.com", "password": PASSWORD})
    text = client.get("/metrics").get_data(as_text=True)
    assert "delta_task_duration_seconds_count" in text


def test_jobs_by_state_are_in_metrics(client, make_user, token):
    admin = make_user(role="admin")
    response = client.post("/api/v1/jobs/user-export", json={"format": "csv"},
                           headers={"Authorization": f"Bearer {token(admin)}"})
    assert response.status_code == 202
    text = client.get("/metrics").get_data(as_text=True)
    assert 'delta_jobs{state="succeeded"} 1.0' in text and 'delta_jobs{state="failed"} 0.0' in text
