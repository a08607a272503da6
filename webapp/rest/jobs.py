"""/api/v1/jobs (and /users/me/export): start heavy jobs, follow their progress, fetch results."""
from __future__ import annotations

from flask import send_file
from flask.views import MethodView

from webapp.extensions import db
from webapp.jobs import services
from webapp.rest.common import Blueprint, authenticated, only_files, operation, viewer
from webapp.rest.schemas.jobs import ExportRequestSchema, ImportFileSchema, JobSchema

PREFIX = ""
blp = Blueprint("jobs", __name__, description="Jobs: user export and import, personal data export.")


ACCEPTED_HEADERS = {"Location": "Location"}  # the job, to poll with getJob
RESULT_CONTENT = {  # what the result file is, by job: a user export (CSV or JSON), an import report, an archive
    "text/csv": {"schema": {"type": "string", "description": "A user export as CSV."}},
    "application/json": {"schema": {"description": "A user export (an array of users), an import report or an "
                                                   "account archive (objects)."}},
}
RESULT_HEADERS = {"Content-Disposition": {"description": "`attachment` with the file's name.",
                                          "schema": {"type": "string"}}}
ADMINS_ONLY = (403, "Admins only.")


def accepted(job):
    """202 with the job and where to watch it."""
    return services.job_view(job), 202, {"Location": f"/api/v1/jobs/{job.id}"}


@blp.route("/jobs/user-export")
class UserExport(MethodView):
    @operation(blp, "requestUserExport", ADMINS_ONLY)
    @authenticated(blp)
    @blp.arguments(ExportRequestSchema, required=False)
    @blp.response(202, JobSchema, headers=ACCEPTED_HEADERS)
    def post(self, data):
        """Export every user as CSV or JSON (admins)

        Answers the queued job and its address in `Location`; once it has succeeded, `getJobResult`
        downloads the file.
        """
        return accepted(services.request_user_export(db.session, viewer(), data["format"]))


@blp.route("/jobs/user-import")
class UserImport(MethodView):
    @operation(blp, "requestUserImport", ADMINS_ONLY)
    @authenticated(blp)
    @blp.arguments(ImportFileSchema, location="files")
    @blp.response(202, JobSchema, headers=ACCEPTED_HEADERS)
    def post(self, files):
        """Import users from a CSV file (admins); the result reports every row

        Multipart field `file`, UTF-8 CSV. Answers the queued job and its address in `Location`;
        its result (`getJobResult`) says for each row whether it was created or why not.
        """
        only_files()
        return accepted(services.request_user_import(db.session, viewer(), files["file"].stream))


@blp.route("/users/me/export")
class AccountExport(MethodView):
    @operation(blp, "requestAccountExport")
    @authenticated(blp)
    @blp.response(202, JobSchema, headers=ACCEPTED_HEADERS)
    def post(self):
        """Export everything stored about the caller as a JSON archive

        Answers the queued job and its address in `Location`; `getJobResult` downloads the archive
        once it has succeeded.
        """
        return accepted(services.request_account_export(db.session, viewer()))


@blp.route("/jobs")
class Jobs(MethodView):
    @operation(blp, "listJobs")
    @authenticated(blp)
    @blp.response(200, JobSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """The caller's jobs, newest first (admins: every job)

        Paged with `page` and `page_size`; `X-Pagination` carries the totals.
        """
        jobs, pagination_parameters.item_count = services.list_jobs(
            db.session, viewer(), offset=pagination_parameters.first_item, limit=pagination_parameters.page_size)
        return [services.job_view(job) for job in jobs]


@blp.route("/jobs/<int:job_id>")
class JobById(MethodView):
    @operation(blp, "getJob")
    @authenticated(blp)
    @blp.response(200, JobSchema)
    def get(self, job_id):
        """A job's status and progress (owner or admin)

        Poll it until `status` is `succeeded`, `failed` or `cancelled`; another user's job is 404.
        """
        return services.job_view(services.get_job(db.session, viewer(), job_id))

    @operation(blp, "cancelJob", (409, "The job has finished already."))
    @authenticated(blp)
    @blp.response(202, JobSchema)
    def delete(self, job_id):
        """Cancel a queued or running job; 409 once it has finished

        Answers the job, now `cancelled`; a running job stops at its next batch.
        """
        me = viewer()
        return services.job_view(services.cancel_job(db.session, me, services.get_job(db.session, me, job_id)))


@blp.route("/jobs/<int:job_id>/result")
class JobResult(MethodView):
    @operation(blp, "getJobResult", (404, "No such job for this caller, or its result file has expired."),
               (409, "The job has not succeeded (yet)."),
               responses={200: {"content": RESULT_CONTENT, "headers": RESULT_HEADERS}})
    @authenticated(blp)
    @blp.response(200, description="The result file: CSV or JSON, as the job made it.")
    def get(self, job_id):
        """Download the result of a succeeded job

        A user export is `text/csv` or `application/json` (its `format`); an import report and an
        account archive are `application/json`. Sent as an attachment, never cached.
        """
        me = viewer()
        path, name, content_type = services.result_file(me, services.get_job(db.session, me, job_id))
        response = send_file(path, mimetype=content_type, as_attachment=True, download_name=name)
        # Personal data (an account export) or every user's: send_file's "no-cache" would still let
        # a browser or proxy keep a copy on disk.
        response.headers["Cache-Control"] = "no-store"
        return response
