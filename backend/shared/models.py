"""Request bodies, as the API contract defines them (pydantic). The job's states
are in shared.job_status.

Every model defers building its validator (`defer_build`) to its first use:
a function builds only the models of the routes it serves, not all of them
(about 12 ms of each cold start). A handler builds the models of its main
route at init with `build()`, where a cold start would pay it anyway."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

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


def build(*models: type[BaseModel]) -> None:
    """Build these models' validators now (a handler's init), not at first use."""
    for model in models:
        model.model_rebuild()


def check_template_id(template_id: str) -> None:
    """A template id in a path: a slug, else a 400 rather than a lookup."""
    if not re.match(TEMPLATE_ID_PATTERN, template_id):
        raise InvalidRequest(
            f"'{template_id[:80]}' is not a template id (lower-case letters, digits and hyphens, at most 64)",
            details={"field": "templateId"},
        )


class TemplateRef(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    id: TemplateId
    version: int | None = Field(default=None, ge=1, le=999_999, description="Omitted: the latest version.")
    owner: OwnerId | None = Field(default=None, description="Another key's shared template; omitted: the caller's own.")


class GenerationParameters(BaseModel):
    """Generation parameters. Their types are checked here; what each model
    takes, and its ranges, is the model registry's (shared.parameters), so a
    parameter a model lacks is refused naming the model."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    # text (and chart)
    system: str | None = Field(default=None, max_length=20_000, description="text, chart: the system prompt.")
    temperature: float | None = Field(default=None, description="text, chart: sampling temperature.")
    top_p: float | None = Field(default=None, alias="topP", description="text, chart: nucleus sampling.")
    max_tokens: int | None = Field(default=None, alias="maxTokens", description="text, chart: the most output tokens.")
    stop_sequences: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, alias="stopSequences", max_length=16, description="text, chart: where the model stops."
    )
    # image (and a chart's size)
    width: int | None = Field(default=None, description="image, chart: width in pixels.")
    height: int | None = Field(default=None, description="image, chart: height in pixels.")
    aspect_ratio: str | None = Field(
        default=None, alias="aspectRatio", pattern=r"^\d{1,2}:\d{1,2}$", description="image: for models sized by ratio."
    )
    count: int | None = Field(default=None, description="image: the number of images.")
    seed: int | None = Field(default=None, description="image: the seed (drawn and reported when omitted).")
    negative_prompt: str | None = Field(
        default=None, alias="negativePrompt", max_length=10_000, description="image: what not to draw."
    )
    cfg_scale: float | None = Field(
        default=None,
        validation_alias=AliasChoices("cfgScale", "guidance"),
        serialization_alias="cfgScale",
        description="image: how closely to follow the prompt (guidance; 'guidance' is accepted as its name).",
    )
    steps: int | None = Field(default=None, description="image: diffusion steps, for the models that take them.")
    quality: str | None = Field(default=None, max_length=32, description="image: standard or premium.")
    style: str | None = Field(default=None, max_length=64, description="image: a style preset of the model.")

    def given(self) -> dict[str, Any]:
        """The parameters set, by their API names."""
        return self.model_dump(by_alias=True, exclude_none=True)


MAX_TURNS = 50


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: Prompt


class GenerateRequest(BaseModel):
    """POST /generate: a prompt, or a template and its variables. Unknown fields
    are refused so that a typo is not ignored."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    prompt: Prompt | None = Field(default=None, description="What to generate.")
    template: TemplateRef | None = Field(default=None, description="A stored prompt template, instead of prompt.")
    messages: list[Message] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TURNS,
        description="kind text: a conversation, instead of prompt: a system turn first if any, then user and "
        "assistant turns in turn, the last a user's.",
    )
    parameters: GenerationParameters | None = Field(default=None, description="Generation parameters for every model.")
    model_parameters: dict[str, GenerationParameters] | None = Field(
        default=None, alias="modelParameters", description="Parameters for one model, over `parameters`, by model ID."
    )
    # The shorthand of the product plan's request: {"prompt", "steps", "guidance"}.
    steps: int | None = Field(default=None, description="Shorthand for parameters.steps.")
    guidance: float | None = Field(default=None, description="Shorthand for parameters.cfgScale.")
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
        if sum(source is not None for source in (self.prompt, self.template, self.messages)) != 1:
            raise ValueError("needs exactly one of prompt, template and messages")
        if self.messages is not None:
            if self.kind != "text":
                raise ValueError("has messages, which only a text job takes")
            check_conversation(self.messages, has_system=bool(self.parameters and self.parameters.system))
        if self.model_parameters:
            strangers = [m for m in self.model_parameters if m not in self.models]
            if strangers:
                raise ValueError(f"has modelParameters for models it does not run: {', '.join(strangers)}")
        if self.steps is not None or self.guidance is not None:
            common = self.parameters or GenerationParameters()
            for short, name in (("steps", "steps"), ("guidance", "cfg_scale")):
                value = getattr(self, short)
                if value is not None:
                    if getattr(common, name) not in (None, value):
                        raise ValueError(f"gives {short} twice, with different values")
                    common = common.model_copy(update={name: value})
            self.parameters, self.steps, self.guidance = common, None, None
        if self.variables and self.template is None:
            raise ValueError("has variables but no template")
        if self.data is not None:
            if self.kind != "chart":
                raise ValueError("has data, which only a chart job takes")
            if len(json.dumps(self.data, separators=(",", ":"))) > MAX_CHART_DATA_BYTES:
                raise ValueError(f"has more than {MAX_CHART_DATA_BYTES} bytes of chart data")
        return self


def check_conversation(messages: list[Message], *, has_system: bool) -> None:
    """A system turn only first; then user and assistant in turn, from a user
    turn to a user turn (what every Converse model family takes)."""
    turns = messages[1:] if messages[0].role == "system" else messages
    if messages[0].role == "system" and has_system:
        raise ValueError("has a system turn and parameters.system; give one")
    if not turns:
        raise ValueError("has messages with no user turn")
    article = {"user": "a", "assistant": "an", "system": "a"}
    for i, turn in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn.role != expected:
            number = i + len(messages) - len(turns) + 1
            raise ValueError(
                f"has {article[turn.role]} {turn.role} turn where {article[expected]} {expected} turn belongs (turn {number})"
            )
    if turns[-1].role != "user":
        raise ValueError("has messages that end with an assistant turn; the last turn is the user's")


class CreateTemplateRequest(BaseModel):
    """POST /templates: a new version of a template (the first creates it)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

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

    model_config = ConfigDict(defer_build=True, extra="forbid")

    shared: bool = Field(description="true: every key of the deployment may read and use it; false: only its owner.")


class EnhanceRequest(BaseModel):
    """POST /enhance."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    prompt: Prompt = Field(description="The prompt to improve.")
    kind: OutputKind = Field(default="text", description="What the prompt will be used to generate.")
    parameters: GenerationParameters | None = Field(
        default=None, description="temperature, topP, maxTokens of the enhance model's call."
    )


def ensure_prompt_fits(prompt: str | int, max_chars: int, *, field: str = "prompt", what: str = "prompt") -> None:
    """The deployment's prompt size limit (MAX_PROMPT_CHARS), as a clear 400.
    `prompt` is the text or its length (a conversation's, with its system prompt)."""
    length = prompt if isinstance(prompt, int) else len(prompt)
    if length > max_chars:
        raise InvalidRequest(
            f"{what} is {length} characters long; the limit is {max_chars}",
            details={"field": field, "maxChars": max_chars},
        )
