"""The portal's pages and forms, server-rendered in Chinese for people, over the same core
as the API (mounted by :func:`gateway.portal.add_portal`).

Every core flow works without JavaScript: plain forms, redirects after posts. A session is
the same signed token the API takes, kept in an HttpOnly, SameSite cookie for its
lifetime; every form carries a CSRF token that must match a second cookie (double
submit). Responses carry a strict Content-Security-Policy, refuse framing, and pages with
subject data are not cached. URLs carry report numbers and codes, never a subject's
identifier.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from credit import labels, policy
from credit.cases import CaseKind, CaseState, Correction, Resolution
from credit.clock import beijing_text
from credit.document import cutoff_working_days, issuer_name, profile_name
from credit.errors import CreditError, InvalidInput, PermissionDenied, TooManyAttempts, Unauthenticated
from credit.policy import Principal
from credit.profiles import get_profile, profiles
from credit.regions import Region
from gateway.access.auth import Sessions, change_password, full_name_of, login, logout
from gateway.access.grants import GrantService, GrantTerms, Redeemed
from gateway.access.history import History, HistoryView
from gateway.api.cases import attachment_response, case_body
from gateway.api.downloads import csv_response, xlsx_response
from gateway.batch.jobs import BatchService, parse_subject_list
from gateway.batch.summary_pdf import render_summary
from gateway.batch.tables import HEADER as TABLE_HEADER
from gateway.batch.tables import signed_summary, table_lines
from gateway.objections.service import ObjectionService, find_record
from gateway.registry import Registry
from gateway.reports.service import IssuedReport, ReportService, Verification, summary_of
from gateway.reports.slip import SlipTerms, grant_slip
from gateway.reports.verify import verify_address
from gateway.settings import GatewaySettings, Operator

SESSION_COOKIE = "jjj_session"
CSRF_COOKIE = "jjj_csrf"
STATIC = Path(__file__).with_name("static")

# The one script a page may run: the report page's print button (onclick="print()"). CSP
# allows that handler by its hash alone ('unsafe-hashes' applies to listed hashes only):
# no other inline code, no script file, runs.
PRINT_HANDLER = "print()"
_PRINT_HASH = base64.b64encode(hashlib.sha256(PRINT_HANDLER.encode()).digest()).decode("ascii")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        f"script-src 'unsafe-hashes' 'sha256-{_PRINT_HASH}'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The site sees which of its own pages a visitor came from (an error page's way back); no one else does.
    "Referrer-Policy": "same-origin",
}

_ENV = Environment(loader=PackageLoader("gateway.portal", "templates"), autoescape=select_autoescape(["html"]))
_ENV.filters["beijing"] = beijing_text  # every time on a page: Beijing time, Chinese date format
# A batch job as an officer reads it: its number (the id's random part, in capitals), not its id.
_ENV.filters["job_number"] = lambda job_id: str(job_id).removeprefix("b_").upper()


def _validity(doc: dict[str, Any]) -> dict[str, Any]:
    """Until when a report stands in for a certificate, and whether that day has passed."""
    return summary_of(doc, status="", now=datetime.now(UTC))


_ENV.globals["report_validity"] = _validity
_ENV.globals.update(
    registration_fields=labels.REGISTRATION_FIELDS,
    registration_source=labels.registration_source,
    registration_source_label=labels.REGISTRATION_SOURCE,
    registration_note_label=labels.REGISTRATION_NOTE,
    registration_heading=labels.REGISTRATION_HEADING,
    subject_name_text=labels.subject_name_text,
    identifier_names=labels.IDENTIFIER_NAME,
    not_stated=labels.NOT_STATED,
)
_ENV.globals["profile_name"] = profile_name
_ENV.globals["chinese_only"] = labels.chinese_only  # a reason in Chinese, without its English aside
_ENV.globals["issuer_name"] = issuer_name
_ENV.globals["cutoff_explained"] = lambda doc: labels.cutoff_explained(cutoff_working_days(doc))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass
class Portal:
    service: ReportService
    sessions: Sessions
    registry: Registry
    grants: GrantService
    public_url: str
    batches: BatchService | None = None
    objections: ObjectionService | None = None
    # Named in every page's footer (gateway.settings: the operator block).
    operator: Operator = dataclasses.field(default_factory=lambda: GatewaySettings().operator())

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def verify_url(self, code: str) -> str:
        return verify_address(self.public_url, code)


PORTAL: web.AppKey[Portal] = web.AppKey("portal", Portal)
NEW_CSRF: web.RequestKey[str] = web.RequestKey("new_csrf", str)


def _who(request: web.Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return request.app[PORTAL].sessions.verify(token)
    except Unauthenticated:
        return None


# CSRF tokens are signed and bound to the session they were made for ("nonce.mac", the
# MAC over the nonce and a digest of the session cookie): a cookie planted from elsewhere,
# or one made for another session, does not pass, and logging in gets a fresh one.
def _csrf_key(request: web.Request) -> bytes:
    private = request.app[PORTAL].sessions.signing_key.private.private_bytes_raw()
    return hashlib.sha256(b"jjj-portal-csrf\x00" + private).digest()


def _binding(session_token: str) -> str:
    return hashlib.sha256(session_token.encode()).hexdigest() if session_token else "-"


def _mac(request: web.Request, nonce: str, binding: str) -> str:
    return hmac.new(_csrf_key(request), f"{nonce}|{binding}".encode(), hashlib.sha256).hexdigest()[:32]


def mint_csrf(request: web.Request, session_token: str) -> str:
    """A new CSRF token for the session ``session_token`` ("" before logging in)."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_mac(request, nonce, _binding(session_token))}"


def _csrf_valid(request: web.Request, token: str, session_token: str) -> bool:
    nonce, _, mac = token.partition(".")
    if not nonce or not mac:
        return False
    return hmac.compare_digest(mac.encode(), _mac(request, nonce, _binding(session_token)).encode())


def _csrf(request: web.Request) -> str:
    if request.get(NEW_CSRF):
        return request[NEW_CSRF]
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return cookie if _csrf_valid(request, cookie, request.cookies.get(SESSION_COOKIE, "")) else ""


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    token = _csrf(request)
    if not token:
        token = mint_csrf(request, request.cookies.get(SESSION_COOKIE, ""))
        request[NEW_CSRF] = token
    who = _who(request)
    html = _ENV.get_template(template).render(
        who=who,
        menu=policy.menu(who) if who else None,
        csrf=token,
        verdict_words=labels.VERDICT,
        verdict_explained=labels.VERDICT_EXPLAINED,
        status_words=labels.REPORT_STATUS,
        region_words=labels.REGION_STATUS,
        state_words=labels.GRANT_STATE,
        role_words=labels.ACTOR_ROLE,
        action_words=labels.ACTION,
        operator=request.app[PORTAL].operator,
        **context,
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    if request.get(NEW_CSRF):
        _set_cookie(request, response, CSRF_COOKIE, request[NEW_CSRF], max_age=None, strict=True)
    return response


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, *, max_age: int | None, strict: bool
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=request.app[PORTAL].secure_cookies,
        samesite="Strict" if strict else "Lax",
    )


def notice(request: web.Request, heading: str, *paragraphs: str, status: int = 200, back: str = "") -> web.Response:
    return page(request, "notice.html", status=status, title=heading, heading=heading, paragraphs=paragraphs, back=back)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


class Redirect(Exception):
    """Leave a page for another (a session that expired, a page that needs one)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.response = _redirect(location)


async def _form(request: web.Request, *, max_size: int = 0) -> dict[str, Any]:
    """The posted form, once its CSRF token is checked; ``max_size`` allows a larger
    body (an upload) than the application's default.

    Raises:
        PermissionDenied: a missing or wrong CSRF token.
    """
    if max_size:
        request = request.clone(client_max_size=max_size)
    form = dict(await request.post())
    sent, expected = str(form.get("csrf", "")), request.cookies.get(CSRF_COOKIE, "")
    valid = bool(expected) and _csrf_valid(request, expected, request.cookies.get(SESSION_COOKIE, ""))
    if not valid or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied("表单已失效，请刷新页面后重试 (the form expired or did not come from this site)")
    return form


def _uploaded(form: dict[str, Any], name: str) -> tuple[str, bytes]:
    """The file posted as ``name``: its name and bytes (empty when none was sent), its
    temporary file closed. Its size is bounded by the form's ``max_size``."""
    upload = form.get(name)
    if not isinstance(upload, web.FileField):
        return "", b""
    with upload.file:
        return upload.filename, upload.file.read()


def _signed_in(request: web.Request) -> Principal:
    who = _who(request)
    if who is None:
        raise Redirect("/?expired=1" if request.cookies.get(SESSION_COOKIE) else "/")
    return who


def way_back(request: web.Request) -> str:
    """Where an error page's 返回 leads: the page of this site the visitor came from
    (a form's page), else the home page. Only a path of this site, never another origin."""
    referer = request.headers.get("Referer", "")
    parsed = urlsplit(referer)
    if parsed.netloc and parsed.netloc != request.host:
        return "/"
    path = parsed.path or "/"
    if not path.startswith("/") or path.startswith("//") or path.startswith("/api/"):
        return "/"
    return path + (f"?{parsed.query}" if parsed.query else "")


async def not_found_page(request: web.Request) -> web.StreamResponse:
    """A page for an address the site does not have (the API's own paths answer in JSON)."""
    return notice(
        request, "页面不存在", "您访问的页面不存在，请检查地址，或从首页进入。", status=404, back=way_back(request)
    )


def portal_page(handler: Handler) -> Handler:
    """Render the core's errors as pages (the API renders them as problem+json)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Redirect as exc:
            response = exc.response
        except CreditError as exc:
            titles = {400: "输入有误", 401: "请先登录", 403: "无权访问", 404: "未找到", 429: "尝试过于频繁"}
            response = notice(
                request,
                titles.get(exc.http_status, "暂时无法完成"),
                labels.chinese_only(exc.detail),
                status=exc.http_status,
                back=way_back(request),
            )
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return wrapped


# Forms that come back: a post the core refuses as invalid shows its form again, filled
# in as it was sent (passwords and files excepted) with the reason beside each field.

# The words for a field whose core error has no Chinese of its own.
FIELD_HINTS = {
    "grantee": "被授权方账号格式不正确：请填写账号名，或“账号@站点”，不超过 64 个字符",
    "mode": "请选择授权内容",
    "years": "请选择 3 年或 5 年",
    "profile": "请选择报告版本",
}
FORM_AGAIN = "请按提示修改后重新提交。"


def form_errors(exc: CreditError, fields: Collection[str], *, about: str = "") -> dict[str, str]:
    """The Chinese words beside each field of a form that ``exc`` names; what concerns no
    field of the form goes beside the field ``about``, or by default (``""``) above the form."""
    errors: dict[str, str] = {}
    for violation in exc.violations if isinstance(exc, InvalidInput) else ():
        hint = FIELD_HINTS.get(violation.field, "请检查后重新填写")
        key = violation.field if violation.field in fields else about
        errors.setdefault(key, labels.chinese_only(violation.description, hint))
    if not errors:
        errors[about] = labels.chinese_only(exc.detail)
    return errors


def form_page(
    request: web.Request,
    template: str,
    exc: CreditError,
    fields: Collection[str],
    values: dict[str, Any],
    *,
    about: str = "",
    **context: Any,
) -> web.Response:
    """``template``'s form again after ``exc``: ``values`` as sent, the reasons beside the fields."""
    errors = form_errors(exc, fields, about=about)
    return page(request, template, status=exc.http_status, values=values, errors=errors,
                message=errors.get("", FORM_AGAIN), message_kind="error", **context)  # fmt: skip


def _sent(form: dict[str, Any], *names: str) -> dict[str, str]:
    """The text fields ``names`` of a posted form, as sent (files and passwords never)."""
    return {name: str(form.get(name, ""))[:4000] for name in names if not isinstance(form.get(name), web.FileField)}


# Pages


async def home(request: web.Request) -> web.StreamResponse:
    if _who(request) is not None:
        return _redirect("/report")
    message = "会话已过期，请重新登录" if request.query.get("expired") else ""
    return page(request, "login.html", title="登录", message=message)


async def post_login(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    portal = request.app[PORTAL]
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    address = request.remote or "unknown"
    try:
        token, lifetime = await login(
            portal.registry, portal.sessions, username, password, address=address, audit=portal.service.audit
        )
    except (Unauthenticated, TooManyAttempts) as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 401
        return page(request, "login.html", status=status, title="登录", message=labels.chinese_only(exc.detail),
                    message_kind="error", username=username)  # fmt: skip
    response = _redirect("/report")
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=lifetime, strict=False)
    # A fresh CSRF token for the new session: one fixed before logging in does not carry over.
    _set_cookie(request, response, CSRF_COOKIE, mint_csrf(request, token), max_age=None, strict=True)
    return response


async def post_logout(request: web.Request) -> web.StreamResponse:
    await _form(request)
    portal = request.app[PORTAL]
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        with contextlib.suppress(Unauthenticated):  # already ended or expired: nothing to end
            await logout(portal.registry, portal.sessions, token, audit=portal.service.audit)
    response = _redirect("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def ask(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    if policy.needs_grant(who):
        return _redirect("/g")  # a third party sees a report through the code a subject gave it
    if policy.checks_in_batches(who):
        return _redirect("/agency")
    return page(request, "ask.html", **await _ask_context(request, who))


async def _ask_context(request: web.Request, who: Principal) -> dict[str, Any]:
    number = _page_number(request)
    recent, more = await request.app[PORTAL].service.mine(who, page=number, per_page=RECENT_PER_PAGE)
    return {
        "title": "获取报告",
        "profiles": list(profiles().values()),
        "default_profile": request.app[PORTAL].service.default_profile,
        "recent": recent,
        "page_number": number,
        "more": more,
    }


RECENT_PER_PAGE = 20


def _page_number(request: web.Request) -> int:
    """The ``page`` of a listing (1 when absent or not a number from 1 to 10000)."""
    raw = request.query.get("page", "1")
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= 10_000 else 1


async def post_ask(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    form = await _form(request)
    try:
        try:
            years = int(str(form.get("years", "3")))
        except ValueError:
            raise InvalidInput.for_field("years", "请选择 3 年或 5 年 (choose 3 or 5 years)") from None
        issued = await request.app[PORTAL].service.issue(
            who,
            subject_id=str(form.get("subject", "")),
            years=years,
            profile_id=str(form.get("profile", "")),
        )
    except InvalidInput as exc:
        values = _sent(form, "subject", "years", "profile")
        return form_page(request, "ask.html", exc, ("subject", "years", "profile"), values,
                         **await _ask_context(request, who))  # fmt: skip
    return _redirect(f"/reports/{issued.document['report_no']}")


async def _report_of(request: web.Request) -> IssuedReport:
    return await request.app[PORTAL].service.get(_signed_in(request), request.match_info["report_no"])


async def report_page(request: web.Request) -> web.StreamResponse:
    issued = await _report_of(request)
    # Objections are the subject's: a bank that was given the report does not file them.
    own = policy.own_subject(_signed_in(request)) == issued.document["subject"]["id"]
    return page(request, "report.html", title="信用报告", doc=issued.document, report_status=issued.status,
                objection_links=own, own_name=await _own_name(request, issued.document))  # fmt: skip


async def _own_name(request: web.Request, document: dict[str, Any]) -> str:
    """The full name a person sees on a report about themselves and prints in their own
    PDF (policy.sees_own_full_name), when it is the name the records publish masked
    (policy.full_name_fits); "" for everyone else, who see the name as published."""
    who = _signed_in(request)
    if not policy.sees_own_full_name(who, str(document["subject"]["id"])):
        return ""
    portal = request.app[PORTAL]
    name = await full_name_of(portal.registry, portal.sessions, who)
    return name if policy.full_name_fits(name, str(document["subject"].get("name") or "")) else ""


def _attachment(issued: IssuedReport, suffix: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{issued.document["report_no"]}.{suffix}"'}


async def _pdf(request: web.Request, issued: IssuedReport, *, holder_name: str = "") -> web.Response:
    portal = request.app[PORTAL]
    # Rendering and signing take a fraction of a second of CPU: off the event loop.
    data = await asyncio.to_thread(
        portal.service.printed,
        issued,
        verify_url=portal.verify_url(issued.document["verification_code"]),
        holder_name=holder_name,
    )
    return web.Response(body=data, content_type="application/pdf", headers=_attachment(issued, "pdf"))


def _jws(issued: IssuedReport) -> web.Response:
    return web.Response(text=issued.jws, content_type="application/jose", headers=_attachment(issued, "jws"))


def _json_download(issued: IssuedReport) -> web.Response:
    return web.Response(
        text=json.dumps({"jws": issued.jws, "report": issued.document}, ensure_ascii=False, indent=2),
        content_type="application/json",
        headers=_attachment(issued, "json"),
    )


async def report_pdf(request: web.Request) -> web.StreamResponse:
    # A person's own copy prints their full name, as their page shows it; a redeemer's
    # (redemption_pdf) never does.
    issued = await _report_of(request)
    return await _pdf(request, issued, holder_name=await _own_name(request, issued.document))


async def report_jws(request: web.Request) -> web.StreamResponse:
    return _jws(await _report_of(request))


async def report_json(request: web.Request) -> web.StreamResponse:
    return _json_download(await _report_of(request))


async def grants_page(request: web.Request) -> web.StreamResponse:
    return page(request, "grants.html", **await _grants_context(request, _signed_in(request)))


async def _grants_context(request: web.Request, who: Principal) -> dict[str, Any]:
    grants = request.app[PORTAL].grants
    mine = await grants.mine(who)
    names = await grants.organisation_names({g.grantee_org for g in mine if g.grantee_org})
    revoked = next((g for g in mine if g.grant_id == request.query.get("revoked") and g.revoked_at), None)
    context: dict[str, Any] = {"title": "授权查询", "grants": [g.public() for g in mine], "org_names": names,
                               "revoked": revoked.grant_id if revoked else ""}  # fmt: skip
    if revoked is not None:
        to = f"{names.get(revoked.grantee_org, '')}（{revoked.grantee_org}）" if revoked.grantee_org else ""
        context["message"] = (
            f"已撤销用途为“{revoked.purpose}”的授权{('（被授权方：' + to + '）') if to else ''}。"
            "该授权码此后不能再用于查看报告。"
        )
    return context


GRANT_FIELDS = ("purpose", "grantee_org", "days", "max_uses", "mode", "years")


def _int(form: dict[str, Any], name: str, default: int) -> int:
    raw = str(form.get(name) or default)
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput.for_field(name, f"请填写整数 ({name} must be a whole number)") from None


async def post_grant_preview(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    form = await _form(request)
    try:
        terms = GrantTerms.parse(
            {
                "purpose": form.get("purpose"),
                "grantee_org": str(form.get("grantee_org") or "").strip() or None,
                "days": _int(form, "days", 7),
                "max_uses": _int(form, "max_uses", 1),
                "mode": form.get("mode") or "fixed",
                "years": _int(form, "years", 3),
            }
        )
        preview = await request.app[PORTAL].grants.preview(who, terms)
    except InvalidInput as exc:
        return form_page(request, "grants.html", exc, GRANT_FIELDS, _sent(form, *GRANT_FIELDS),
                         **await _grants_context(request, who))  # fmt: skip
    scopes = [scope.name_zh for scope in get_profile(preview.terms.profile).scopes]
    return page(request, "preview.html", title="授权预览", doc=preview.draft, terms=preview.terms,
                organisation=preview.organisation, scope_names=scopes, preview=preview.token)  # fmt: skip


async def post_grant_confirm(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    form = await _form(request)
    created = await request.app[PORTAL].grants.create(
        who, preview=str(form.get("preview", "")), confirm=form.get("confirm") == "yes"
    )
    grant, organisation = created.grant, created.organisation
    if organisation is not None:
        grantee = f"{organisation.name}（统一社会信用代码 {organisation.code}）"
    else:
        grantee = f"账号 {grant.grantee}" if grant.grantee else "任何持有授权码的人"
    name = created.report.document["subject"].get("name", "") if created.report else ""
    subject = f"{name}（{grant.subject_id}）" if name else grant.subject_id
    slip = await asyncio.to_thread(
        grant_slip,
        created.code,
        created.url,
        SlipTerms(subject, grantee, grant.purpose, grant.expires_at, grant.max_uses),
    )
    return page(
        request,
        "granted.html",
        title="授权已创建",
        code=created.code,
        url=created.url,
        qr=base64.b64encode(created.qr_png).decode("ascii"),
        slip=base64.b64encode(slip).decode("ascii"),
        grant=grant.public(),
        organisation=organisation,
        grantee=grantee,
        subject=subject,
        changed=created.changed,
    )


async def post_grant_revoke(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    await _form(request)
    grant = await request.app[PORTAL].grants.revoke(who, request.match_info["grant_id"])
    return _redirect(f"/grants?revoked={grant.grant_id}#mine")


async def redeem_page(request: web.Request) -> web.StreamResponse:
    who = _who(request)
    redeemed = []
    if who is not None:
        for redemption, grant in await request.app[PORTAL].grants.redeemed_by(who):
            redeemed.append(
                {
                    "redemption_id": redemption.redemption_id,
                    "report_no": redemption.report_no,
                    "redeemed_at": redemption.redeemed_at,
                    "purpose": grant.purpose,
                    "expires_at": grant.expires_at,
                }
            )
    return page(request, "redeem.html", title="凭授权码查看", code=request.match_info.get("code", ""),
                redeemed=redeemed)  # fmt: skip


# An anonymous redeemer's browser keeps a secret that reopens what it redeemed (a signed-in
# one is known by its account): for the longest a grant lasts, and sent to /g/ only.
HOLDER_COOKIE = "jjj_holder"
HOLDER_LIFETIME = 30 * 24 * 3600


async def post_redeem(request: web.Request) -> web.StreamResponse:
    """Redeem a code (one use), then leave for the redemption's own page, which reloads
    without using the grant again."""
    form = await _form(request)
    who = _who(request)
    holder = "" if who else request.cookies.get(HOLDER_COOKIE, "") or secrets.token_urlsafe(24)
    try:
        redeemed = await request.app[PORTAL].grants.redeem(
            str(form.get("code", "")), who, address=request.remote or "", holder=holder
        )
    except CreditError as exc:
        # Whatever is wrong with a code (unknown, used up, expired, for another account),
        # it is said beside the code, which stays as typed.
        return form_page(request, "redeem.html", exc, ("code",), _sent(form, "code"), about="code",
                         title="凭授权码查看", code=str(form.get("code", "")))  # fmt: skip
    response = _redirect(f"/g/r/{redeemed.redemption_id}")
    if holder:
        response.set_cookie(HOLDER_COOKIE, holder, max_age=HOLDER_LIFETIME, path="/g/", httponly=True,
                            secure=request.app[PORTAL].secure_cookies, samesite="Lax")  # fmt: skip
    return response


async def _redemption(request: web.Request) -> Redeemed:
    return await request.app[PORTAL].grants.redemption(
        request.match_info["redemption_id"], _who(request), holder=request.cookies.get(HOLDER_COOKIE, "")
    )


async def redemption_page(request: web.Request) -> web.StreamResponse:
    redeemed = await _redemption(request)
    grant = redeemed.grant
    return page(request, "redeemed.html", title="授权查看", doc=redeemed.report.document,
                report_status=redeemed.report.status, grant=grant.public(),
                uses_left=grant.max_uses - grant.uses, redemption_id=redeemed.redemption_id)  # fmt: skip


async def redemption_pdf(request: web.Request) -> web.StreamResponse:
    return await _pdf(request, (await _redemption(request)).report)


async def redemption_jws(request: web.Request) -> web.StreamResponse:
    return _jws((await _redemption(request)).report)


async def redemption_json(request: web.Request) -> web.StreamResponse:
    return _json_download((await _redemption(request)).report)


HISTORY_PER_PAGE = 20


async def history_page(request: web.Request) -> web.StreamResponse:
    """查询记录: others' access to the subject (the default: what people come to check) or
    the account's own actions, a page at a time."""
    portal = request.app[PORTAL]
    view = HistoryView.OWN if request.query.get("view") == HistoryView.OWN else HistoryView.OTHERS
    number = _page_number(request)
    entries, more = await History(portal.service.audit, portal.registry).page(
        _signed_in(request), view, page=number, per_page=HISTORY_PER_PAGE
    )
    rows = [
        {
            "at": e.at,
            "actor": e.actor,
            "role": e.role,
            "action": e.action,
            "purpose": e.purpose,
            "outcome": e.outcome,
        }
        for e in entries
    ]
    return page(request, "history.html", title="查询记录", entries=rows, view=view.value, page_number=number,
                more=more)  # fmt: skip


def _verification_words(result: Verification) -> tuple[str, str]:
    if not result.genuine:
        if result.status == "unknown":
            return "未找到该报告", "没有与此核验码或文件对应的已登记报告。请核对核验码，或联系出具方。"
        return "非真实报告", "该文件不是本系统出具的真实报告，或已被改动。请勿采信。"
    if result.status == "superseded":
        return "报告真实，但已更新", "该报告由本系统出具，但其数据此后发生变化，请向对方索取新报告。"
    if result.status == "revoked":
        return "报告真实，但已撤销", "该报告由本系统出具，但已被撤销，不应再采信。"
    return "报告真实有效", "该报告由本系统出具，内容未被改动，当前有效。"


def _verified_page(request: web.Request, result: Verification, code: str = "") -> web.Response:
    title, text = _verification_words(result)
    return page(request, "verify.html", title="报告核验", result=result, result_title=title, result_text=text,
                code=code)  # fmt: skip


async def verify_page(request: web.Request) -> web.StreamResponse:
    code = request.query.get("code", "").strip()
    if not code:
        return page(request, "verify.html", title="报告核验")
    try:
        result = await request.app[PORTAL].service.verify_code(code, address=request.remote or "unknown")
    except InvalidInput as exc:  # a mistyped code: said beside it, the code kept to mend
        return form_page(request, "verify.html", exc, ("code",), {"code": code[:100]}, about="code", title="报告核验",
                         code=code[:100])  # fmt: skip
    return _verified_page(request, result, code)


async def post_verify(request: web.Request) -> web.StreamResponse:
    form = await _form(request, max_size=17 * 1024 * 1024)
    _name, data = _uploaded(form, "file")
    if not data or len(data) > 16 * 1024 * 1024:
        refused = InvalidInput.for_field(
            "file", "请上传不超过 16 MB 的报告文件 (upload a report file of at most 16 MB)"
        )
        return form_page(request, "verify.html", refused, ("file",), {}, title="报告核验")
    portal = request.app[PORTAL]
    # The QR code must lead to this site's verify page, not to a look-alike.
    result = await portal.service.verify_upload(
        data, verify_url_for=lambda doc: portal.verify_url(str(doc.get("verification_code", "")))
    )
    return _verified_page(request, result)


def _objections(request: web.Request) -> ObjectionService:
    objections = request.app[PORTAL].objections
    if objections is None:
        raise PermissionDenied("本站未开通异议办理 (objections are not handled here)")
    return objections


async def objection_page(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    context = await _objection_context(request, who, request.query.get("report", ""), request.query.get("record", ""))
    return page(request, "objection_new.html", **context)


async def _objection_context(request: web.Request, who: Principal, report_no: str, record_id: str) -> dict[str, Any]:
    issued = await request.app[PORTAL].service.get(who, report_no)
    region, record = find_record(issued.document, record_id)
    return {"title": "异议与信用修复申请", "rec": record, "report_no": report_no, "region_name": region.name_zh}


async def post_objection(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    form = await _form(request, max_size=6 * 1024 * 1024)
    name, data = _uploaded(form, "attachment")
    attachment = (name, data) if data else None
    kind = str(form.get("kind", "objection"))
    report_no, record_id = str(form.get("report_no", "")), str(form.get("record_id", ""))
    try:
        if kind not in ("objection", "credit_repair"):
            raise InvalidInput.for_field("kind", "请选择异议或信用修复 (kind is objection or credit_repair)")
        case = await _objections(request).file(
            who,
            report_no=report_no,
            record_id=record_id,
            kind=CaseKind(kind),
            reason=str(form.get("reason", "")),
            attachment=attachment,
        )
    except InvalidInput as exc:
        context = await _objection_context(request, who, report_no, record_id)
        values = {**_sent(form, "kind", "reason"), "had_file": bool(data)}
        return form_page(request, "objection_new.html", exc, ("kind", "reason", "attachment"), values, **context)
    return _redirect(f"/objections?filed={case.number}")


async def objections_page(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    service = _objections(request)
    filed = request.query.get("filed", "")
    message = f"申请已提交，办件编号 {filed[:20]}。处理结果将在此页显示。" if filed else ""
    if policy.decides_cases(who):
        own = policy.case_regions(who)
        region = Region.parse(request.query.get("region", "") or own[0].value, field="region")
        state = "closed" if request.query.get("state") == "closed" else "open"
        cases = await service.list(who, region, state=CaseState(state))
        return page(request, "objections.html", title="异议办理", authority=True, regions=own,
                    region=region, state=state, cases=[case_body(c) for c in cases], message=message)  # fmt: skip
    cases, missing = await service.mine(who)
    return page(request, "objections.html", title="我的异议与修复申请", authority=False, unavailable=missing,
                cases=[case_body(c) for c in cases], message=message)  # fmt: skip


async def post_objection_resolve(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    form = await _form(request)
    number = request.match_info["number"]
    resolution = str(form.get("resolution", ""))
    if resolution not in {r.value for r in Resolution}:
        raise InvalidInput.for_field("resolution", "请选择处理结论 (choose a decision)")
    content = str(form.get("content", "")).strip()
    case = await _objections(request).resolve(
        who,
        number,
        Resolution(resolution),
        note=str(form.get("note", "")),
        correction=Correction(content=content) if content else None,
    )
    return _redirect(f"/objections?region={case.region.value}&state=closed")


async def objection_attachment(request: web.Request) -> web.StreamResponse:
    who = _signed_in(request)
    return attachment_response(await _objections(request).get(who, request.match_info["number"], with_attachment=True))


PASSWORD_FIELDS = ("current_password", "new_password", "new_password_again")


async def password_page(request: web.Request) -> web.StreamResponse:
    _signed_in(request)
    return page(request, "password.html", title="修改密码", done=bool(request.query.get("done")))


async def post_password(request: web.Request) -> web.StreamResponse:
    """Change the password: every other session of the account ends, this browser gets a new one."""
    who = _signed_in(request)
    form = await _form(request)
    portal = request.app[PORTAL]
    current, new, again = (str(form.get(name, "")) for name in PASSWORD_FIELDS)
    try:
        if new != again:
            raise InvalidInput.for_field("new_password_again", "两次输入的新密码不一致 (the new passwords differ)")
        token, lifetime = await change_password(
            portal.registry, portal.sessions, who, current, new, audit=portal.service.audit
        )
    except (InvalidInput, TooManyAttempts) as exc:
        # Passwords are never sent back into a page: the fields come back empty.
        return form_page(request, "password.html", exc, PASSWORD_FIELDS, {}, title="修改密码")
    response = _redirect("/account/password?done=1")
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=lifetime, strict=False)
    _set_cookie(request, response, CSRF_COOKIE, mint_csrf(request, token), max_age=None, strict=True)
    return response


def _officer(request: web.Request) -> Principal:
    who = _signed_in(request)
    policy.require_batch(who)
    return who


def _batches(request: web.Request) -> BatchService:
    batches = request.app[PORTAL].batches
    if batches is None:
        raise PermissionDenied("本站未开通批量核查 (batch checks are not enabled here)")
    return batches


JOBS_PER_PAGE = 20


async def agency_page(request: web.Request) -> web.StreamResponse:
    return page(request, "agency.html", **await _agency_context(request, _officer(request)))


async def _agency_context(request: web.Request, who: Principal) -> dict[str, Any]:
    number = _page_number(request)
    jobs, more = await _batches(request).mine(who, page=number, per_page=JOBS_PER_PAGE)
    return {"title": "批量核查", "jobs": jobs, "page_number": number, "more": more}


async def post_agency(request: web.Request) -> web.StreamResponse:
    who = _officer(request)
    form = await _form(request, max_size=49 * 1024 * 1024)
    _name, data = _uploaded(form, "file")
    try:
        if len(data) > 48 * 1024 * 1024:
            raise InvalidInput.for_field("file", "名单过大 (the list is too large)")
        listed = parse_subject_list(data)
        status = await _batches(request).submit(
            who,
            listed.entries,
            names=listed.names,
            purpose=str(form.get("purpose", "")),
            years=_int(form, "years", 3),
        )
    except InvalidInput as exc:
        return form_page(request, "agency.html", exc, ("purpose", "file", "years"), _sent(form, "purpose", "years"),
                         about="file", **await _agency_context(request, who))  # fmt: skip
    return _redirect(f"/agency/jobs/{status.job_id}")


ROWS_PER_PAGE = 50


async def batch_page(request: web.Request) -> web.StreamResponse:
    who = _officer(request)
    batches = _batches(request)
    status = await batches.status(who, request.match_info["job_id"])
    summary = (await signed_summary(batches, status)).document if status.status == "done" else None
    names = {region.value: region.name_zh for region in Region}
    number = _page_number(request)
    lines: list[list[int | str]] = []
    if summary is not None:
        start = (number - 1) * ROWS_PER_PAGE
        lines = await asyncio.to_thread(
            lambda: list(itertools.islice(table_lines(batches.rows(status.job_id, start=start)), ROWS_PER_PAGE))
        )
    return page(request, "batch.html", title="批量核查", job=status.public(), summary=summary, region_names=names,
                header=TABLE_HEADER, lines=lines, page_number=number,
                more=number * ROWS_PER_PAGE < status.total)  # fmt: skip


async def batch_csv(request: web.Request) -> web.StreamResponse:
    batches = _batches(request)
    status = await batches.status(_officer(request), request.match_info["job_id"])
    # Streamed: the headers leave before the page wrapper could add them.
    return await csv_response(request, batches, status, headers=SECURITY_HEADERS)


async def batch_xlsx(request: web.Request) -> web.StreamResponse:
    batches = _batches(request)
    return await xlsx_response(batches, await batches.status(_officer(request), request.match_info["job_id"]))


async def batch_summary(request: web.Request) -> web.StreamResponse:
    batches = _batches(request)
    summary = await signed_summary(batches, await batches.status(_officer(request), request.match_info["job_id"]))
    return web.Response(
        text=json.dumps({"summary": summary.document, "jws": summary.jws}, ensure_ascii=False, indent=2),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{summary.document["job_id"]}-summary.json"'},
    )


async def batch_summary_pdf(request: web.Request) -> web.StreamResponse:
    batches = _batches(request)
    summary = await signed_summary(batches, await batches.status(_officer(request), request.match_info["job_id"]))
    data = await asyncio.to_thread(render_summary, summary.document, summary.jws)
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{summary.document["job_id"]}-summary.pdf"'},
    )


async def static_css(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(STATIC / "portal.css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
