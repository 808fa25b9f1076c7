"""``dermassist report``: one case in, one report out (JSON or Markdown) on stdout or to a file."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from assistant.app.options import ModelFlags, model_options, run_cli

RED_FLAGS = "Red-flag questions (not given = not asked)"


class OutputFormat(StrEnum):
    json = "json"
    markdown = "markdown"


@model_options()
def report(
    images: Annotated[list[Path], typer.Argument(help="1-4 images of the same problem (JPEG, PNG, WebP)")],
    flags: ModelFlags,
    age: Annotated[int | None, typer.Option(help="age in years")] = None,
    sex: Annotated[str | None, typer.Option(help="female | male | other | unknown")] = None,
    fitzpatrick: Annotated[str | None, typer.Option(help="Fitzpatrick skin type I-VI (or 1-6)")] = None,
    monk: Annotated[str | None, typer.Option(help="Monk skin tone 1-10")] = None,
    site: Annotated[str | None, typer.Option(help="body site, e.g. 'left forearm'")] = None,
    duration: Annotated[str | None, typer.Option(help="e.g. '3 weeks'")] = None,
    symptoms: Annotated[str | None, typer.Option(help="comma list of itch,pain,bleeding,growth,change")] = None,
    history: Annotated[str | None, typer.Option(help="relevant history")] = None,
    medications: Annotated[str | None, typer.Option(help="comma-separated medications")] = None,
    question: Annotated[str | None, typer.Option(help="free-text question")] = None,
    fever: Annotated[bool | None, typer.Option("--fever/--no-fever", rich_help_panel=RED_FLAGS,
                                               help="fever or feeling feverish")] = None,
    mucosal: Annotated[bool | None, typer.Option("--mucosal/--no-mucosal", rich_help_panel=RED_FLAGS,
                                                 help="sores or blisters of mouth, eyes, lips or genitals")] = None,
    immunosuppressed: Annotated[bool | None, typer.Option(
        "--immunosuppressed/--no-immunosuppressed", rich_help_panel=RED_FLAGS,
        help="transplant, immunosuppressive drugs, chemotherapy, HIV")] = None,
    non_blanching: Annotated[bool | None, typer.Option(
        "--non-blanching/--no-non-blanching", rich_help_panel=RED_FLAGS,
        help="spots that do not fade when pressed (glass test)")] = None,
    rapid_spread: Annotated[bool | None, typer.Option("--rapid-spread/--no-rapid-spread", rich_help_panel=RED_FLAGS,
                                                      help="spreading over hours to a day")] = None,
    new_medication: Annotated[bool | None, typer.Option(
        "--new-medication/--no-new-medication", rich_help_panel=RED_FLAGS,
        help="a new medicine started in the last 8 weeks")] = None,
    pregnant: Annotated[bool | None, typer.Option("--pregnant/--not-pregnant", rich_help_panel=RED_FLAGS,
                                                  help="currently pregnant")] = None,
    unwell: Annotated[bool | None, typer.Option("--unwell/--not-unwell", rich_help_panel=RED_FLAGS,
                                                help="systemically unwell: drowsy, confused, breathless")] = None,
    modality: Annotated[str, typer.Option(help="clinical | dermoscopy | histopathology")] = "clinical",
    output_format: Annotated[OutputFormat, typer.Option("--format", help="json | markdown")] = OutputFormat.json,
    output: Annotated[Path | None, typer.Option(help="write the report here instead of stdout")] = None,
) -> None:
    """Write a structured, grounded report for one case."""

    def body() -> None:
        from pydantic import ValidationError

        from assistant.app.build import build_pipeline
        from assistant.core.case import Case, ClinicalContext, Symptoms
        from assistant.core.errors import CaseError, first_error
        from assistant.core.intake import load_images
        from assistant.core.quality import assess_images
        from assistant.pipeline.render import report_markdown

        try:
            context = ClinicalContext(
                age=age, sex=sex or "unknown", fitzpatrick=fitzpatrick, monk=monk, body_site=site, duration=duration,
                symptoms=Symptoms.from_names((symptoms or "").split(",")), history=history,
                medications=medications, question=question, fever=fever, mucosal_involvement=mucosal,
                immunosuppressed=immunosuppressed, non_blanching_rash=non_blanching, rapid_spread=rapid_spread,
                new_medication_last_8_weeks=new_medication, pregnant=pregnant, systemically_unwell=unwell)
            case = Case(images=list(images), modality=modality, context=context)
        except ValidationError as exc:
            raise CaseError(f"invalid case: {first_error(exc, root='case')}") from None
        except ValueError as exc:
            raise CaseError(f"invalid case: {exc}") from None
        # Images are checked before anything heavy loads: a bad file is a one-line error in well under a second,
        # and quality advice (blur, exposure, …) is on stderr before the model starts; the report records it too.
        case = case.model_copy(update={"images": load_images(case.images)})
        for finding in assess_images(case.images, case.modality):
            typer.echo(f"warning: {finding.message}", err=True)
        config = flags.load()
        pipeline = build_pipeline(config)
        try:
            result = pipeline.run(case, adapter=config.active_adapter())
        finally:
            pipeline.close()
        text = result.model_dump_json(indent=2) if output_format == OutputFormat.json else report_markdown(result)
        text = text if text.endswith("\n") else text + "\n"
        if output:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"dermassist: report written to {output}", err=True)
        else:
            sys.stdout.write(text)

    run_cli(body)
