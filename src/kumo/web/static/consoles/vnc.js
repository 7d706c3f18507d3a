// noVNC on the page's console websocket: the guest's screen scaled to the window, the
// connection's state in the status line, and Ctrl-Alt-Del for the guest.
import RFB from "/static/vendor/novnc/core/rfb.js";
import { LOST, REFUSED, show, socketUrl } from "/static/consoles/status.js";

const screen = document.getElementById("console-screen");
const ctrlAltDel = document.getElementById("ctrl-alt-del");
let connected = false;

const rfb = new RFB(screen, socketUrl(screen), { wsProtocols: ["binary"] });
rfb.scaleViewport = true;
rfb.background = "#111";

rfb.addEventListener("connect", () => {
  connected = true;
  ctrlAltDel.disabled = false;
  show("connected", "Connected");
  rfb.focus();
});
rfb.addEventListener("disconnect", (event) => {
  ctrlAltDel.disabled = true;
  // The proxy refuses the handshake of a used or expired token: it never connects.
  if (!connected) show("disconnected", REFUSED);
  else show("disconnected", event.detail.clean ? "Disconnected." : LOST);
});
rfb.addEventListener("securityfailure", (event) => {
  show("disconnected", `Not connected: ${event.detail.reason || "the console refused the connection"}.`);
});
ctrlAltDel.addEventListener("click", () => {
  rfb.sendCtrlAltDel();
  rfb.focus();
});
