"""dermassist's OpenAI-compatible HTTP endpoint (``dermassist serve``).

Layers, as in vLLM's OpenAI entrypoint: ``routes`` (thin FastAPI routers) → ``protocol`` (pydantic request and
response models) → ``service`` (the logic: models, adapters, intake, streaming) → the report pipeline. Around
them: ``security`` (API key, body-size cap), ``images`` (data URLs and the SSRF-safe fetcher), ``client_schema``
(a client's ``response_format`` schema: vetted, never fetched from, bounded), ``limits``
(concurrency limit: 429/503 instead of falling over), ``metrics`` (Prometheus) and ``logging`` (no PHI in logs).
``app.create_app`` assembles them. Nothing is imported here, so ``dermassist --help`` stays fast.
See docs/serving.md.
"""
