"""The dashboard's routes: a Starlette app the manager mounts at ``/dashboard``.

Pages are server-rendered (Jinja2, autoescaped).  Each page's changing part sits in
``<main id="live">``; ``static/dashboard.js`` fetches the page again with the
``X-Dashboard-Fragment`` header and swaps that part in, so pages stay current without
reloading and without a JavaScript build.  Every page answer says in
``X-Dashboard-Refresh`` when to fetch it next: every 2 s, or less often for a page that
costs more to build (:data:`REFRESH_COST_FACTOR`).  See :mod:`.guard` for who may see and
do what.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sealagent.errors import AuthError, ManagerError
from sealagent.manager.dashboard import charts, pages
from sealagent.manager.dashboard.guard import Guard, Viewer, cookie_header
from sealagent.manager.fsm import SectorState
from sealagent.manager.service import ManagerService
from sealagent.units import size_str
from sealagent.web.asgi import Message, Receive, Scope, Send
from sealagent.web.auth import TokenVerifier

PREFIX: Final = "/dashboard"
"""Where the manager serves the dashboard."""
FRAGMENT_HEADER: Final = "x-dashboard-fragment"
REFRESH_MS: Final = 2000
"""The shortest time between two fetches of an open page's live part."""
REFRESH_COST_FACTOR: Final = 20
"""A page whose render takes ``t`` is fetched again after ``max(REFRESH_MS, 20 t)``, so
each open page costs the manager at most 1/20 of a core however big the cluster is."""
MAX_FORM: Final = 8192
_HEADERS: Final = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY", "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin", "cache-control": "no-store",
}
_HERE = Path(str(resources.files(__package__)))

Handler = Callable[[Request, Viewer], Awaitable[Response]]


def _duration(seconds: float | None) -> str:
    """``3h2m``, ``4m10s``, ``12.3s`` (``-`` for none)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if hours < 48 else f"{hours // 24}d{hours % 24}h"


def _clock(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(duration=_duration, clock=_clock, size=size_str)
    return env


class Dashboard:
    """The dashboard of one manager service (an ASGI app)."""

    def __init__(self, service: ManagerService, verify: TokenVerifier, *,
                 csrf_key: bytes | None = None) -> None:
        self.service = service
        self.guard = Guard(verify, csrf_key)
        # Tasks finished before now are read from the database for the charts, once.
        self._history_from = service.clock()
        self._history_loaded = False
        self.env = _environment()
        self.app = Starlette(routes=[
            Route("/", self._page(self.cluster)),
            Route("/login", self.login_form),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/sectors", self._page(self.sectors)),
            Route("/sectors/{number:int}", self._page(self.sector)),
            Route("/jobs", self._page(self.jobs)),
            Route("/storage", self._page(self.storage)),
            Route("/scheduler", self._page(self.scheduler)),
            Route("/abort", self.abort, methods=["POST"]),
            Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        ])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      *((k.encode(), v.encode()) for k, v in _HEADERS.items())]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    # ------------------------------------------------------------------- rendering

    def _render(self, request: Request, name: str, status: int = 200,
                **context: Any) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        template = self.env.get_template(name)
        context.update(root=root, path=request.url.path.removeprefix(root) or "/",
                       refresh_ms=REFRESH_MS, now=self.service.clock(),
                       miner=f"f0{self.service.miner}")
        if request.headers.get(FRAGMENT_HEADER) and "live" in template.blocks:
            body = "".join(template.blocks["live"](template.new_context(context)))
        else:
            body = template.render(context)
        return HTMLResponse(body, status)

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def page(request: Request) -> Response:
            try:
                viewer = await self.guard.viewer(request)
            except AuthError as exc:
                if request.headers.get(FRAGMENT_HEADER):
                    return Response(str(exc), 401)
                return RedirectResponse(request.scope.get("root_path", "") + "/login", 303)
            started = time.perf_counter()
            response = await handler(request, viewer)
            cost_ms = (time.perf_counter() - started) * 1000
            refresh = max(REFRESH_MS, int(REFRESH_COST_FACTOR * cost_ms))
            response.headers["x-dashboard-refresh"] = str(refresh)
            return response
        return page

    def _error(self, request: Request, status: int, message: str,
               viewer: Viewer | None = None) -> HTMLResponse:
        return self._render(request, "error.html", status, viewer=viewer, message=message)

    # ----------------------------------------------------------------- login

    async def login_form(self, request: Request) -> Response:
        """The login page."""
        return self._render(request, "login.html", viewer=None, error=None)

    async def login(self, request: Request) -> Response:
        """Check the token, set the cookie, go to the cluster page."""
        form = await _form(request)
        try:
            Guard.check_origin(request)
            await self.guard.login(form.get("token", ""))
        except AuthError as exc:
            return self._render(request, "login.html", 401, viewer=None, error=str(exc))
        response = RedirectResponse(request.scope.get("root_path", "") + "/", 303)
        response.headers.append("set-cookie",
                                cookie_header(request, form.get("token", "").strip()))
        return response

    async def logout(self, request: Request) -> Response:
        """Forget the cookie."""
        form = await _form(request)
        try:
            viewer = await self.guard.viewer(request)
            self.guard.check_csrf(request, viewer, form.get("csrf", ""))
        except AuthError as exc:
            return self._error(request, 403, str(exc))
        response = RedirectResponse(request.scope.get("root_path", "") + "/login", 303)
        response.headers.append("set-cookie", cookie_header(request, "", max_age=0))
        return response

    # ----------------------------------------------------------------- pages

    async def cluster(self, request: Request, viewer: Viewer) -> Response:
        """Workers, sectors by state, the queue and the charts."""
        if not self._history_loaded:
            self._history_loaded = True
            await pages.load_history(self.service, self._history_from)
        data = pages.cluster(self.service, _int(request, "page"))
        return self._render(request, "cluster.html", viewer=viewer, **data,
                            throughput=charts.throughput_chart(data["history"]),
                            phase_times=charts.phase_time_chart(data["history"]))

    async def sectors(self, request: Request, viewer: Viewer) -> Response:
        """The sector table, filtered by state, a page at a time."""
        state = request.query_params.get("state") or None
        if state is not None and state not in SectorState.__members__.values():
            return self._error(request, 400, f"no such sector state: {state}", viewer)
        table = await pages.sector_table(self.service, state, _int(request, "page"))
        return self._render(request, "sectors.html", viewer=viewer, table=table,
                            states=[str(s) for s in SectorState])

    async def sector(self, request: Request, viewer: Viewer) -> Response:
        """One sector: status, tasks, files, log."""
        number = request.path_params["number"]
        try:
            data = await pages.sector_detail(self.service, number)
        except ManagerError as exc:
            return self._error(request, 404, str(exc), viewer)
        return self._render(request, "sector.html", viewer=viewer, sector=data)

    async def jobs(self, request: Request, viewer: Viewer) -> Response:
        """``sealing jobs``, with abort for admins."""
        return self._render(request, "jobs.html", viewer=viewer,
                            jobs=pages.jobs(self.service), done=_done(request))

    async def storage(self, request: Request, viewer: Viewer) -> Response:
        """Storage paths by host."""
        return self._render(request, "storage.html", viewer=viewer,
                            hosts=pages.storage(self.service))

    async def scheduler(self, request: Request, viewer: Viewer) -> Response:
        """The queue and why each task waits, with abort for admins."""
        return self._render(request, "scheduler.html", viewer=viewer,
                            sched=pages.scheduler(self.service, _int(request, "page")),
                            done=_done(request))

    # ---------------------------------------------------------------- actions

    async def abort(self, request: Request) -> Response:
        """Abort a job (``sched=1``: a queued task); admin only, CSRF-checked."""
        form = await _form(request)
        try:
            viewer = await self.guard.viewer(request)
        except AuthError as exc:
            return self._error(request, 401, str(exc))
        try:
            self.guard.check_csrf(request, viewer, form.get("csrf", ""))
        except AuthError as exc:
            return self._error(request, 403, str(exc), viewer)
        if not viewer.is_admin:
            return self._error(request, 403, "aborting a task needs an admin token; "
                               "this one may only read", viewer)
        task_id, sched = form.get("task_id", ""), form.get("sched") == "1"
        if not task_id:
            return self._error(request, 400, "no task id given", viewer)
        try:
            done = await self.service.abort(task_id, sched=sched)
        except ManagerError as exc:
            return self._error(request, 409, str(exc), viewer)
        back = "/scheduler" if sched else "/jobs"
        return RedirectResponse(f"{request.scope.get('root_path', '')}{back}"
                                f"?aborted={done['task_id']}", 303)


def _int(request: Request, name: str) -> int:
    value = request.query_params.get(name, "1")
    return int(value) if value.isdigit() else 1


def _done(request: Request) -> str | None:
    return request.query_params.get("aborted")


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (at most :data:`MAX_FORM` bytes)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}
