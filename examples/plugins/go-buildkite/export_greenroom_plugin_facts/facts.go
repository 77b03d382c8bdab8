// Facts for campaigns and scorecards: whether the latest finished build
// of the branch (setting `branch`, default main) passed, and the share of
// the last 20 finished builds that passed.
package export_greenroom_plugin_facts

import (
	config "wit_component/greenroom_plugin_config"
	. "wit_component/greenroom_plugin_types"
	"wit_component/pipeline"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Facts(entity Entity) witTypes.Result[[]Fact, PluginError] {
	builds, err := pipeline.Latest(entity, 20)
	if err != nil {
		return witTypes.Err[[]Fact](*err)
	}
	branch := config.Get("branch").SomeOr("main")
	var facts []Fact
	finished, passed := 0, 0
	latest := true
	for _, b := range builds {
		if !b.Finished() {
			continue
		}
		finished++
		if b.State == "passed" {
			passed++
		}
		if latest && b.Branch == branch {
			latest = false
			facts = append(facts, Fact{
				Name:  "buildkite.passing",
				Value: MakeFactValueFlag(b.State == "passed"),
				Url:   witTypes.Some(b.WebURL),
			})
		}
	}
	if finished > 0 {
		facts = append(facts, Fact{
			Name:  "buildkite.pass_rate",
			Value: MakeFactValueNumber(100 * float64(passed) / float64(finished)),
			Url:   witTypes.None[string](),
		})
	}
	return witTypes.Ok[[]Fact, PluginError](facts)
}
