#!/bin/sh
# Vendor the dashboard's front-end libraries from npm into the Python package, so kumo needs
# no Node.js at run time and nothing is downloaded at install time (docs/dashboard.md).
# Reproducible: `npm ci` installs exactly what package-lock.json pins. Run with `make web-assets`
# after changing package.json (then commit package-lock.json and the copied files).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../src/kumo/web/static/vendor"
cd "$here"
npm ci --ignore-scripts --no-audit --no-fund
rm -rf "$out"
mkdir -p "$out/htmx" "$out/xterm" "$out/novnc"
m=node_modules
# htmx: the one script every page loads.
cp $m/htmx.org/dist/htmx.min.js $m/htmx.org/LICENSE "$out/htmx/"
# xterm.js and its fit add-on (serial console), as ES modules, with the terminal's CSS.
cp $m/@xterm/xterm/lib/xterm.mjs $m/@xterm/xterm/css/xterm.css "$out/xterm/"
cp $m/@xterm/xterm/LICENSE "$out/xterm/LICENSE"
cp $m/@xterm/addon-fit/lib/addon-fit.mjs "$out/xterm/"
cp $m/@xterm/addon-fit/LICENSE "$out/xterm/LICENSE.addon-fit"
# noVNC (graphical console): its ES module sources import ../vendor/pako, so both keep
# their relative layout.
cp -R $m/@novnc/novnc/core $m/@novnc/novnc/vendor "$out/novnc/"
cp $m/@novnc/novnc/LICENSE.txt $m/@novnc/novnc/AUTHORS "$out/novnc/"
# What was copied, from which pinned version (checked into git next to the files).
node -e '
const lock = require("./package-lock.json").packages;
for (const name of ["htmx.org", "@xterm/xterm", "@xterm/addon-fit", "@novnc/novnc"])
  console.log(name + " " + lock["node_modules/" + name].version + " " + lock["node_modules/" + name].integrity);
' > "$out/VERSIONS"
echo "vendored into $out:"
cat "$out/VERSIONS"
