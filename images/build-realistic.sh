#!/usr/bin/env bash
# build-realistic.sh - build a realistic "Python data-science Lambda function" OCI image.
#
# Usage: sudo images/build-realistic.sh [--force] [OUTDIR]     (OUTDIR defaults to images/realistic)
#   OUTDIR/oci    OCI layout, single tag "latest", 4 gzip layers (base, deps, app, cleanup)
#   OUTDIR/cache  debootstrapped base rootfs + pinned wheels (reused across runs)
# Re-running is cheap: finished steps are skipped. --force wipes cache and image and redoes all;
# `rm -rf OUTDIR/oci` alone rebuilds just the image from the cache.
# Needs root (debootstrap, chroot, ownership-preserving umoci unpack) and, on a fresh Debian:
#   apt-get install -y umoci debootstrap python3-pip      (host python must be 3.11, like bookworm's)
# Env: MIRROR (Debian mirror; default deb.debian.org). Same cache => same layer digests.
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }
FORCE=0; OUT=""
for a in "$@"; do case "$a" in --force) FORCE=1 ;; -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
  -*) die "unknown option $a" ;; *) OUT=$a ;; esac; done
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(realpath -m "${OUT:-$HERE/realistic}")
CACHE=$OUT/cache; IMG=$OUT/oci; WORK=$OUT/work; TMPIMG=$OUT/oci.partial
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SITE=usr/local/lib/python3.11/dist-packages                 # Debian's python3 searches here, not site-packages
# Full pin set (top level + every transitive dependency), all with cp311 manylinux2014 wheels.
PINS=(numpy==2.2.6 pandas==2.3.2 pyarrow==20.0.0 boto3==1.44.8 botocore==1.44.8 s3transfer==0.19.3
      jmespath==1.1.0 urllib3==2.8.0 python-dateutil==2.9.0.post0 six==1.17.0 pytz==2026.6 tzdata==2026.6)
# Target the image's interpreter, not the host: only wheels Lambda's x86_64 cp311 could load.
PLAT=(--only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311)
unset PIP_FIND_LINKS                                        # only registry wheels, no machine-local dirs

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and umoci unpack keep file ownership)"
for t in umoci debootstrap chroot; do command -v "$t" >/dev/null || die "missing $t: apt-get install -y umoci debootstrap"; done
PY=$(command -v python3.11) || die "need host python3.11: its .pyc magic must match the image's python3.11"
"$PY" -m pip --version >/dev/null 2>&1 || die "need pip for python3.11: apt-get install -y python3-pip"

# Never leave (or rm -rf through) a mount that a failed debootstrap left behind.
unmount_all() { findmnt -rno TARGET | grep "^$OUT/" | sort -r | xargs -r umount -l || true; }
trap unmount_all EXIT
mkdir -p "$OUT"
if [ "$FORCE" = 1 ]; then unmount_all; rm -rf "$CACHE" "$IMG" "$TMPIMG" "$WORK"; fi
mkdir -p "$CACHE" "$WORK"

# Clamp mtimes newer than EPOCH to EPOCH so identical inputs give identical layer tars.
clamp() { find "$1" -xdev -newermt "@$EPOCH" -exec touch -h -d "@$EPOCH" {} +; }

# --- downloads (cached) ---------------------------------------------------------------------
if [ ! -e "$CACHE/base.done" ]; then
  echo ">> debootstrap bookworm from $MIRROR"
  rm -rf "$CACHE/base"
  debootstrap --variant=minbase --include=python3,python3-minimal,libpython3.11,ca-certificates \
    bookworm "$CACHE/base" "$MIRROR"
  chroot "$CACHE/base" dpkg-query -W > "$CACHE/base-packages.txt"   # record what we got
  touch "$CACHE/base.done"
fi
if [ ! -e "$CACHE/wheels.done" ]; then
  echo ">> pip download ${PINS[*]}"
  rm -rf "$CACHE/wheels"
  "$PY" -m pip download --no-cache-dir "${PLAT[@]}" -d "$CACHE/wheels" "${PINS[@]}"
  touch "$CACHE/wheels.done"
fi
# EPOCH = when the cache was completed: newer than every base file (so the clamp never changes
# a Debian file and stdlib .pyc stay valid), older than everything the layers below add.
EPOCH=$(stat -c %Y "$CACHE/base.done" "$CACHE/wheels.done" | sort -n | tail -1)
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)

# --- layer recipes: each gets the unpacked rootfs of the image so far -----------------------
base() {  # like `FROM debian` + `apt-get clean && rm -rf /var/lib/apt/lists/*`
  cp -a "$CACHE/base/." "$1/"
  find "$1"/var/cache/apt "$1"/var/lib/apt/lists "$1"/var/log "$1"/tmp -mindepth 1 -type f -delete
  rm -rf "$1"/dev/* "$1"/proc/* "$1"/sys/* "$1"/etc/resolv.conf "$1"/etc/hostname  # runtime / host-specific
}
deps() {  # like `RUN pip install -r requirements.txt` (which compiles .pyc)
  "$PY" -m pip install --no-cache-dir --no-index --find-links "$CACHE/wheels" "${PLAT[@]}" \
    --no-compile --no-warn-conflicts --root-user-action=ignore --target "$1/$SITE" "${PINS[@]}"
  # --target drops console scripts in SITE/bin with the host interpreter's shebang: fix both.
  mkdir -p "$1/usr/local/bin"
  for f in "$1/$SITE"/bin/*; do sed -i '1s|^#!.*python.*$|#!/usr/bin/python3|' "$f"; mv "$f" "$1/usr/local/bin/"; done
  rmdir "$1/$SITE/bin"
  clamp "$1"   # .pyc headers record source mtimes: fix them before compiling
  # Host 3.11 writes the same bytecode as the image's 3.11; -s/-p make co_filename image paths.
  "$PY" -m compileall -q -j0 --invalidation-mode timestamp -s "$1" -p / "$1/$SITE" >/dev/null
  PYTHONDONTWRITEBYTECODE=1 chroot "$1" python3 -c \
    "import pandas, pyarrow.parquet, boto3; print('chroot import ok: pandas', pandas.__version__)"
}
app() {  # like `COPY app.py requirements.txt /var/task/`
  mkdir -p "$1/var/task"
  printf '%s\n' "${PINS[@]:0:4}" > "$1/var/task/requirements.txt"
  cat > "$1/var/task/app.py" <<'EOF'
"""Example Lambda handler: build a DataFrame, write it to Parquet in /tmp, read it back."""
import json, os
import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Created at init time, as real handlers do (loads botocore's service model files).
s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"))

def handler(event, context):
    n = int((event or {}).get("rows", 1000))
    df = pd.DataFrame({"id": range(n), "value": [i * 0.5 for i in range(n)],
                       "group": [f"g{i % 7}" for i in range(n)]})
    sums = df.groupby("group")["value"].sum()
    path = "/tmp/out.parquet"
    pq.write_table(pa.Table.from_pandas(df), path)
    return {"rows": pq.read_table(path).num_rows, "groups": len(sums),
            "bytes": os.path.getsize(path), "pandas": pd.__version__, "pyarrow": pa.__version__}

if __name__ == "__main__":
    print(json.dumps(handler({}, None)))
EOF
  local t; t=$(stat -c %Y "$1/tmp")          # smoke-test the handler, leaving /tmp as it was
  PYTHONDONTWRITEBYTECODE=1 chroot "$1" python3 /var/task/app.py
  rm -f "$1/tmp/out.parquet"; touch -d "@$t" "$1/tmp"
}
cleanup() {  # a slimming RUN: deletions become .wh. whiteouts in this layer
  rm -rf "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/info \
         "$1/$SITE"/pandas/tests "$1/$SITE"/pyarrow/tests
  find "$1/$SITE/numpy" -depth -type d -name tests -exec rm -rf {} +
}

# --- image: unpack, apply recipe, repack, once per layer ------------------------------------
layer() {  # layer RECIPE CREATED_BY
  local b=$WORK/bundle; rm -rf "$b"
  echo ">> layer $1"
  umoci unpack --image "$TMPIMG:latest" "$b" >/dev/null
  "$1" "$b/rootfs"
  clamp "$b/rootfs"
  umoci repack --image "$TMPIMG:latest" --history.created "$CREATED" --history.comment "$1" \
    --history.created_by "$2" "$b"
  rm -rf "$b"
}
if [ ! -e "$IMG/index.json" ]; then
  rm -rf "$TMPIMG"
  umoci init --layout "$TMPIMG"
  umoci new --image "$TMPIMG:latest"
  layer base    "debootstrap --variant=minbase --include=python3,python3-minimal,libpython3.11,ca-certificates bookworm; apt-get clean"
  layer deps    "pip install ${PINS[*]:0:4} --target /$SITE && python3 -m compileall"
  layer app     "COPY app.py requirements.txt /var/task/"
  layer cleanup "rm -rf /usr/share/{doc,man,info} pandas/tests pyarrow/tests numpy/**/tests"
  umoci config --image "$TMPIMG:latest" --created "$CREATED" --history.created "$CREATED" \
    --history.created_by "ENTRYPOINT python3 /var/task/app.py; WORKDIR /var/task; ENV" \
    --config.entrypoint /usr/bin/python3 --config.entrypoint /var/task/app.py --config.workingdir /var/task \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env LANG=C.UTF-8 --config.env LAMBDA_TASK_ROOT=/var/task
  umoci gc --layout "$TMPIMG"          # drop the intermediate manifests/configs of each repack
  mv "$TMPIMG" "$IMG"
fi

# --- verify the final image and report sizes ------------------------------------------------
rm -rf "$WORK/check"
umoci unpack --image "$IMG:latest" "$WORK/check" >/dev/null
ROOTFS="$(du -sb "$WORK/check/rootfs" | cut -f1) bytes (du -sb), $(find "$WORK/check/rootfs" -type f | wc -l) files"
chroot "$WORK/check/rootfs" python3 /var/task/app.py        # imports pandas, pyarrow.parquet, boto3
echo "== $IMG:latest"
echo "layer       gzip MiB  tar MiB  entries  files  whiteouts"
"$PY" - "$IMG" <<'EOF'
import gzip, json, sys, tarfile
d = sys.argv[1]
blob = lambda dg: f"{d}/blobs/{dg.replace(':', '/')}"
m = json.load(open(blob(json.load(open(f"{d}/index.json"))["manifests"][0]["digest"])))
hist = [h for h in json.load(open(blob(m["config"]["digest"])))["history"] if not h.get("empty_layer")]
for l, h in zip(m["layers"], hist):
    with gzip.open(blob(l["digest"])) as g:
        ents = tarfile.open(fileobj=g, mode="r|").getmembers()   # streams through the whole layer
        raw = g.tell()
    wh = sum(e.name.rsplit("/", 1)[-1].startswith(".wh.") for e in ents)
    files = sum(e.isreg() for e in ents) - wh
    print(f"{h.get('comment', '?'):10} {l['size'] / 2**20:9.1f} {raw / 2**20:8.1f} {len(ents):8} {files:6} {wh:10}")
EOF
echo "image dir:   $(du -sb "$IMG" | cut -f1) bytes"
echo "rootfs:      $ROOTFS"
rm -rf "$WORK/check"
