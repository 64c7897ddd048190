"""Request bodies, as the API contract defines them (pydantic). The job's states
are in shared.job_status."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.errors import InvalidRequest

OutputKind = Literal["text", "image", "chart"]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    return value


# A prompt: a non-empty string with more than whitespace. Its size limit is a
# deployment setting, checked by ensure_prompt_fits.
Prompt = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]


TEMPLATE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
TemplateId = Annotated[str, Field(pattern=TEMPLATE_ID_PATTERN, description="Lower-case letters, digits, hyphens.")]
# Who owns a template: an API key's id (what API Gateway reports), or on local
# emulators the keyhash the functions derive from the key (shared.identity).
OwnerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The owning API key's id.")]
MAX_VARIABLES = 50
MAX_VARIABLE_CHARS = 20_000  # no variable can be longer than the prompt it goes into
TemplateValue = Annotated[str, Field(max_length=MAX_VARIABLE_CHARS)] | int | float | bool
ChartRecord = dict[str, str | int | float | bool | None]
MAX_CHART_DATA_BYTES = 100_000  # inline data travels in the job item (DynamoDB items are at most 400 KB)


def check_template_id(template_id: str) -> None:
    """A template id in a path: a slug, else a 400 rather than a lookup."""
    if not re.match(TEMPLATE_ID_PATTERN, template_id):
        raise InvalidRequest(
            f"'{template_id[:80]}' is not a template id (lower-case letters, digits and hyphens, at most 64)",
            details={"field": "templateId"},
        )


class TemplateRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: TemplateId
    version: int | None = Field(default=None, ge=1, le=999_999, description="Omitted: the latest version.")
    owner: OwnerId | None = Field(default=None, description="Another key's shared template; omitted: the caller's own.")


class GenerateRequest(BaseModel):
    """POST /generate: a prompt, or a template and its variables. Unknown fields
    are refused so that a typo is not ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    prompt: Prompt | None = Field(default=None, description="What to generate.")
    template: TemplateRef | None = Field(default=None, description="A stored prompt template, instead of prompt.")
    variables: dict[str, TemplateValue] = Field(
        default_factory=dict, max_length=MAX_VARIABLES, description="The template's variables."
    )
    data: list[ChartRecord] | None = Field(default=None, description="kind chart: the records to plot (at most 100 KB).")
    models: list[str] = Field(min_length=1, description="Bedrock model IDs to run the prompt on.")
    kind: OutputKind = Field(default="text", description="Output kind.")
    budget_usd: float | None = Field(default=None, alias="budgetUsd", gt=0, description="Spending cap for this job.")

    @field_validator("models")
    @classmethod
    def models_distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a model")
        return value

    @model_validator(mode="after")
    def one_prompt_source(self) -> GenerateRequest:
        if (self.prompt is None) == (self.template is None):
            raise ValueError("needs exactly one of prompt and template")
        if self.variables and self.template is None:
            raise ValueError("has variables but no template")
        if self.data is not None:
            if self.kind != "chart":
                raise ValueError("has data, which only a chart job takes")
            if len(json.dumps(self.data, separators=(",", ":"))) > MAX_CHART_DATA_BYTES:
                raise ValueError(f"has more than {MAX_CHART_DATA_BYTES} bytes of chart data")
        return self


class CreateTemplateRequest(BaseModel):
    """POST /templates: a new version of a template (the first creates it)."""

    model_config = ConfigDict(extra="forbid")

    template_id: TemplateId = Field(alias="templateId")
    template: str = Field(
        min_length=1,
        max_length=20000,
        description="Text with {{ variables }}, filters and {% if %} blocks (a bounded subset of Jinja2).",
    )
    description: str = Field(default="", max_length=500)
    kind: OutputKind = Field(default="text", description="The output kind the template is written for.")
    shared: bool | None = Field(
        default=None, description="Let the deployment's other keys read and use it; omitted: unchanged (new: private)."
    )


class ShareTemplateRequest(BaseModel):
    """PATCH /templates/{templateId}: share a template or stop sharing it."""

    model_config = ConfigDict(extra="forbid")

    shared: bool = Field(description="true: every key of the deployment may read and use it; false: only its owner.")


class EnhanceRequest(BaseModel):
    """POST /enhance."""

    model_config = ConfigDict(extra="forbid")

    prompt: Prompt = Field(description="The prompt to improve.")
    kind: OutputKind = Field(default="text", description="What the prompt will be used to generate.")


def ensure_prompt_fits(prompt: str, max_chars: int) -> None:
    """The deployment's prompt size limit (MAX_PROMPT_CHARS), as a clear 400."""
    if len(prompt) > max_chars:
        raise InvalidRequest(
            f"prompt is {len(prompt)} characters long; the limit is {max_chars}",
            details={"field": "prompt", "maxChars": max_chars},
        )
