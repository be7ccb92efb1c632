#!/usr/bin/env bash
# Build the vSphere simulator for vmlab's tests, offline, from Debian's govmomi library.
#
#   tests/vsphere_sim/build.sh DEST      -> DEST/vcsim-vmlab
#
# The library (golang-github-vmware-govmomi-dev, GOVMOMI_SRC to use another copy) is copied
# into a private GOPATH under DEST and patched there with tests/vsphere_sim/*.patch; nothing
# under /usr/share is changed. GOPATH mode (GO111MODULE=off): no network is needed.
# Skips the build when DEST holds a binary built from the same sources (a hash of main.go,
# the patches, this script, the library's version and Go's version).
# Exit status: 0 built or up to date, 3 Go or the library is missing, 1 the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
library="${GOVMOMI_SRC:-/usr/share/gocode/src/github.com/vmware/govmomi}"
gopath_lib="${library%/src/github.com/vmware/govmomi}"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go is not installed: apt-get install golang-go" >&2
  exit 3
fi
if [ ! -f "$library/simulator/simulator.go" ]; then
  echo "build.sh: the govmomi library is missing at $library:" \
       "apt-get install golang-github-vmware-govmomi-dev" >&2
  exit 3
fi

dest="$(mkdir -p "$1" && cd "$1" && pwd)"
# the library's version: its Go files' names, sizes and times (any copy, Debian's or not)
version="$(cd "$library" && find . -name '*.go' -printf '%P %s %T@\n' | sort | sha256sum | cut -c1-12)"
stamp="$(cat "$here/main.go" "$here"/*.patch "$here/build.sh" | sha256sum | cut -c1-16)"
stamp="$stamp-$version-$(go env GOVERSION)"

exec 9>"$dest/.lock"
flock 9  # one build at a time per DEST (parallel test runs)
if [ -x "$dest/vcsim-vmlab" ] && [ "$(cat "$dest/stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

work="$dest/gopath"
rm -rf "$work"
mkdir -p "$work/src/github.com/vmware" "$work/src/vcsim-vmlab"
cp -r "$library" "$work/src/github.com/vmware/govmomi"
chmod -R u+w "$work"
for patch in "$here"/*.patch; do
  if ! patch -s -N -d "$work/src/github.com/vmware/govmomi" -p1 < "$patch"; then
    echo "build.sh: $(basename "$patch") does not apply to the govmomi at $library" >&2
    exit 1
  fi
done
cp "$here/main.go" "$work/src/vcsim-vmlab/"
started=$SECONDS
if ! (cd "$work/src/vcsim-vmlab" && GO111MODULE=off GOFLAGS= GOPROXY=off \
      GOPATH="$work:$gopath_lib" GOCACHE="$dest/gocache" \
      go build -o "$dest/vcsim-vmlab.new" .); then
  echo "build.sh: building the simulator failed (see above)" >&2
  exit 1
fi
mv "$dest/vcsim-vmlab.new" "$dest/vcsim-vmlab"
echo "$stamp" > "$dest/stamp"
rm -rf "$work"
echo "build.sh: built $dest/vcsim-vmlab in $((SECONDS - started))s"
