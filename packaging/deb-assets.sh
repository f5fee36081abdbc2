#!/usr/bin/env bash
# Renders the package's generated files with the built binary, for cargo-deb:
#   packaging/deb-assets.sh BINARY OUT_DIR
# OUT_DIR/man/*.1.gz (mcas-forward.1 and one page per subcommand, clap_mangen) and
# OUT_DIR/completions/{mcas-forward.bash,_mcas-forward,mcas-forward.fish} (clap_complete).
# The binary renders them from the definitions that parse its command line, so they match it.
set -euo pipefail

bin=${1:?usage: deb-assets.sh BINARY OUT_DIR}
out=${2:?usage: deb-assets.sh BINARY OUT_DIR}

rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$bin" man-page --dir "$out/man"
gzip -9n "$out"/man/*.1
"$bin" completions bash >"$out/completions/mcas-forward.bash"
"$bin" completions zsh >"$out/completions/_mcas-forward"
"$bin" completions fish >"$out/completions/mcas-forward.fish"
