// A Greenroom plugin in C: one card greeting the entity. Built against the
// world `export-cards` with bindings from wit-bindgen-c, compiled by clang
// for wasm32-wasi (reactor) and made a component with the WASI preview1
// adapter; see README.md.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "export_cards.h"

bool exports_greenroom_plugin_cards_cards(exports_greenroom_plugin_cards_entity_t *entity,
                                          exports_greenroom_plugin_cards_list_card_t *ret,
                                          exports_greenroom_plugin_cards_plugin_error_t *err) {
  (void)err;
  greenroom_plugin_types_card_t *card = calloc(1, sizeof *card);
  export_cards_string_dup(&card->id, "c");
  export_cards_string_dup(&card->title, "From C");
  greenroom_plugin_types_node_t *node = calloc(1, sizeof *node);
  node->tag = GREENROOM_PLUGIN_TYPES_NODE_HEADING;
  char text[256];
  int n = snprintf(text, sizeof text, "Hello from C, %.*s!", (int)entity->name.len, (const char *)entity->name.ptr);
  export_cards_string_dup_n(&node->val.heading, text, (size_t)n);
  card->nodes.ptr = node;
  card->nodes.len = 1;
  ret->ptr = card;
  ret->len = 1;
  greenroom_plugin_types_entity_free(entity);
  return true;
}
