// Instances list: hold the rows' 2 s poll while a row's action menu is open, so the menu
// is not redrawn (and closed) under the user's pointer; the next poll after closing it
// brings the rows up to date.
document.addEventListener("htmx:beforeRequest", (event) => {
  const elt = event.detail.elt;
  if (elt && elt.id === "instance-rows" && elt.querySelector("details.row-menu[open]")) {
    event.preventDefault();
  }
});
