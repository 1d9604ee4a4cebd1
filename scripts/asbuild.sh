#!/bin/sh
# Compiles the AssemblyScript guest modules:
#
#   plugins/wordcount-as/assembly/index.ts -> OUT/plugins/wordcount-as.wasm
#   conformance/guest/as/index.ts          -> OUT/conformance/as.wasm
#
# Usage: scripts/asbuild.sh [OUT]   (OUT defaults to bin)
#
# The compiler is the assemblyscript package pinned by
# sdk/assemblyscript/package-lock.json; `npm ci` installs it there when
# node_modules is missing or older than the lock file. Test binaries run
# this script side by side, so it holds a lock while it installs and
# compiles, and moves each module into place only once it is complete.
set -eu

out=${1:-bin}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
sdk=$root/sdk/assemblyscript

if command -v flock >/dev/null 2>&1; then
	exec 9>"$sdk/.asbuild.lock"
	flock 9
fi

if [ ! -x "$sdk/node_modules/.bin/asc" ] ||
	[ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
	(cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The flags every flowstate module needs (see sdk/assemblyscript/README.md):
#   --exportStart _initialize  top-level code runs in the reactor's
#                              _initialize, which the host calls once, not in
#                              a start function during instantiation;
#   --use abort=...            the SDK's abort handler replaces the import of
#                              env.abort, which the host does not provide
#                              (the path is the compiler's name for the SDK
#                              file, relative to the repository root, where
#                              asc runs).
# -O3 optimizes for speed; assertions stay on, so a null dereference traps
# instead of reading address 0.
cd "$root"
build() {
	src=$1
	dst=$out/$2
	mkdir -p "$(dirname "$dst")"
	"$sdk/node_modules/.bin/asc" "$src" -o "$dst.tmp.$$" \
		--exportStart _initialize \
		--use abort=sdk/assemblyscript/assembly/sdk/abortHandler \
		-O3 --noColors
	mv "$dst.tmp.$$" "$dst"
}
build plugins/wordcount-as/assembly/index.ts plugins/wordcount-as.wasm
build conformance/guest/as/index.ts conformance/as.wasm
