// The console pages' status line, shared by the graphical and the serial console.
const status = document.getElementById("console-status");

export const REFUSED =
  "Not connected: the token expired or was already used. Open the console again from the server page.";
export const LOST = "Disconnected: the connection to the console was lost.";

// Show what the console is doing ("connecting", "connected", "disconnected").
export function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

// The websocket URL of a console page's data-socket path, on this page's origin.
export function socketUrl(element) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${element.dataset.socket}`;
}
