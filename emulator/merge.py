"""One aiohttp application serving the routes of several emulators (their paths must not overlap:
WeCom's are under /cgi-bin and /connect, DingTalk's under /v1.0, /topapi, /gettoken and /robot)."""

from __future__ import annotations

from aiohttp import web


def merged_app(*apps: web.Application) -> web.Application:
    root = web.Application()
    for app in apps:
        for route in app.router.routes():
            info = route.resource.canonical if route.resource is not None else ""
            root.router.add_route(route.method, info, route.handler)
    return root
