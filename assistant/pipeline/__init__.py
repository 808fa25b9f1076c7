"""The report pipeline floor: the pipeline itself, citation grounding, the deterministic safety layer and the
Markdown rendering of a report. It stands on the kernel, the backends and the retrieval protocol."""
