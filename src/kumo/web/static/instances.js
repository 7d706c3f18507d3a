// Instances list: hold the rows' 2 s poll while a row's action menu is open, so the menu
// is not redrawn (and closed) under the user's pointer; an action sent from a menu closes
// it, and the next poll brings the rows up to date.
document.addEventListener("htmx:beforeRequest", (event) => {
  const elt = event.detail.elt;
  if (elt && elt.id === "instance-rows" && elt.querySelector("details.row-menu[open]")) {
    event.preventDefault();
  }
});
document.addEventListener("htmx:afterRequest", (event) => {
  const menu = event.detail.elt && event.detail.elt.closest("details.row-menu");
  if (menu) {
    menu.open = false;
  }
});
