#!/usr/bin/env bash
# Build the vSphere simulator for vmlab's tests, offline, from Debian's govmomi library.
#   tests/vsphere_sim/build.sh DEST      -> DEST/vcsim-vmlab
# The library is copied into a private GOPATH and patched there (never under /usr/share).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$(mkdir -p "$1" && cd "$1" && pwd)"
library=/usr/share/gocode/src/github.com/vmware/govmomi
command -v go >/dev/null || { echo "build.sh: Go is not installed (apt-get install golang-go)" >&2; exit 1; }
[ -d "$library/simulator" ] || { echo "build.sh: $library is missing (apt-get install golang-github-vmware-govmomi-dev)" >&2; exit 1; }

stamp=$(cat "$here"/main.go "$here"/*.patch | sha256sum | cut -c1-16)-$(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || echo unknown)
if [ -x "$dest/vcsim-vmlab" ] && [ "$(cat "$dest/stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
work="$dest/gopath"
rm -rf "$work"
mkdir -p "$work/src/github.com/vmware" "$work/src/vcsim-vmlab"
cp -r "$library" "$work/src/github.com/vmware/govmomi"
for patch in "$here"/*.patch; do
  patch -s -d "$work/src/github.com/vmware/govmomi" -p1 < "$patch"
done
cp "$here/main.go" "$work/src/vcsim-vmlab/"
(cd "$work/src/vcsim-vmlab" && GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$dest/gocache" GOFLAGS= \
  go build -o "$dest/vcsim-vmlab.new" .)
mv "$dest/vcsim-vmlab.new" "$dest/vcsim-vmlab"
echo "$stamp" > "$dest/stamp"
rm -rf "$work"
echo "build.sh: built $dest/vcsim-vmlab"
