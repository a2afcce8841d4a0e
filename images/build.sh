#!/usr/bin/env bash
# build.sh - build the small real OCI images of images/oci (committed) and their start traces.
#
# Usage: sudo images/build.sh [--force] [--traces]      the committed teaching images
#        sudo images/build.sh --realistic [--force]      the large realistic image (images/realistic)
#
# The images are made of real Debian bookworm package content (`apt-get download` + `dpkg-deb -x`)
# and one pure-Python wheel from PyPI, packed into layers with GNU tar (sorted names, owner 0,
# mtimes clamped to SOURCE_DATE_EPOCH) and added with `umoci raw add-layer`, so that functions share
# base layers blob for blob the way real ones do:
#
#   base     libc6, busybox (+ applet links), ca-certificates (+ the bundle update-ca-certificates makes)
#   python   python3.11-minimal, libpython3.11-minimal/-stdlib and the libraries its modules load
#            (zlib, expat, ffi, bz2, lzma, sqlite3), the stdlib compiled to .pyc
#   deps     python-dateutil, six and jmespath wheels (json-api only)
#   app      each function's code (sqlite-report's also deletes /usr/share/doc: whiteouts)
#
# Tags in images/oci: shell-tool (base+app), hello-py, hello-py-reupload (the same recipe built again:
# identical blobs), hello-py-v2 (an app-only change), json-api, sqlite-report. Traces: images/traces/
# TAG.trace, recorded with strace from each image's start command in a chroot of its unpacked root
# (proc and dev mounted), imported with `chunkload trace import-strace`. Existing traces are kept
# unless --traces or --force (they record real timings, so a re-recording differs).
#
# Idempotent: downloads are cached in images/.cache (gitignored); the layout is rebuilt only when
# missing or with --force. Needs root (chroot, mounts, ownership), apt sources for bookworm, network,
# and installs umoci and strace with apt-get when missing.
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
FORCE=0; TRACES=0; REALISTIC=0
for a in "$@"; do case "$a" in
  --force) FORCE=1 ;; --traces) TRACES=1 ;; --realistic) REALISTIC=1 ;;
  -h|--help) sed -n '2,27p' "$0"; exit 0 ;; *) die "unknown argument $a (see --help)" ;; esac; done

if [ "$REALISTIC" = 1 ]; then
  args=(); [ "$FORCE" = 1 ] && args+=(--force)
  exec "$HERE/build-realistic.sh" "${args[@]}"
fi

[ "$(id -u)" = 0 ] || die "run as root (chroot, mounts, and layers owned by root)"
need=()
command -v umoci >/dev/null || need+=(umoci)
command -v strace >/dev/null || need+=(strace)
command -v pip3 >/dev/null || command -v pip >/dev/null || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"; fi
PIP=$(command -v pip3 || command -v pip)

export SOURCE_DATE_EPOCH=1735689600             # 2025-01-01T00:00:00Z: every mtime is clamped to it
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
export LC_ALL=C TZ=UTC PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
CACHE=$HERE/.cache; WORK=$HERE/.work; OCI=$HERE/oci; TRACES_DIR=$HERE/traces
BASE_PKGS=(libc6 busybox ca-certificates)
PY_PKGS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib zlib1g libexpat1 libffi8
         libbz2-1.0 liblzma5 libsqlite3-0)
WHEELS=(python-dateutil==2.9.0.post0 six==1.17.0 jmespath==1.0.1)
SITE=usr/lib/python3/dist-packages

# --- downloads (cached) ----------------------------------------------------------------------
mkdir -p "$CACHE/debs" "$CACHE/wheels"
if [ ! -e "$CACHE/debs.done" ]; then
  echo ">> apt-get download ${BASE_PKGS[*]} ${PY_PKGS[*]}"
  (cd "$CACHE/debs" && rm -f ./*.deb && apt-get download "${BASE_PKGS[@]}" "${PY_PKGS[@]}" 2>&1 \
    | grep -v 'unsandboxed' || true)
  for p in "${BASE_PKGS[@]}" "${PY_PKGS[@]}"; do ls "$CACHE/debs/${p}_"*.deb >/dev/null 2>&1 || die "no .deb for $p: apt-get download failed (see above)"; done
  touch "$CACHE/debs.done"
fi
if [ ! -e "$CACHE/wheels.done" ]; then
  echo ">> pip download ${WHEELS[*]}"
  "$PIP" download --quiet --no-cache-dir --no-deps --only-binary=:all: --python-version 3.11 \
    --platform any -d "$CACHE/wheels" "${WHEELS[@]}"
  touch "$CACHE/wheels.done"
fi
deb() { ls "$CACHE/debs/${1}_"*.deb | head -1; }

# --- layer recipes: each fills an empty directory with the files its layer adds --------------
# Bookworm packages still ship /bin, /lib...; an installed Debian has them merged into /usr (usrmerge).
# Merge here too: a layer's real /lib directory would otherwise replace the base's /lib symlink.
usrmerge() {
  local d=$1 x
  for x in bin sbin lib lib64; do
    [ -L "$d/$x" ] || [ ! -d "$d/$x" ] && continue
    mkdir -p "$d/usr/$x" && cp -a "$d/$x/." "$d/usr/$x/" && rm -rf "${d:?}/$x"
  done
}
layer_base() {
  local d=$1
  for p in "${BASE_PKGS[@]}"; do dpkg-deb -x "$(deb "$p")" "$d"; done
  usrmerge "$d"
  # Debian's /bin, /lib, /lib64 are symlinks into /usr (merged /usr); busybox's applets link to it.
  ln -s usr/bin "$d/bin"; ln -s usr/sbin "$d/sbin"; ln -s usr/lib "$d/lib"; ln -s usr/lib64 "$d/lib64"
  mkdir -p "$d/usr/bin" "$d/usr/sbin" "$d/etc/ssl/certs" "$d/tmp" "$d/var/task" "$d/root" "$d/proc" "$d/dev"
  chmod 1777 "$d/tmp"
  local applet
  for applet in $(chroot "$d" /usr/bin/busybox --list | sort); do
    [ -e "$d/usr/bin/$applet" ] || ln -s busybox "$d/usr/bin/$applet"
  done
  # What ca-certificates' postinst (update-ca-certificates) would generate: one PEM bundle.
  find "$d/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat > "$d/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$d/etc/passwd"
  printf 'root:x:0:\n' > "$d/etc/group"
}
layer_python() {  # $1 = layer dir, $2 = a scratch root holding base (to compile the stdlib in)
  local d=$1 root=$2
  for p in "${PY_PKGS[@]}"; do dpkg-deb -x "$(deb "$p")" "$d"; done
  usrmerge "$d"
  ln -s python3.11 "$d/usr/bin/python3"
  mkdir -p "$d/$SITE"
  # Like Debian's py3compile: the stdlib as .pyc, compiled by the image's own interpreter.
  cp -a "$d/." "$root/"
  chroot "$root" /usr/bin/python3.11 -m compileall -q --invalidation-mode unchecked-hash \
    /usr/lib/python3.11 >/dev/null || true   # a few test/idlelib modules do not compile: as in Debian
  rm -rf "$d/usr/lib/python3.11" && cp -a "$root/usr/lib/python3.11" "$d/usr/lib/python3.11"
}
layer_deps() {  # $1 = layer dir, $2 = a scratch root holding base+python
  local d=$1 root=$2
  mkdir -p "$d/$SITE"
  "$PIP" install --quiet --no-cache-dir --no-index --no-deps --no-compile --find-links "$CACHE/wheels" \
    --target "$d/$SITE" "${WHEELS[@]}" 2>&1 | grep -v 'root-user' || true
  find "$d/$SITE" -name 'RECORD' -exec sed -i '/__pycache__/d' {} +
  mkdir -p "$root/$SITE" && cp -a "$d/$SITE/." "$root/$SITE/"
  chroot "$root" /usr/bin/python3.11 -m compileall -q --invalidation-mode unchecked-hash "/$SITE" >/dev/null
  rm -rf "$d/$SITE" && mkdir -p "$d/$SITE" && cp -a "$root/$SITE/." "$d/$SITE/"
}
app_shell_tool() {
  mkdir -p "$1/var/task"
  cat > "$1/var/task/run.sh" <<'EOF'
#!/bin/sh
# A shell function: count the trusted CA certificates and fingerprint the bundle.
bundle=/etc/ssl/certs/ca-certificates.crt
n=$(grep -c 'BEGIN CERTIFICATE' "$bundle")
sum=$(sha256sum "$bundle" | cut -c1-16)
echo "{\"certificates\": $n, \"bundle_sha256\": \"$sum\"}"
EOF
  chmod 755 "$1/var/task/run.sh"
}
app_hello_py() {  # $2 = version
  mkdir -p "$1/var/task"
  cat > "$1/var/task/app.py" <<EOF
"""hello-py: the smallest Python function: parse an event, answer with JSON."""
import json
import os
import sys

VERSION = "$2"

def handler(event, context):
    name = (event or {}).get("name", "world")
    return {"greeting": f"hello, {name}", "version": VERSION, "python": sys.version.split()[0],
            "pid": os.getpid() > 0}

if __name__ == "__main__":
    print(json.dumps(handler(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}, None)))
EOF
}
app_json_api() {
  mkdir -p "$1/var/task"
  cat > "$1/var/task/app.py" <<'EOF'
"""json-api: filter a JSON document with JMESPath and normalise its dates with dateutil."""
import json

import jmespath
from dateutil import parser, tz

ORDERS = {"orders": [
    {"id": 1, "state": "shipped", "at": "2024-03-01T10:00:00+01:00", "total": 12.5},
    {"id": 2, "state": "open", "at": "March 2, 2024 9:30 PM UTC", "total": 7.25},
    {"id": 3, "state": "shipped", "at": "2024-03-03 08:15:00Z", "total": 30.0},
]}

def handler(event, context):
    query = (event or {}).get("query", "orders[?state=='shipped']")
    rows = jmespath.search(query, ORDERS)
    for r in rows:
        r["at"] = parser.parse(r["at"]).astimezone(tz.UTC).isoformat()
    return {"query": query, "rows": rows, "total": sum(r["total"] for r in rows)}

if __name__ == "__main__":
    print(json.dumps(handler({}, None)))
EOF
}
app_sqlite_report() {
  mkdir -p "$1/var/task" "$1/usr/share"
  # A slimming step in the same layer: deleting the docs of the layers below leaves whiteouts.
  touch "$1/usr/share/.wh.doc"
  cat > "$1/var/task/app.py" <<'EOF'
"""sqlite-report: load a CSV into an in-memory SQLite database and report per-region totals."""
import csv
import io
import json
import sqlite3

SALES = """region,product,units,price
eu,widget,12,2.50
us,widget,30,2.40
eu,gadget,3,19.99
ap,widget,8,2.70
us,gadget,5,18.50
"""

def handler(event, context):
    db = sqlite3.connect(":memory:")
    db.execute("create table sales (region text, product text, units integer, price real)")
    rows = csv.DictReader(io.StringIO(SALES))
    db.executemany("insert into sales values (:region, :product, :units, :price)", rows)
    report = db.execute("select region, sum(units * price) from sales group by region order by 2 desc")
    return {"sqlite": sqlite3.sqlite_version, "revenue": {r: round(v, 2) for r, v in report}}

if __name__ == "__main__":
    print(json.dumps(handler({}, None)))
EOF
}

# --- packing -------------------------------------------------------------------------------
# A layer tar that does not depend on the build machine: sorted, numeric root ownership, mtimes
# clamped, no atime/ctime. umoci gzips it (deterministic for the same tar).
pack() {  # pack DIR OUT.tar
  tar --sort=name --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime --owner=0 --group=0 --numeric-owner \
    -C "$1" -cf "$2" .
}
add() {  # add FROM-TAG|- TO-TAG LAYER.tar "created_by"
  local from=$1 to=$2 tar=$3 by=$4
  if [ "$from" = - ]; then
    umoci new --image "$OCI.partial:$to"
    umoci config --image "$OCI.partial:$to" --no-history --created "$CREATED" --author chunkload \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --config.env LANG=C.UTF-8 --config.env LAMBDA_TASK_ROOT=/var/task --config.workingdir /var/task
  else
    umoci tag --image "$OCI.partial:$from" "$to"
  fi
  umoci raw add-layer --image "$OCI.partial:$to" --history.created "$CREATED" \
    --history.created_by "$by" --history.author chunkload "$tar"
}
entry() {  # entry TAG CMD...
  local tag=$1; shift
  local args=(); for c in "$@"; do args+=(--config.cmd "$c"); done
  umoci config --image "$OCI.partial:$tag" --no-history --created "$CREATED" "${args[@]}"
}

unmount_all() { findmnt -rno TARGET | grep "^$WORK/" | sort -r | xargs -r umount -l || true; }
trap unmount_all EXIT

if [ "$FORCE" = 1 ]; then unmount_all; rm -rf "$OCI" "$OCI.partial" "$WORK"; fi
if [ ! -e "$OCI/index.json" ]; then
  unmount_all; rm -rf "$WORK" "$OCI.partial"; mkdir -p "$WORK/layers" "$WORK/tars"
  L=$WORK/layers T=$WORK/tars
  echo ">> layer base";   mkdir -p "$L/base" && layer_base "$L/base" && pack "$L/base" "$T/base.tar"
  echo ">> layer python"; mkdir -p "$L/python" "$WORK/root"; cp -a "$L/base/." "$WORK/root/"
  layer_python "$L/python" "$WORK/root" && pack "$L/python" "$T/python.tar"
  echo ">> layer deps";   mkdir -p "$L/deps" && layer_deps "$L/deps" "$WORK/root" && pack "$L/deps" "$T/deps.tar"
  for app in shell_tool hello_py:1 hello_py:2 json_api sqlite_report; do
    name=${app%%:*}; ver=${app#*:}; dir=$L/app-$name${ver:+-$ver}; [ "$ver" = "$app" ] && dir=$L/app-$name
    mkdir -p "$dir"; if [ "$ver" = "$app" ]; then "app_$name" "$dir"; else "app_$name" "$dir" "$ver"; fi
    pack "$dir" "$T/$(basename "$dir").tar"
  done
  umoci init --layout "$OCI.partial"
  base_by="dpkg-deb -x ${BASE_PKGS[*]}; busybox --list | ln -s; update-ca-certificates"
  py_by="dpkg-deb -x ${PY_PKGS[*]}; python3.11 -m compileall /usr/lib/python3.11"
  add - shell-tool "$T/base.tar" "$base_by"
  add shell-tool shell-tool "$T/app-shell_tool.tar" "COPY run.sh /var/task/"
  entry shell-tool /bin/sh /var/task/run.sh
  build_hello() {  # the same recipe, so a re-upload gives the same blobs
    add - "$1" "$T/base.tar" "$base_by"
    add "$1" "$1" "$T/python.tar" "$py_by"
    add "$1" "$1" "$T/$2.tar" "COPY app.py /var/task/"
    entry "$1" /usr/bin/python3 /var/task/app.py
  }
  build_hello hello-py app-hello_py-1
  build_hello hello-py-reupload app-hello_py-1
  build_hello hello-py-v2 app-hello_py-2
  add - json-api "$T/base.tar" "$base_by"
  add json-api json-api "$T/python.tar" "$py_by"
  add json-api json-api "$T/deps.tar" "pip install ${WHEELS[*]}"
  add json-api json-api "$T/app-json_api.tar" "COPY app.py /var/task/"
  entry json-api /usr/bin/python3 /var/task/app.py
  add - sqlite-report "$T/base.tar" "$base_by"
  add sqlite-report sqlite-report "$T/python.tar" "$py_by"
  add sqlite-report sqlite-report "$T/app-sqlite_report.tar" "COPY app.py /var/task/ && rm -rf /usr/share/doc"
  entry sqlite-report /usr/bin/python3 /var/task/app.py
  umoci gc --layout "$OCI.partial"
  # What went in, so a rebuild can tell whether the mirror has moved on.
  { for f in "$CACHE"/debs/*.deb; do dpkg-deb --showformat='${Package}=${Version}\n' -W "$f"; done
    ls "$CACHE/wheels"; } | sort > "$HERE/packages.txt"
  rm -rf "$OCI" && mv "$OCI.partial" "$OCI"
  rm -rf "$WORK"
fi

# --- start traces ----------------------------------------------------------------------------
BIN=$REPO/target/release/chunkload
mkdir -p "$TRACES_DIR"
record() {  # record TAG
  local tag=$1 out=$TRACES_DIR/$1.trace b=$WORK/bundle-$1
  [ -e "$out" ] && [ "$TRACES" = 0 ] && [ "$FORCE" = 0 ] && return 0
  [ -x "$BIN" ] || (cd "$REPO" && cargo build --release --quiet)
  rm -rf "$b"; mkdir -p "$WORK"
  umoci unpack --image "$OCI:$tag" "$b" >/dev/null
  local cmd; cmd=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["process"]["args"]))' "$b/config.json")
  mount -t proc proc "$b/rootfs/proc"; mount --rbind /dev "$b/rootfs/dev"
  echo ">> trace $tag: $cmd"
  # shellcheck disable=SC2086
  (cd "$b/rootfs/var/task" && strace -f -tt -y -e trace=openat,read,pread64,mmap,lseek,close \
    -o "$WORK/$tag.strace" chroot "$b/rootfs" $cmd)
  umount -l "$b/rootfs/dev"; umount "$b/rootfs/proc"
  "$BIN" trace import-strace "$WORK/$tag.strace" --root "$b/rootfs" --command "$cmd" -o "$out.partial" >/dev/null
  mv "$out.partial" "$out"
  rm -rf "$b" "$WORK/$tag.strace"
}
for tag in shell-tool hello-py hello-py-v2 json-api sqlite-report; do record "$tag"; done
rm -rf "$WORK"

echo "== $OCI"
du -sb "$OCI" | awk '{ printf "layout: %.1f MiB\n", $1 / 1048576 }'
"$BIN" inspect "$OCI:hello-py" | head -12
