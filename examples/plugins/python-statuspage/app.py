"""Status page: the components of an entity's Atlassian Statuspage page
and their status, as a card, and whether all are operational, as facts.

It calls Statuspage's API (GET /v1/pages/<page-id>/components) with
`Authorization: OAuth {{secret:STATUSPAGE_TOKEN}}`: the host fills in the
key, only for the origin it is granted for. `greenroom_plugin` is the
helper `greenroom plugin build` puts on the path.
"""

from greenroom_plugin import (
    CardBuilder,
    Tone,
    annotation,
    badge_cell,
    config_error,
    fact,
    get_json,
    not_applicable,
    secret_header,
)
from wit_world import exports
from wit_world.imports import config, types

ANNOTATION = "statuspage.io/page-id"

# Statuspage's component statuses, best first, and how each reads.
STATUSES = {
    "operational": Tone.GOOD,
    "under_maintenance": Tone.INFO,
    "degraded_performance": Tone.WARNING,
    "partial_outage": Tone.WARNING,
    "major_outage": Tone.CRITICAL,
}


def components(entity: types.Entity) -> list[dict]:
    page = annotation(entity, ANNOTATION)
    if page is None:
        raise not_applicable()
    if not page.isalnum():
        raise config_error(f"annotation {ANNOTATION} is {page!r}; write the page's id, like 'pay8xk2m'")
    base = (config.get("base_url") or "https://api.statuspage.io").rstrip("/")
    found = get_json(
        f"{base}/v1/pages/{page}/components",
        [secret_header("STATUSPAGE_TOKEN", scheme="OAuth")],
        what="Statuspage",
    )
    # Groups only gather components; the page shows their members.
    return [c for c in found if not c.get("group")]


def worst(found: list[dict]) -> str:
    order = list(STATUSES)
    return max((c["status"] for c in found if c["status"] in STATUSES), key=order.index, default="operational")


class Cards(exports.Cards):
    def cards(self, entity: types.Entity) -> list[types.Card]:
        found = components(entity)
        overall = worst(found)
        rows = [[c["name"], badge_cell(c["status"].replace("_", " "), STATUSES.get(c["status"], Tone.NEUTRAL))] for c in found]
        return [
            CardBuilder("status", "Status page")
            .badge(overall.replace("_", " "), STATUSES[overall])
            .table(["Component", "Status"], rows)
            .build()
        ]


class Facts(exports.Facts):
    def facts(self, entity: types.Entity) -> list[types.Fact]:
        found = components(entity)
        degraded = sum(1 for c in found if c["status"] != "operational")
        return [fact("statuspage.operational", degraded == 0), fact("statuspage.degraded", degraded)]
