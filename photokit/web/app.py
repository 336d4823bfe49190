"""The gallery's ASGI app: security middleware, error pages, templates, routes, the job runner."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from photokit.db import Database, open_database
from photokit.errors import PhotokitError
from photokit.settings import Settings
from photokit.web import security
from photokit.web.hints import error_text
from photokit.web.jobs import JobRunner
from photokit.web.media import MediaCache

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class Gallery:
    """What every route needs (``request.app.state.gallery``)."""

    settings: Settings
    db: Database
    token: str
    csrf: str
    library_id: str
    media: MediaCache
    runner: JobRunner
    templates: Jinja2Templates

    def render(self, request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        context.setdefault("message", request.query_params.get("msg"))
        context.setdefault("error", request.query_params.get("err"))
        return self.templates.TemplateResponse(
            request, name, {"csrf": self.csrf, "nav": name.split(".")[0], **context}, status_code=status_code
        )


def gallery(request: Request) -> Gallery:
    return request.app.state.gallery


def back_to(path: str, **params) -> RedirectResponse:
    """303 to a page of ours (never an absolute or protocol-relative URL) with a message."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        path = "/people"
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(path + (("&" if "?" in path else "?") + query if query else ""), status_code=303)


def create_app(
    settings: Settings,
    token: str | None = None,
    hosts: frozenset[str] = security.LOOPBACK_HOSTS,
    run_jobs: bool = True,
    handlers: dict | None = None,
) -> FastAPI:
    """The app for the library of ``settings``. ``hosts``: names the Host header may carry."""
    from photokit.web import actions, media_routes, pages, tasks

    token = token or security.new_token()
    db = open_database(settings)
    db.check_writable()  # the gallery fixes who is who and runs jobs: a read-only library is refused up front
    library_id = db.library_id()
    runner = JobRunner(db, handlers if handlers is not None else tasks.handlers(db, settings))
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    state = Gallery(
        settings=settings,
        db=db,
        token=token,
        csrf=security.csrf_token(token),
        library_id=library_id,
        media=MediaCache(settings.home / "cache" / library_id),
        runner=runner,
        templates=templates,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if run_jobs:
            runner.start()
        try:
            yield
        finally:
            runner.stop()
            db.dispose()

    app = FastAPI(title="photokit", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gallery = state
    app.state.hosts = hosts
    _install_security(app, state)
    _install_error_pages(app, state)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (pages, actions, media_routes):
        app.include_router(module.router)
    return app


def _install_security(app: FastAPI, state: Gallery) -> None:
    @app.middleware("http")
    async def require_token(request: Request, call_next) -> Response:
        if not security.host_allowed(request.headers.get("host"), app.state.hosts):
            return PlainTextResponse("unknown Host header", status_code=400, headers=SECURITY_HEADERS)
        given = request.query_params.get("token")
        if given is not None:
            if not security.same_secret(given, state.token):
                return _denied(state, request, 403, "this access token is not valid for this server")
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            response = RedirectResponse(request.url.path + ("?" + urlencode(rest) if rest else ""), status_code=303)
            response.set_cookie(security.COOKIE, state.token, httponly=True, samesite="strict", path="/")
            return response
        if not security.same_secret(request.cookies.get(security.COOKIE), state.token):
            return _denied(state, request, 401, "open the address `photokit serve` printed (it includes the token)")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin and origin != "null" and not security.host_allowed(origin.split("://", 1)[-1], app.state.hosts):
                return _denied(state, request, 403, "cross-site request refused")
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response


def _denied(state: Gallery, request: Request, status: int, detail: str) -> Response:
    """The refusal says how to get in and nothing about the library."""
    return state.templates.TemplateResponse(
        request, "denied.html", {"detail": detail, "status": status}, status_code=status, headers=SECURITY_HEADERS
    )


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def error_response(request: Request, status: int, detail: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": detail}, status_code=status)
    return gallery(request).render(request, "error.html", status_code=status, status=status, detail=detail)


def _install_error_pages(app: FastAPI, state: Gallery) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "there is no such page"
        return error_response(request, exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', [])[1:]) or 'input'}: {err.get('msg', 'invalid')}"
            for err in exc.errors()[:3]
        )
        return error_response(request, 400, f"bad input ({problems})")

    @app.exception_handler(PhotokitError)
    async def library_error(request: Request, exc: PhotokitError) -> Response:
        text = str(exc)
        return error_response(request, 404 if text.startswith("unknown ") else 400, error_text(exc))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("error serving %s", request.url.path)
        return error_response(request, 500, "something went wrong on the server; details are in its log")
