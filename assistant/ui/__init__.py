"""The clinician's chat UI (``dermassist ui``, Gradio): photos, context, a grounded report, follow-up questions.

A surface (docs/design.md): it builds on the pipeline and the composition root like every other, and imports no
other surface. ``cli`` is the command, ``app`` the Gradio page, ``engine`` where reports come from (in-process or a
``dermassist serve``), ``form`` the context form generated from ``ClinicalContext``, ``views`` the report HTML,
``export`` JSON/Markdown/PDF, ``session`` one tab's case, ``examples`` the one-click example cases.
"""
