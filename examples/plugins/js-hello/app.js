export const cards = {
  cards(entity) {
    return [{ id: "js", title: "From JavaScript", nodes: [{ tag: "heading", val: `Hello from JavaScript, ${entity.name}!` }] }];
  },
};
