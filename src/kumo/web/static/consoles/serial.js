// xterm.js on the page's serial websocket: the guest's bytes into the terminal, the keys
// typed into it to the guest, the terminal fitted to the window.
import { Terminal } from "/static/vendor/xterm/xterm.mjs";
import { FitAddon } from "/static/vendor/xterm/addon-fit.mjs";
import { LOST, REFUSED, show, socketUrl } from "/static/consoles/status.js";

const element = document.getElementById("console-terminal");
const terminal = new Terminal({ cursorBlink: true, scrollback: 5000 });
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.open(element);
fit.fit();
window.addEventListener("resize", () => fit.fit());

const socket = new WebSocket(socketUrl(element), ["binary"]);
socket.binaryType = "arraybuffer";
let connected = false;
const encoder = new TextEncoder();

socket.addEventListener("open", () => {
  connected = true;
  show("connected", "Connected");
  terminal.focus();
});
socket.addEventListener("message", (event) => {
  terminal.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
});
socket.addEventListener("close", (event) => {
  if (!connected) show("disconnected", REFUSED);
  else show("disconnected", event.wasClean ? "Disconnected." : LOST);
});
terminal.onData((data) => {
  if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
});
