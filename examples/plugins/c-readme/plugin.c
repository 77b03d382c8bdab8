// README: whether the repository has a README.md beside its
// catalog-info.yaml, its title (the first "# " heading) and how many words
// it has, as a card and as the facts docs.readme and docs.readme_words.
//
// The bindings (bindings/plugin.h) are generated from wit/ by greenroom
// plugin build. Strings are (ptr, len) pairs; what the host passes in is
// the plugin's to free.
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "plugin.h"

// Fewer words than this reads as a stub.
#define THIN_BELOW 50

typedef struct {
  bool found;
  plugin_string_t text;  // the file, or why it could not be read
  size_t words;
  const char *title;     // into text, not terminated
  size_t title_len;
} readme_t;

static readme_t read_readme(greenroom_plugin_types_entity_t *entity) {
  readme_t r = {0};
  plugin_string_t path, err;
  plugin_string_set(&path, "README.md");
  r.found = greenroom_plugin_source_read_file(&entity->entity_ref, &path, &r.text, &err);
  if (!r.found) {
    r.text = err;
    return r;
  }
  const char *s = (const char *)r.text.ptr;
  size_t n = r.text.len;
  bool in_word = false;
  for (size_t i = 0; i < n; i++) {
    bool space = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
    if (!space && !in_word) r.words++;
    in_word = !space;
    bool line_start = i == 0 || s[i - 1] == '\n';
    if (!r.title && line_start && i + 2 <= n && s[i] == '#' && s[i + 1] == ' ') {
      r.title = s + i + 2;
      while (r.title + r.title_len < s + n && r.title[r.title_len] != '\n' && r.title[r.title_len] != '\r') {
        r.title_len++;
      }
    }
  }
  return r;
}

static void set_text(greenroom_plugin_types_node_t *node, uint8_t tag, const char *text) {
  node->tag = tag;
  plugin_string_dup(&node->val.text, text);
}

bool exports_greenroom_plugin_cards_cards(exports_greenroom_plugin_cards_entity_t *entity,
                                          exports_greenroom_plugin_cards_list_card_t *ret,
                                          exports_greenroom_plugin_cards_plugin_error_t *err) {
  (void)err;
  readme_t r = read_readme(entity);
  greenroom_plugin_types_card_t *card = calloc(1, sizeof *card);
  plugin_string_dup(&card->id, "readme");
  plugin_string_dup(&card->title, "README");
  greenroom_plugin_types_node_t *nodes = calloc(3, sizeof *nodes);
  size_t count = 0;
  greenroom_plugin_types_node_t *badge = &nodes[count++];
  badge->tag = GREENROOM_PLUGIN_TYPES_NODE_BADGE;
  if (!r.found) {
    plugin_string_dup(&badge->val.badge.label, "no README.md");
    badge->val.badge.tone = GREENROOM_PLUGIN_TYPES_TONE_CRITICAL;
    set_text(&nodes[count++], GREENROOM_PLUGIN_TYPES_NODE_TEXT,
             "Put a README.md beside catalog-info.yaml: what this is, how to run it, whom to ask.");
  } else {
    bool thin = r.words < THIN_BELOW;
    plugin_string_dup(&badge->val.badge.label, thin ? "thin" : "documented");
    badge->val.badge.tone = thin ? GREENROOM_PLUGIN_TYPES_TONE_WARNING : GREENROOM_PLUGIN_TYPES_TONE_GOOD;
    if (r.title) {
      greenroom_plugin_types_node_t *heading = &nodes[count++];
      heading->tag = GREENROOM_PLUGIN_TYPES_NODE_HEADING;
      plugin_string_dup_n(&heading->val.heading, r.title, r.title_len);
    }
    greenroom_plugin_types_node_t *field = &nodes[count++];
    field->tag = GREENROOM_PLUGIN_TYPES_NODE_FIELD;
    char words[32];
    int n = snprintf(words, sizeof words, "%zu", r.words);
    plugin_string_dup(&field->val.field.label, "Words");
    plugin_string_dup_n(&field->val.field.value, words, (size_t)n);
  }
  card->nodes.ptr = nodes;
  card->nodes.len = count;
  ret->ptr = card;
  ret->len = 1;
  plugin_string_free(&r.text);
  greenroom_plugin_types_entity_free(entity);
  return true;
}

bool exports_greenroom_plugin_facts_facts(exports_greenroom_plugin_facts_entity_t *entity,
                                          exports_greenroom_plugin_facts_list_fact_t *ret,
                                          exports_greenroom_plugin_facts_plugin_error_t *err) {
  (void)err;
  readme_t r = read_readme(entity);
  greenroom_plugin_types_fact_t *facts = calloc(2, sizeof *facts);
  plugin_string_dup(&facts[0].name, "docs.readme");
  facts[0].value.tag = GREENROOM_PLUGIN_TYPES_FACT_VALUE_FLAG;
  facts[0].value.val.flag = r.found;
  size_t count = 1;
  if (r.found) {
    plugin_string_dup(&facts[1].name, "docs.readme_words");
    facts[1].value.tag = GREENROOM_PLUGIN_TYPES_FACT_VALUE_NUMBER;
    facts[1].value.val.number = (double)r.words;
    count = 2;
  }
  ret->ptr = facts;
  ret->len = count;
  plugin_string_free(&r.text);
  greenroom_plugin_types_entity_free(entity);
  return true;
}
