// Instances list: hold the rows' 1 s poll while a row's action menu is open, so the menu
// is not redrawn (and closed) under the user's pointer: no request is sent, and the answer
// of one already in flight when the menu opened is dropped. An action sent from a menu
// closes it, and the next poll brings the rows up to date.
function menuOpen(elt) {
  return elt && elt.id === "instance-rows" && elt.querySelector("details.row-menu[open]");
}
document.addEventListener("htmx:beforeRequest", (event) => {
  if (menuOpen(event.detail.elt)) {
    event.preventDefault();
  }
});
document.addEventListener("htmx:beforeSwap", (event) => {
  if (menuOpen(event.detail.target)) {
    event.detail.shouldSwap = false;
  }
});
document.addEventListener("htmx:afterRequest", (event) => {
  const menu = event.detail.elt && event.detail.elt.closest("details.row-menu");
  if (menu) {
    menu.open = false;
  }
});
