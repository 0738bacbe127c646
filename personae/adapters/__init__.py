"""Adapters connect the runtime to the world: each one turns platform events into
:class:`~personae.core.types.Turn` values and reply streams into platform messages.

- :mod:`personae.adapters.web`: the aiohttp HTTP service (REST + SSE, an
  OpenAI-compatible endpoint, health and metrics).
"""
