"""Client addresses behind trusted proxies (TRUSTED_PROXIES): Werkzeug's ProxyFix, or nothing.

Rate limits key on `request.remote_addr` and logs record it: behind a load balancer that is the
balancer's address unless the hops that set `X-Forwarded-For/Proto/Host` are trusted. With 0
(the default) no forwarded header is believed, so a client cannot pick its own address.
"""
from __future__ import annotations


def init_app(app) -> None:
    hops = app.config.get("TRUSTED_PROXIES")
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
