"""GraphQL jobs: exports, cancelling and progress; mixed into Query and Mutation in schema.py."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from webapp.extensions import db
from webapp.graphql.enums import ExportFormat, JobStatus
from webapp.jobs import services as jobs


@strawberry.type
class Job:
    id: int
    kind: str
    owner_id: int
    status: JobStatus
    progress: int
    params: JSON
    created_at: datetime
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    error: Optional[str]
    result_url: Optional[str] = strawberry.field(description="REST download path, once succeeded.")

    @classmethod
    def from_model(cls, job) -> "Job":
        view = jobs.job_view(job)
        return cls(**{**view, "status": JobStatus(view["status"])})


@strawberry.type
class JobQuery:
    @strawberry.field(description="A job's status and progress (owner or admin); null with a NOT_FOUND "
                                  "error when there is none.")
    def job(self, info: Info, id: int) -> Optional[Job]:
        viewer = info.context.require_viewer()
        return Job.from_model(jobs.get_job(db.session, viewer, id))


@strawberry.type
class JobMutation:
    @strawberry.mutation(description="Export every user as csv or json (admins); returns the queued job.")
    def request_user_export(self, info: Info, format: ExportFormat = ExportFormat.csv) -> Job:
        viewer = info.context.require_viewer()
        return Job.from_model(jobs.request_user_export(db.session, viewer, format.value))

    @strawberry.mutation(description="Export everything stored about the caller as a JSON archive.")
    def request_my_data_export(self, info: Info) -> Job:
        viewer = info.context.require_viewer()
        return Job.from_model(jobs.request_account_export(db.session, viewer))

    @strawberry.mutation(description="Cancel a queued or running job.")
    def cancel_job(self, info: Info, id: int) -> Job:
        viewer = info.context.require_viewer()
        return Job.from_model(jobs.cancel_job(db.session, viewer, jobs.get_job(db.session, viewer, id)))
