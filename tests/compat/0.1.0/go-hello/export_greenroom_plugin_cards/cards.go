// One card greeting the entity, against greenroom:plugin@0.1.0.
package export_greenroom_plugin_cards

import (
	. "wit_component/greenroom_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Cards(entity Entity) witTypes.Result[[]Card, PluginError] {
	return witTypes.Ok[[]Card, PluginError]([]Card{{
		Id:    "go",
		Title: "From Go",
		Nodes: []Node{MakeNodeHeading("Hello from Go, " + entity.Name + "!")},
	}})
}
