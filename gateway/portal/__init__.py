"""The portal: server-rendered pages in Chinese for people, over the same core as the API.

The pages and forms are in :mod:`gateway.portal.pages`, the templates in ``templates/``;
this module mounts them.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.http import NOT_FOUND_PAGE
from gateway.portal.pages import (
    PORTAL,
    Handler,
    Portal,
    agency_page,
    ask,
    batch_csv,
    batch_page,
    batch_summary,
    batch_summary_pdf,
    batch_xlsx,
    grants_page,
    history_page,
    home,
    not_found_page,
    objection_attachment,
    objection_page,
    objections_page,
    password_page,
    portal_page,
    post_agency,
    post_ask,
    post_grant_confirm,
    post_grant_preview,
    post_grant_revoke,
    post_login,
    post_logout,
    post_objection,
    post_objection_resolve,
    post_password,
    post_redeem,
    post_verify,
    redeem_page,
    redemption_json,
    redemption_jws,
    redemption_page,
    redemption_pdf,
    report_json,
    report_jws,
    report_page,
    report_pdf,
    static_css,
    verify_page,
)

__all__ = ["PORTAL", "Portal", "add_portal"]


def add_portal(app: web.Application, portal: Portal) -> None:
    """Mount the portal's pages on ``app``."""
    app[PORTAL] = portal
    app[NOT_FOUND_PAGE] = portal_page(not_found_page)
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/", home),
        ("POST", "/login", post_login),
        ("POST", "/logout", post_logout),
        ("GET", "/report", ask),
        ("POST", "/report", post_ask),
        ("GET", "/reports/{report_no}", report_page),
        ("GET", "/reports/{report_no}/report.pdf", report_pdf),
        ("GET", "/reports/{report_no}/report.jws", report_jws),
        ("GET", "/reports/{report_no}/report.json", report_json),
        ("GET", "/grants", grants_page),
        ("POST", "/grants/preview", post_grant_preview),
        ("POST", "/grants/confirm", post_grant_confirm),
        ("POST", "/grants/{grant_id}/revoke", post_grant_revoke),
        ("GET", "/g", redeem_page),
        ("GET", "/g/{code}", redeem_page),
        ("POST", "/g", post_redeem),
        ("GET", "/g/r/{redemption_id}", redemption_page),
        ("GET", "/g/r/{redemption_id}/report.pdf", redemption_pdf),
        ("GET", "/g/r/{redemption_id}/report.jws", redemption_jws),
        ("GET", "/g/r/{redemption_id}/report.json", redemption_json),
        ("GET", "/history", history_page),
        ("GET", "/account/password", password_page),
        ("POST", "/account/password", post_password),
        ("GET", "/verify", verify_page),
        ("POST", "/verify", post_verify),
        ("GET", "/objections/new", objection_page),
        ("POST", "/objections", post_objection),
        ("GET", "/objections", objections_page),
        ("POST", "/objections/{number}/resolve", post_objection_resolve),
        ("GET", "/objections/{number}/attachment", objection_attachment),
        ("GET", "/agency", agency_page),
        ("POST", "/agency", post_agency),
        ("GET", "/agency/jobs/{job_id}", batch_page),
        ("GET", "/agency/jobs/{job_id}/table.csv", batch_csv),
        ("GET", "/agency/jobs/{job_id}/table.xlsx", batch_xlsx),
        ("GET", "/agency/jobs/{job_id}/summary.json", batch_summary),
        ("GET", "/agency/jobs/{job_id}/summary.pdf", batch_summary_pdf),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, portal_page(handler))
    app.router.add_get("/static/portal.css", portal_page(static_css))
