"""The composition root: one ``AppConfig`` from YAML + environment + flags, the shared command-line options, and
the one place that turns configuration into a pipeline. Every surface (cli, serve, ui, batch, eval, finetune) builds
through it."""
