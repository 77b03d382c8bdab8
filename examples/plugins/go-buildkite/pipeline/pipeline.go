// Package pipeline reads an entity's Buildkite builds through the host's
// HTTP client: the token never enters the plugin, the host puts it in the
// request ({{secret:BUILDKITE_TOKEN}}) and only for the origins it is
// granted for.
package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"

	config "wit_component/greenroom_plugin_config"
	http "wit_component/greenroom_plugin_http"
	. "wit_component/greenroom_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// The annotation naming an entity's pipeline, as Backstage's Buildkite
// plugin reads it: `<organization>/<pipeline>`.
const Annotation = "buildkite.com/pipeline-slug"

// Build is the part of Buildkite's build object the plugin shows.
type Build struct {
	Number  int    `json:"number"`
	State   string `json:"state"`
	Branch  string `json:"branch"`
	Message string `json:"message"`
	WebURL  string `json:"web_url"`
}

// Finished says whether the build has an outcome.
func (b Build) Finished() bool {
	switch b.State {
	case "passed", "failed", "canceled", "timed_out":
		return true
	}
	return false
}

// Tone is how the build's state reads.
func (b Build) Tone() Tone {
	switch b.State {
	case "passed":
		return Tone_Good
	case "failed", "timed_out":
		return Tone_Critical
	case "running", "scheduled", "blocked":
		return Tone_Info
	}
	return Tone_Neutral
}

// Slug is the entity's `<organization>/<pipeline>`, or not-applicable.
func Slug(entity Entity) (string, string, *PluginError) {
	var value struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(entity.Json), &value); err != nil {
		e := MakePluginErrorInternal(err.Error())
		return "", "", &e
	}
	slug := value.Metadata.Annotations[Annotation]
	org, name, ok := strings.Cut(slug, "/")
	if slug == "" {
		e := MakePluginErrorNotApplicable()
		return "", "", &e
	}
	if !ok || org == "" || name == "" || strings.Contains(name, "/") {
		e := MakePluginErrorConfig(fmt.Sprintf("annotation %s is %q; write <organization>/<pipeline>", Annotation, slug))
		return "", "", &e
	}
	return org, name, nil
}

// Latest answers the pipeline's most recent builds, newest first.
func Latest(entity Entity, count int) ([]Build, *PluginError) {
	org, name, perr := Slug(entity)
	if perr != nil {
		return nil, perr
	}
	base := strings.TrimSuffix(config.Get("base_url").SomeOr("https://api.buildkite.com"), "/")
	url := fmt.Sprintf("%s/v2/organizations/%s/pipelines/%s/builds?per_page=%d", base, org, name, count)
	result := http.Fetch(http.Request{
		Method: "GET",
		Url:    url,
		Headers: []http.Header{
			{Name: "Authorization", Value: "Bearer {{secret:BUILDKITE_TOKEN}}"},
			{Name: "Accept", Value: "application/json"},
		},
		Body: witTypes.None[[]uint8](),
	})
	if result.IsErr() {
		e := MakePluginErrorUpstream(describe(result.Err()))
		return nil, &e
	}
	response := result.Ok()
	switch {
	case response.Status == 401 || response.Status == 403:
		e := MakePluginErrorConfig(fmt.Sprintf("Buildkite refused the token (%d): set GREENROOM_SECRET_BUILDKITE_TOKEN to an API token with read_builds", response.Status))
		return nil, &e
	case response.Status == 404:
		e := MakePluginErrorConfig(fmt.Sprintf("Buildkite has no pipeline %s/%s (annotation %s)", org, name, Annotation))
		return nil, &e
	case response.Status != 200:
		e := MakePluginErrorUpstream(fmt.Sprintf("Buildkite answered %d for %s", response.Status, url))
		return nil, &e
	}
	var builds []Build
	if err := json.Unmarshal(response.Body, &builds); err != nil {
		e := MakePluginErrorUpstream("Buildkite's answer is not a list of builds: " + err.Error())
		return nil, &e
	}
	return builds, nil
}

func describe(err http.HttpError) string {
	switch err.Tag() {
	case http.HttpError_NotGranted:
		return "not granted: " + err.NotGranted()
	case http.HttpError_Refused:
		return "refused: " + err.Refused()
	case http.HttpError_Timeout:
		return "Buildkite did not answer in time"
	case http.HttpError_TooLarge:
		return "Buildkite's answer is larger than the plugin may read"
	}
	return "cannot reach Buildkite: " + err.Transport()
}
