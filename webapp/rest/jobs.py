"""/api/v1/jobs (and /users/me/export): start heavy jobs, follow their progress, fetch results."""
from __future__ import annotations

from flask import send_file
from flask.views import MethodView

from webapp.extensions import db
from webapp.jobs import services
from webapp.rest.common import Blueprint, authenticated, only_files, viewer
from webapp.rest.schemas.jobs import ExportRequestSchema, ImportFileSchema, JobSchema

PREFIX = ""
blp = Blueprint("jobs", __name__, description="Jobs: user export and import, personal data export.")


def accepted(job):
    """202 with the job and where to watch it."""
    return services.job_view(job), 202, {"Location": f"/api/v1/jobs/{job.id}"}


@blp.route("/jobs/user-export")
class UserExport(MethodView):
    @authenticated(blp)
    @blp.arguments(ExportRequestSchema, required=False)
    @blp.response(202, JobSchema)
    def post(self, data):
        """Export every user as CSV or JSON (admins)"""
        return accepted(services.request_user_export(db.session, viewer(), data["format"]))


@blp.route("/jobs/user-import")
class UserImport(MethodView):
    @authenticated(blp)
    @blp.arguments(ImportFileSchema, location="files")
    @blp.response(202, JobSchema)
    def post(self, files):
        """Import users from a CSV file (admins); the result reports every row"""
        only_files()
        return accepted(services.request_user_import(db.session, viewer(), files["file"].stream))


@blp.route("/users/me/export")
class AccountExport(MethodView):
    @authenticated(blp)
    @blp.response(202, JobSchema)
    def post(self):
        """Export everything stored about the caller as a JSON archive"""
        return accepted(services.request_account_export(db.session, viewer()))


@blp.route("/jobs")
class Jobs(MethodView):
    @authenticated(blp)
    @blp.response(200, JobSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """The caller's jobs, newest first (admins: every job)"""
        jobs, pagination_parameters.item_count = services.list_jobs(
            db.session, viewer(), offset=pagination_parameters.first_item, limit=pagination_parameters.page_size)
        return [services.job_view(job) for job in jobs]


@blp.route("/jobs/<int:job_id>")
class JobById(MethodView):
    @authenticated(blp)
    @blp.response(200, JobSchema)
    def get(self, job_id):
        """A job's status and progress (owner or admin)"""
        return services.job_view(services.get_job(db.session, viewer(), job_id))

    @authenticated(blp)
    @blp.response(202, JobSchema)
    def delete(self, job_id):
        """Cancel a queued or running job; 409 once it has finished"""
        me = viewer()
        return services.job_view(services.cancel_job(db.session, me, services.get_job(db.session, me, job_id)))


@blp.route("/jobs/<int:job_id>/result")
class JobResult(MethodView):
    @authenticated(blp)
    @blp.response(200, description="The result file (CSV or JSON).")
    @blp.alt_response(409, description="The job has not succeeded.")
    def get(self, job_id):
        """Download the result of a succeeded job"""
        me = viewer()
        path, name, content_type = services.result_file(me, services.get_job(db.session, me, job_id))
        response = send_file(path, mimetype=content_type, as_attachment=True, download_name=name)
        # Personal data (an account export) or every user's: send_file's "no-cache" would still let
        # a browser or proxy keep a copy on disk.
        response.headers["Cache-Control"] = "no-store"
        return response
