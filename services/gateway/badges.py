"""The "launch binder" badges BinderHub serves: /badge_logo.svg, /badge.svg and mybinder.org's oldest URL."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

__all__ = ["BADGE_SVG", "BADGE_LOGO_SVG", "add_badge_routes"]


# Badges drawn for binderflow: 20 px high, "launch" on grey and "binder" on blue,
# the first with a small logo, as BinderHub's /badge_logo.svg and /badge.svg are.
_BADGE_FONT = 'font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11"'
_BADGE_LOGO = """<g fill="none" stroke-width="1.6">
<circle cx="10" cy="7" r="3" stroke="#f5a252"/>
<circle cx="10" cy="13" r="3" stroke="#e66581"/>
<path d="M7 7h6M7 13h6" stroke="#fff" stroke-opacity=".7"/>
</g>
"""


def _badge_svg(grey_width: int, blue_width: int, logo_width: int) -> str:
    """A "launch | binder" badge: `logo_width` pixels of the grey half hold the logo (0: none)."""
    width = grey_width + blue_width
    launch_x = logo_width + (grey_width - logo_width) / 2
    binder_x = grey_width + blue_width / 2 - 1
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="launch: binder">
<title>launch: binder</title>
<linearGradient id="shine" x2="0" y2="100%"><stop offset="0" stop-color="#fff" stop-opacity=".15"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="round"><rect width="{width}" height="20" rx="3"/></clipPath>
<g clip-path="url(#round)">
<rect width="{grey_width}" height="20" fill="#555"/>
<rect x="{grey_width}" width="{blue_width}" height="20" fill="#3f7fbf"/>
<rect width="{width}" height="20" fill="url(#shine)"/>
</g>
{_BADGE_LOGO if logo_width else ""}<g fill="#fff" text-anchor="middle" {_BADGE_FONT}>
<text x="{launch_x:g}" y="15" fill="#010101" fill-opacity=".3">launch</text>
<text x="{launch_x:g}" y="14">launch</text>
<text x="{binder_x:g}" y="15" fill="#010101" fill-opacity=".3">binder</text>
<text x="{binder_x:g}" y="14">binder</text>
</g>
</svg>
"""


BADGE_LOGO_SVG = _badge_svg(grey_width=64, blue_width=45, logo_width=17)
BADGE_SVG = _badge_svg(grey_width=45, blue_width=43, logo_width=0)


def _svg(body: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        # Badges are embedded in READMEs everywhere; let caches keep them a day.
        return web.Response(text=body, content_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    return handler


def add_badge_routes(app: web.Application) -> None:
    app.router.add_get("/badge_logo.svg", _svg(BADGE_LOGO_SVG))
    app.router.add_get("/badge.svg", _svg(BADGE_SVG))
    # mybinder.org's oldest badge URL.
    app.router.add_get("/assets/images/badge.svg", _svg(BADGE_SVG))
