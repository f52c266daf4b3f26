"""The run spec: one JSON document that names the corpus, the generator, the model and the target.

The same document is the input of a Step Functions execution and of ``osft run``.
"""

from __future__ import annotations

import difflib
import json
import json.decoder
import json.scanner
from typing import Any

from pydantic import Field, ValidationError, model_validator

from osft.common.errors import SpecError
from osft.common.spec.base import SpecModel
from osft.common.spec.cost import CostAssumptions
from osft.common.spec.deploy import Deploy
from osft.common.spec.evaluation import Evaluation
from osft.common.spec.extract import Cleaning, Sampling
from osft.common.spec.model import ModelSpec
from osft.common.spec.querygen import QueryGen
from osft.common.spec.source import Source
from osft.common.spec.training import Training

SPEC_VERSION = 1


class RunSpec(SpecModel):
    """A complete fine-tuning run."""

    spec_version: int = Field(default=SPEC_VERSION, ge=1, le=SPEC_VERSION)
    name: str = Field(
        pattern=r"^[a-z0-9](-?[a-z0-9]){0,47}$",
        # The pattern alone lets hyphens add up to 47 more characters; osft-<name> must fit SageMaker's 63.
        max_length=48,
        description="Run name: at most 48 characters, lowercase letters, digits and single hyphens, starting and "
        "ending with a letter or digit; names the run folder and AWS resources.",
    )
    source: Source
    cleaning: Cleaning = Field(default_factory=Cleaning)
    sampling: Sampling = Field(default_factory=Sampling)
    querygen: QueryGen = Field(default_factory=QueryGen)
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: Training = Field(default_factory=Training)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    deploy: Deploy | None = None
    max_cost_usd: float | None = Field(default=None, ge=0)
    cost: CostAssumptions = Field(default_factory=CostAssumptions)

    @model_validator(mode="after")
    def _sections_agree(self) -> RunSpec:
        # A check across sections has no field location of its own, so its message starts with the field path.
        if self.deploy is not None and self.deploy.when_rejected == "base" and self.model.type == "sparse":
            raise ValueError(
                f"{CROSS_SECTION_PREFIX}deploy.when_rejected: 'base' deploys dense base models only; "
                "register a sparse base model as one of OpenSearch's pretrained sparse models instead"
            )
        opensearch = self.deploy.opensearch if self.deploy is not None else None
        if opensearch is not None and opensearch.passage_vectors is not None and self.model.type == "sparse":
            raise ValueError(
                f"{CROSS_SECTION_PREFIX}deploy.opensearch.passage_vectors: passage vectors are nested knn_vector "
                "fields, for dense models; drop passage_vectors for a sparse model"
            )
        return self


CROSS_SECTION_PREFIX = "cross-section: "


# Discriminated unions: pydantic puts the chosen tag into error locations; users never wrote it.
UNION_TAGS = {"source": ("local", "s3", "opensearch", "pairs"), "auth": ("basic", "sigv4")}


def _display_path(loc: tuple) -> str:
    """Field path as the user wrote it (``source.local.path`` → ``source.path``)."""
    shown = [str(p) for i, p in enumerate(loc) if not (i > 0 and p in UNION_TAGS.get(str(loc[i - 1]), ()))]
    return ".".join(shown) or "(top level)"


def _describe(error: dict[str, Any], known: dict[tuple, list[str]], described: dict[tuple, str]) -> str:
    loc = tuple(error["loc"])
    path = _display_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        if name == "password":
            return f"{path}: passwords are never read from the spec; use password_env or password_secret_arn"
        close = difflib.get_close_matches(name, known.get(loc[:-1], []), n=1)
        return f"{path}: unknown field" + (f"; did you mean '{close[0]}'?" if close else "")
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "union_tag_invalid":
        context = error.get("ctx", {})
        return f"{path}: unknown type {context.get('tag')!r}; expected one of {context.get('expected_tags', '')}"
    if kind == "union_tag_not_found":
        return f"{path}: needs a 'type' field"
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith(CROSS_SECTION_PREFIX):
        return message.removeprefix(CROSS_SECTION_PREFIX)
    if kind == "string_pattern_mismatch" and loc in described:
        message = f"does not have the expected form ({described[loc]})"
    shown = error.get("input")
    if shown is None and kind != "missing":
        return f"{path}: {message} (got null)"
    if isinstance(shown, bool):
        return f"{path}: {message} (got {json.dumps(shown)})"  # as the user wrote it: true, not True
    if isinstance(shown, (str, int, float)):
        return f"{path}: {message} (got {shown!r})"
    return f"{path}: {message}"


def _walk_models(
    model: type[SpecModel], prefix: tuple, known: dict[tuple, list[str]], described: dict[tuple, str]
) -> None:
    """Record, for every location in the spec, the allowed field names and each field's description."""
    known[prefix] = list(model.model_fields)
    for name, field in model.model_fields.items():
        if field.description:
            described[(*prefix, name)] = field.description
        for candidate in _spec_models_in(field.annotation):
            # Only a discriminated union's member is located under its tag; a plain section with a
            # ``type`` field (``model.type``) is not.
            tag_field = candidate.model_fields.get("type") if name in UNION_TAGS else None
            tags = getattr(tag_field.annotation, "__args__", ()) if tag_field else ()
            location = prefix + (name,) + ((tags[0],) if tags else ())
            _walk_models(candidate, location, known, described)


def _spec_models_in(annotation: Any) -> list[type[SpecModel]]:
    """The SpecModel classes inside a type annotation (unions, Optional, Annotated)."""
    found: list[type[SpecModel]] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, SpecModel):
            found.append(item)
        else:
            stack.extend(getattr(item, "__args__", ()))
            stack.extend((getattr(item, "__origin__", None) and [item.__origin__]) or [])
    return found


def parse_spec(data: Any, source: str = "spec") -> RunSpec:
    """Validate a spec document, raising SpecError with every problem by field path."""
    if not isinstance(data, dict):
        raise SpecError(source, [f"(top level): expected a JSON object, got {type(data).__name__}"])
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        known: dict[tuple, list[str]] = {}
        described: dict[tuple, str] = {}
        _walk_models(RunSpec, (), known, described)
        problems = [_describe(e, known, described) for e in exc.errors(include_url=False)]
        raise SpecError(source, problems) from None


def parse_spec_text(text: str, source: str = "spec") -> RunSpec:
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as some Windows editors write
    if not text.strip():
        raise SpecError(source, ["the file is empty; a run spec is a JSON object (see 'osft schema' or examples/)"])
    try:
        data = _decoder(text).decode(text)
    except json.JSONDecodeError as exc:
        raise SpecError(source, [_json_problem(text, exc)]) from None
    repeated = _repeated_keys(data)
    if repeated:
        raise SpecError(source, repeated)
    return parse_spec(json.loads(text), source)  # plain dicts for the models


def _line_column(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return f"line {line} column {column}"


def _json_problem(text: str, exc: json.JSONDecodeError) -> str:
    """Where the JSON breaks, pointing at the usual hand-editing slips rather than where the parser gave up."""
    before = text[: exc.pos].rstrip()
    found = text[exc.pos : exc.pos + 1]
    if before.endswith(",") and found in ("}", "]"):
        comma = len(before) - 1
        return f"{_line_column(text, comma)}: trailing comma before '{found}' (JSON allows none; remove it)"
    if text.startswith(("//", "/*", "#"), exc.pos):
        return f"{_line_column(text, exc.pos)}: JSON allows no comments (remove it)"
    if exc.msg.startswith("Extra data"):
        return f"{_line_column(text, exc.pos)}: unexpected text after the end of the JSON document"
    return f"{_line_column(text, exc.pos)}: not valid JSON ({exc.msg})"


class _Object(dict):
    """A decoded JSON object that remembers where it starts and which keys it was given twice."""

    where = ""
    repeated: tuple[str, ...] = ()


def _decoder(text: str) -> json.JSONDecoder:
    """A JSON decoder that notes every key given twice in one object, and the object's line.

    ``json`` keeps the last value silently, so a section pasted twice would drop the first
    without a word; the pure-Python scanner is used because only it tells where an object starts.
    """
    decoder = json.JSONDecoder()
    starts: list[int] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = _Object(pairs)
        if len(obj) < len(pairs):
            keys = [key for key, _ in pairs]
            obj.repeated = tuple(dict.fromkeys(k for k in keys if keys.count(k) > 1))
            obj.where = _line_column(text, starts[-1])
        return obj

    def parse_object(state: tuple[str, int], *args: Any) -> tuple[dict[str, Any], int]:
        starts.append(state[1] - 1)
        try:
            return json.decoder.JSONObject(state, *args)
        finally:
            starts.pop()

    decoder.object_pairs_hook = pairs_hook
    decoder.parse_object = parse_object  # type: ignore[assignment]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder


def _repeated_keys(value: Any, path: tuple = ()) -> list[str]:
    """Every key given twice, by field path, in document order."""
    found: list[str] = []
    if isinstance(value, _Object):
        for key in value.repeated:
            field = ".".join(str(p) for p in (*path, key))
            found.append(f"{field}: given more than once in the object at {value.where}; keep one")
    if isinstance(value, dict):
        for key, item in value.items():
            found += _repeated_keys(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _repeated_keys(item, (*path, index))
    return found


def json_schema() -> dict[str, Any]:
    schema = RunSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://osft.dev/schema/run-spec-v1.json"
    return schema


__all__ = ["SPEC_VERSION", "RunSpec", "json_schema", "parse_spec", "parse_spec_text"]
