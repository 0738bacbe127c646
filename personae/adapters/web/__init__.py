"""The HTTP service: REST + Server-Sent Events, an OpenAI-compatible endpoint,
health checks and Prometheus metrics, built by :func:`init_app`.

Embed it in your own aiohttp application::

    from personae.adapters.web import init_app
    from personae.core.settings import load_settings

    app = init_app(load_settings())      # owns a Runtime of its own
    parent.add_subapp("/personae", app)  # or run it: web.run_app(app)

See docs/http.md for every endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personae.adapters.web.settings import WebSettings

if TYPE_CHECKING:
    from personae.adapters.web.app import init_app

__all__ = ["WebSettings", "init_app"]


def __getattr__(name: str) -> Any:
    # init_app is imported lazily: personae.core.settings imports WebSettings from
    # this package, and the app imports the runtime, which imports the settings.
    if name == "init_app":
        from personae.adapters.web.app import init_app

        return init_app
    raise AttributeError(name)
