"""The catalog's FastAPI application: routes, token guard and error mapping.

create_app() builds an app over any folder, so tests and tools can serve temporary
folders side by side. Errors keep FastAPI's shape, {"detail": ...}: 404 for anything
unknown (including every path that tries to leave the shard folder, which is
indistinguishable from a name that does not exist), 422 for malformed parameters,
401 for a missing or wrong token, 500 for a listed file that is there but cannot be
read (an I/O error, a directory in a shard's place, a damaged batch), logged at ERROR on
the "ncaforge.catalog" logger so the operator sees it. Every endpoint declares its answer
(service.schemas, or a binary media type), so /openapi.json names every response schema.
"""

import logging

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from generator import __version__
from service import routes_catalog, routes_data
from service.auth import token_checker
from service.catalog import Catalog, FileUnreadable, NotFound
from service.schemas import ErrorDetail, Health

log = logging.getLogger("ncaforge.catalog")

DESCRIPTION = """\
Query, inspect and stream ncaforge datasets (random neural cellular automata token
sequences in Arrow IPC shards) and prepared token corpora (train.bin, validation.bin),
told apart by `kind`. Only finished ones (manifest written) are listed; the shard folder
is rescanned on every request and never written. Shard and corpus file bytes carry
their sha256 as a strong ETag and support single Range requests.
"""


def create_app(shards_dir: str, token: str | None = None) -> FastAPI:
    """The catalog over `shards_dir`; with a token, every /v1 endpoint requires it as a bearer token."""
    app = FastAPI(title="ncaforge shard catalog", version=__version__, description=DESCRIPTION)
    app.state.catalog = Catalog(shards_dir)
    guard = [Depends(token_checker(token))] if token else []
    unauthorised = {401: {"model": ErrorDetail, "description": "Missing or wrong bearer token."}} if token else {}
    app.include_router(routes_catalog.router, dependencies=guard, responses=unauthorised)
    app.include_router(routes_data.router, dependencies=guard, responses=unauthorised)

    @app.get("/healthz", tags=["health"])
    def healthz() -> Health:
        """Liveness: answers without a token and without touching the shard folder."""
        return Health(status="ok")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> JSONResponse:
        return JSONResponse(ErrorDetail(detail=str(error)).model_dump(), status_code=404)

    @app.exception_handler(FileUnreadable)
    async def unreadable(request: Request, error: FileUnreadable) -> JSONResponse:
        log.error("%s %s answered 500: %s", request.method, request.url.path, error)
        return JSONResponse(ErrorDetail(detail=str(error)).model_dump(), status_code=500)

    return app
