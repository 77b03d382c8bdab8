from wit_world import exports
from wit_world.imports import types


class Cards(exports.Cards):
    def cards(self, entity: types.Entity) -> list[types.Card]:
        return [types.Card(id="py", title="From Python", nodes=[types.Node_Heading(f"Hello from Python, {entity.name}!")])]
