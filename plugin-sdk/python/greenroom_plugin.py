"""Conveniences for Greenroom plugins written in Python (componentize-py),
the same the Rust SDK gives: a card builder, facts, the plugin errors, and
HTTP with secrets the host fills in.

`greenroom plugin new --lang python` puts this file beside `app.py`; copy
it into any plugin folder built with componentize-py. It works with any
world: what it needs of the host (`http`) it imports when it is used.

    from greenroom_plugin import CardBuilder, Tone, not_applicable

    class Cards(exports.Cards):
        def cards(self, entity):
            slug = annotation(entity, "example.com/slug")
            if slug is None:
                raise not_applicable()
            return [CardBuilder("status", "Status").field("Slug", slug).build()]
"""

import json as _json
from typing import Any, Iterable, Optional

from componentize_py_types import Err
from wit_world.imports import types

Tone = types.Tone


class CardBuilder:
    """A card, node by node: `CardBuilder(id, title).heading(...).build()`."""

    def __init__(self, id: str, title: str):
        self._card = types.Card(id=id, title=title, nodes=[])

    def _add(self, node: "types.Node") -> "CardBuilder":
        self._card.nodes.append(node)
        return self

    def heading(self, text: str) -> "CardBuilder":
        return self._add(types.Node_Heading(text))

    def text(self, text: str) -> "CardBuilder":
        return self._add(types.Node_Text(text))

    def markdown(self, markdown: str) -> "CardBuilder":
        """CommonMark, rendered and sanitised by the host."""
        return self._add(types.Node_Markdown(markdown))

    def field(self, label: str, value: str, tone: Optional[Tone] = None) -> "CardBuilder":
        return self._add(types.Node_Field(types.Field(label=label, value=value, tone=tone)))

    def link(self, label: str, href: str) -> "CardBuilder":
        return self._add(types.Node_Link(types.Link(label=label, href=href)))

    def badge(self, label: str, tone: Tone = Tone.NEUTRAL) -> "CardBuilder":
        return self._add(types.Node_Badge(types.Badge(label=label, tone=tone)))

    def progress(self, value: float, max: float, label: Optional[str] = None) -> "CardBuilder":
        return self._add(types.Node_Progress(types.Progress(value=value, max=max, label=label)))

    def sparkline(self, values: Iterable[float]) -> "CardBuilder":
        return self._add(types.Node_Sparkline([float(v) for v in values]))

    def table(self, columns: Iterable[str], rows: Iterable[Iterable["types.Cell"]]) -> "CardBuilder":
        """Rows of cells: `text_cell`, `link_cell`, `badge_cell` (or plain
        strings, taken as text)."""
        cells = [[c if not isinstance(c, str) else text_cell(c) for c in row] for row in rows]
        return self._add(types.Node_Table(types.Table(columns=list(columns), rows=cells)))

    def code(self, text: str) -> "CardBuilder":
        return self._add(types.Node_Code(text))

    def divider(self) -> "CardBuilder":
        return self._add(types.Node_Divider())

    def build(self) -> "types.Card":
        return self._card


def text_cell(text: str) -> "types.Cell":
    return types.Cell_Text(text)


def link_cell(label: str, href: str) -> "types.Cell":
    return types.Cell_Link(types.Link(label=label, href=href))


def badge_cell(label: str, tone: Tone = Tone.NEUTRAL) -> "types.Cell":
    return types.Cell_Badge(types.Badge(label=label, tone=tone))


def fact(name: str, value: Any, url: Optional[str] = None) -> "types.Fact":
    """A fact; its type follows the value: bool a flag, int or float a
    number, anything else text."""
    if isinstance(value, bool):
        v = types.FactValue_Flag(value)
    elif isinstance(value, (int, float)):
        v = types.FactValue_Number(float(value))
    else:
        v = types.FactValue_Text(str(value))
    return types.Fact(name=name, value=v, url=url)


# Errors: `raise not_applicable()` and so on, from any export.


def not_applicable() -> Err:
    """Nothing to say about this entity: no card, nothing logged."""
    return Err(types.PluginError_NotApplicable())


def upstream(message: str) -> Err:
    """The service the plugin reads failed; the card shows `message`."""
    return Err(types.PluginError_Upstream(message))


def config_error(message: str) -> Err:
    """A setting or grant is missing; say which."""
    return Err(types.PluginError_Config(message))


def internal(message: str) -> Err:
    """A bug in the plugin."""
    return Err(types.PluginError_Internal(message))


# The entity.


def entity_value(entity: "types.Entity") -> dict:
    """The whole entity (metadata, spec, relations) as a dict."""
    return _json.loads(entity.json)


def annotation(entity: "types.Entity", key: str) -> Optional[str]:
    return entity_value(entity).get("metadata", {}).get("annotations", {}).get(key)


# HTTP (the world must include greenroom:plugin/import-http).


def secret_header(secret: str, name: str = "Authorization", scheme: str = "Bearer"):
    """A header carrying secret `secret`, e.g. `Authorization: Bearer
    {{secret:TOKEN}}`: the host fills in the value, only for the origins
    the secret is granted for, so it never enters the plugin."""
    from wit_world.imports import http

    value = f"{scheme} {{{{secret:{secret}}}}}" if scheme else f"{{{{secret:{secret}}}}}"
    return http.Header(name=name, value=value)


def get_json(url: str, headers: Iterable = (), what: str = "the upstream") -> Any:
    """GETs `url` and answers its JSON body. A refused request, a failed
    transport or a status other than 2xx raises `upstream(...)` naming
    `what`; 401 and 403 raise `config_error(...)` (the secret or grant)."""
    from wit_world.imports import http

    request = http.Request(
        method="GET",
        url=url,
        headers=[http.Header(name="Accept", value="application/json"), *headers],
        body=None,
    )
    try:
        response = http.fetch(request)
    except Err as e:
        raise upstream(f"{what}: {_describe(e.value)}")
    body = bytes(response.body)
    if response.status in (401, 403):
        raise config_error(f"{what} refused the credentials ({response.status}); check the secret and grant")
    if not 200 <= response.status < 300:
        raise upstream(f"{what} answered {response.status}: {body[:200].decode('utf-8', 'replace')}")
    try:
        return _json.loads(body)
    except ValueError as e:
        raise upstream(f"{what} answered something that is not JSON: {e}")


def _describe(error) -> str:
    name = type(error).__name__.split("_", 1)[-1]
    value = getattr(error, "value", None)
    return f"{name}: {value}" if value is not None else name
