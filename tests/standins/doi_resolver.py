"""A stand-in for the DOI resolver https://doi.org, on 127.0.0.1.

The internet is unreachable here, so this server answers GET /<doi> the way
doi.org does: 302 Found with a Location header pointing at the DOI's landing
page (and a small "Handle Redirect" HTML body), or 404 Not Found with an HTML
"DOI Not Found" page for a DOI that is not registered. DOIs match without
regard to case, as DOIs do. Tests register DOIs in `registry` (doi -> URL).
"""

from __future__ import annotations

import urllib.parse

from aiohttp import web

from .dataserver import StandIn

__all__ = ["DoiResolverStandIn"]


class DoiResolverStandIn(StandIn):
    def __init__(self) -> None:
        self.registry: dict[str, str] = {}
        super().__init__()

    def register(self, doi: str, url: str) -> None:
        self.registry[doi.lower()] = url

    def _app(self) -> web.Application:
        async def resolve(request: web.Request) -> web.Response:
            doi = urllib.parse.unquote(request.match_info["doi"])
            target = self.registry.get(doi.lower())
            if target is None:
                return web.Response(
                    status=404,
                    content_type="text/html",
                    text=f"<html><head><title>Error: DOI Not Found</title></head><body><h1>DOI Not Found</h1><p>{doi}</p>"
                    "<p>This DOI cannot be found in the DOI System.</p></body></html>",
                )
            return web.Response(
                status=302,
                headers={"Location": target, "Expires": "Mon, 01 Jan 2001 00:00:00 GMT"},
                content_type="text/html",
                text=f'<html><head><title>Handle Redirect</title></head><body><a href="{target}">{target}</a></body></html>',
            )

        app = web.Application()
        app.router.add_get("/{doi:10\\..+}", resolve)
        return app
