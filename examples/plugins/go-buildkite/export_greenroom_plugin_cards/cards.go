// The "Buildkite" card: the pipeline's last builds, each a link.
package export_greenroom_plugin_cards

import (
	"fmt"

	. "wit_component/greenroom_plugin_types"
	"wit_component/pipeline"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Cards(entity Entity) witTypes.Result[[]Card, PluginError] {
	builds, err := pipeline.Latest(entity, 5)
	if err != nil {
		return witTypes.Err[[]Card](*err)
	}
	if len(builds) == 0 {
		return witTypes.Ok[[]Card, PluginError]([]Card{{
			Id: "builds", Title: "Buildkite", Nodes: []Node{MakeNodeText("No builds yet.")},
		}})
	}
	rows := make([][]Cell, 0, len(builds))
	for _, b := range builds {
		rows = append(rows, []Cell{
			MakeCellLink(Link{Label: fmt.Sprintf("#%d", b.Number), Href: b.WebURL}),
			MakeCellBadge(Badge{Label: b.State, Tone: b.Tone()}),
			MakeCellText(b.Branch),
			MakeCellText(b.Message),
		})
	}
	return witTypes.Ok[[]Card, PluginError]([]Card{{
		Id:    "builds",
		Title: "Buildkite",
		Nodes: []Node{MakeNodeTable(Table{Columns: []string{"Build", "State", "Branch", "Message"}, Rows: rows})},
	}})
}
