#!/usr/bin/env bash
# Checks that the image the Dockerfile describes starts, on a machine without a Docker engine.
#
#   sudo deploy/check-image.sh DIR        (DIR: a new or empty directory, outside the repository)
#
# 1. debootstrap Debian bookworm (what python:3.11-slim is built on) into DIR/rootfs, and stand in for
#    the base image: Debian's Python 3.11 with pip in its own site-packages and no PEP 668 marker, as in
#    python:3.11-slim (whose Python is built from source under /usr/local; Debian's is 3.11.2).
# 2. Run the Dockerfile itself, instruction by instruction, in a chroot: RUN as /bin/sh -c in WORKDIR
#    with the ENV so far and as the USER so far, COPY from the repository (the build context). Any
#    instruction or flag this script does not know stops it, so the check cannot drift from the file.
# 3. As the image's USER, with the image's ENV and docker-compose.yml's settings, start the renderer and
#    the gateway, print each /health, run the Dockerfile's HEALTHCHECK, and render a PDF with WeasyPrint.
#    No Neo4j or Qdrant is started: the services point at compose's host names, which do not resolve
#    here, so /health answers 503 naming what is down (it answers at all only if the process started).
#    The chroot shares the host's network: ports 8000 and 8003 must be free.
# 4. Stop the services and unmount everything, also on failure. DIR/rootfs stays for inspection.
#
# Needs root, debootstrap, curl, and network access to the Debian mirror and PyPI. The host's uv cache
# (~/.cache/uv), when there is one, is lent to the chroot read-only through an overlay, so that the
# locked wheels need not be downloaded again; the install commands are still the Dockerfile's.
# Not part of `make test`. A few minutes with a warm uv cache; without one it downloads several GB
# (torch with CUDA). The rootfs takes about 7 GB.
set -euo pipefail

usage() { echo "usage: $0 DIR   (a new or empty directory)" >&2; exit 2; }
die() { echo "check-image: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*"; }

[[ $# -eq 1 ]] || usage
[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, mounts)"
for tool in debootstrap curl chroot mount; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install $tool)"
done

CONTEXT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)   # the docker build context
DOCKERFILE=$CONTEXT/Dockerfile
[[ -e $CONTEXT/.dockerignore ]] && die ".dockerignore exists; this script copies without it"
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
[[ -z $(ls -A "$DIR") ]] || die "$DIR is not empty"
case $DIR/ in "$CONTEXT"/*) die "DIR must be outside the repository" ;; esac
ROOTFS=$DIR/rootfs
LOGS=$DIR/logs
mkdir -p "$ROOTFS" "$LOGS"

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
UV_CACHE=${UV_CACHE:-$HOME/.cache/uv}
# What the services use instead of a Neo4j and a Qdrant: docker-compose.yml's addresses.
NEO4J_URI=${NEO4J_URI:-bolt://neo4j:7687}
QDRANT_URL=${QDRANT_URL:-http://qdrant:6333}
START_TIMEOUT_S=${START_TIMEOUT_S:-600}
# Certificate authorities the host trusts beyond Debian's (a TLS-inspecting egress proxy, say). When
# there are any, the chroot trusts them too and the build steps (not the services) are told to use the
# system bundle: pip and uv otherwise bring their own roots. A docker build on that network needs as much.
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
BUILD_NETWORK_ENV=()
NICE=(nice -n 19 ionice -c3)   # the machine is shared

# What python:3.11-slim sets before the Dockerfile's own ENV.
BASE_ENV=(PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)

MOUNTS=()     # mount points, unmounted in reverse order on exit
SERVICES=()   # session (and process-group) ids of the services started here
TIMINGS=()

cleanup() {
  set +e
  for pgid in "${SERVICES[@]}"; do
    kill -TERM -- "-$pgid" 2>/dev/null
    for _ in $(seq 20); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pgid" 2>/dev/null
  done
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" || echo "check-image: could not unmount ${MOUNTS[i]}" >&2
  done
}
trap cleanup EXIT

mount_in() {  # mount_in TARGET mount-args...: mount, and remember to unmount
  mkdir -p "$1"
  mount "${@:2}" "$1"
  MOUNTS+=("$1")
}

timed() {  # timed LABEL command...: run, and note how long it took
  local label=$1 start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  TIMINGS+=("$(printf '%-44s %5ds' "$label" $((SECONDS - start)))")
  return $rc
}

# ---------------------------------------------------------------------------------------------------
# 1. Debian bookworm and a stand-in for python:3.11-slim

bootstrap() {
  "${NICE[@]}" debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $LOGS/debootstrap.log"
  # The sources debian:bookworm-slim has.
  cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp "$EXTRA_CA_DIR"/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
    local bundle=/etc/ssl/certs/ca-certificates.crt
    BUILD_NETWORK_ENV=("SSL_CERT_FILE=$bundle" "PIP_CERT=$bundle")
    echo "trusting the host's extra CAs ($(cd "$EXTRA_CA_DIR" && echo *.crt)); build steps get ${BUILD_NETWORK_ENV[*]}"
  fi
}

mount_filesystems() {
  # A /dev like a container's: a small tmpfs with the usual nodes, its own devpts and /dev/shm.
  mount_in "$ROOTFS/dev" -t tmpfs -o mode=755,size=1m,nosuid dev
  local name major minor
  while read -r name major minor; do
    mknod -m 666 "$ROOTFS/dev/$name" c "$major" "$minor"
  done <<<$'null 1 3\nzero 1 5\nfull 1 7\nrandom 1 8\nurandom 1 9\ntty 5 0'
  ln -s /proc/self/fd "$ROOTFS/dev/fd"
  ln -s /proc/self/fd/0 "$ROOTFS/dev/stdin"
  ln -s /proc/self/fd/1 "$ROOTFS/dev/stdout"
  ln -s /proc/self/fd/2 "$ROOTFS/dev/stderr"
  ln -s pts/ptmx "$ROOTFS/dev/ptmx"
  mount_in "$ROOTFS/dev/pts" -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts
  mount_in "$ROOTFS/dev/shm" -t tmpfs -o mode=1777,size=64m,nosuid,nodev shm
  mount_in "$ROOTFS/proc" -t proc proc
  mount_in "$ROOTFS/sys" -t sysfs -o ro sysfs
  if [[ -d $UV_CACHE ]]; then
    # Read-only for the host: whatever uv writes goes to DIR/uv-upper.
    mkdir -p "$DIR/uv-upper" "$DIR/uv-work"
    mount_in "$ROOTFS/root/.cache/uv" -t overlay \
      -o "lowerdir=$UV_CACHE,upperdir=$DIR/uv-upper,workdir=$DIR/uv-work" uv-cache
  fi
}

as_image_user() {  # as_image_user USER ENV-ARRAY-NAME CWD COMMAND: sets CMD to run /bin/sh -c COMMAND
  local user=$1 cwd=$3 cmd=$4 home   # in the chroot, as USER, in CWD, with only that environment
  local -n env_ref=$2
  home=$(chroot "$ROOTFS" getent passwd "$user" | cut -d: -f6)
  [[ -n $home ]] || die "no user $user in the image"
  CMD=("${NICE[@]}" chroot "$ROOTFS" /usr/bin/setpriv --reuid="$user" --regid="$user" --init-groups
    /usr/bin/env -i HOME="$home" "${env_ref[@]}" /bin/sh -c "cd \"\$1\" && $cmd" sh "$cwd")
}

in_root() {  # in_root USER ENV-ARRAY-NAME CWD COMMAND: run it (see as_image_user)
  as_image_user "$@"
  "${CMD[@]}"
}

emulate_base_image() {
  local env=("${BASE_ENV[@]}" "${BUILD_NETWORK_ENV[@]}" DEBIAN_FRONTEND=noninteractive)
  in_root root env / '
    set -e
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ca-certificates python3.11 python3-distutils python-is-python3 python3-pip python3-pip-whl
    rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
    python -m pip install -q --ignore-installed --no-index --find-links /usr/share/python-wheels pip
    apt-get purge -y -qq --auto-remove python3-pip python3-pip-whl python3-setuptools python3-wheel
    rm -rf /var/lib/apt/lists/*
    python -m pip --version
    python -c "import sys; print(sys.version); print(sys.path)"
  ' >"$LOGS/base-image.log" 2>&1 || die "the stand-in base image failed, see $LOGS/base-image.log"
  tail -2 "$LOGS/base-image.log"
}

# ---------------------------------------------------------------------------------------------------
# 2. The Dockerfile, instruction by instruction

INSTRUCTIONS=()
read_dockerfile() {  # continuation lines joined, comment and blank lines dropped, as docker does
  local line joined=""
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ $line =~ \\[[:space:]]*$ ]]; then
      joined+="${line%\\*}"
      continue
    fi
    INSTRUCTIONS+=("$joined$line")
    joined=""
  done <"$DOCKERFILE"
}

IMAGE_ENV=("${BASE_ENV[@]}")
# shellcheck disable=SC2034  # used by name (as_image_user)
BUILD_ENV=()   # IMAGE_ENV and BUILD_NETWORK_ENV, for the RUN steps
IMAGE_USER=root
IMAGE_WORKDIR=/
HEALTHCHECK_JSON=""

copy_into_image() {  # COPY SRC... DEST, relative to the context and to WORKDIR
  local parts src dest
  read -ra parts <<<"$1"
  for src in "${parts[@]}"; do [[ $src == -* ]] && die "COPY flag $src is not supported"; done
  dest=${parts[-1]}
  [[ $dest == /* ]] || dest=$IMAGE_WORKDIR/$dest
  for src in "${parts[@]:0:${#parts[@]}-1}"; do
    if [[ -d $CONTEXT/$src ]]; then
      mkdir -p "$ROOTFS$dest"
      cp -a "$CONTEXT/$src/." "$ROOTFS$dest/"
    elif [[ $dest == */ ]]; then
      mkdir -p "$ROOTFS$dest"
      cp -a "$CONTEXT/$src" "$ROOTFS$dest"
    else
      cp -a "$CONTEXT/$src" "$ROOTFS$dest"
    fi
  done
  chown -R 0:0 "$ROOTFS$dest"   # COPY without --chown: root's
}

check_packages_copied() {  # every package pyproject.toml installs must be COPYed, or `pip install .`
  local package missing=()   # quietly installs without it and the services fail at their first import
  for package in $(sed -n 's/^include = \[\(.*\)\]/\1/p' "$CONTEXT/pyproject.toml" | tr -d '",*'); do
    printf '%s\n' "${INSTRUCTIONS[@]}" | grep -Eq "^COPY +$package +" || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] || die "pyproject.toml installs ${missing[*]}, which the Dockerfile does not COPY"
}

build_image() {
  local instruction keyword args step=0 kv
  for instruction in "${INSTRUCTIONS[@]}"; do
    keyword=${instruction%%[[:space:]]*}
    args=$(sed -E 's/^[[:space:]]+//' <<<"${instruction#"$keyword"}")
    step=$((step + 1))
    echo "-- step $step: ${keyword^^} $(head -c 150 <<<"$args")"
    case ${keyword^^} in
      FROM)
        [[ $args == python:3.11-slim ]] || die "FROM $args: this script stands in for python:3.11-slim only"
        timed "FROM (stand-in for python:3.11-slim)" emulate_base_image
        ;;
      ENV)
        for kv in $args; do
          [[ $kv == [A-Za-z_]*=* && $kv != *[\"\']* ]] || die "ENV $kv: only KEY=VALUE without quotes"
          IMAGE_ENV+=("$kv")
        done
        ;;
      WORKDIR)
        [[ $args == /* ]] || die "WORKDIR $args: only absolute paths"
        IMAGE_WORKDIR=$args
        mkdir -p "$ROOTFS$IMAGE_WORKDIR"
        ;;
      COPY) copy_into_image "$args" ;;
      RUN)
        [[ $args != \[* ]] || die "RUN in exec form is not supported"
        # shellcheck disable=SC2034  # used by name
        BUILD_ENV=("${IMAGE_ENV[@]}" "${BUILD_NETWORK_ENV[@]}")
        timed "RUN (step $step)" in_root "$IMAGE_USER" BUILD_ENV "$IMAGE_WORKDIR" "$args" \
          >"$LOGS/step-$step.log" 2>&1 || { tail -30 "$LOGS/step-$step.log"; die "step $step failed"; }
        tail -3 "$LOGS/step-$step.log"
        ;;
      USER) IMAGE_USER=$args ;;
      HEALTHCHECK)
        [[ $args == *"CMD ["* ]] || die "HEALTHCHECK: only the exec form (CMD [...]) is supported"
        HEALTHCHECK_JSON=${args#*CMD }
        ;;
      EXPOSE | CMD) ;;   # nothing to build; the services below are started explicitly
      *) die "instruction ${keyword^^} is not supported" ;;
    esac
  done
}

# ---------------------------------------------------------------------------------------------------
# 3. The services, as the image runs them

start_service() {  # start_service NAME PORT ENV...: pageforge serve in the image, in its own session
  # shellcheck disable=SC2034  # env is used by name
  local name=$1 port=$2 env=("${IMAGE_ENV[@]}" "${@:3}")
  as_image_user "$IMAGE_USER" env "$IMAGE_WORKDIR" "exec pageforge serve --service $name --port $port"
  setsid "${CMD[@]}" >"$LOGS/$name.log" 2>&1 &
  SERVICES+=($!)
  echo "started $name (session $!) on 127.0.0.1:$port, log $LOGS/$name.log"
}

wait_until_answering() {  # wait_until_answering NAME URL: until the URL gives any HTTP answer
  local name=$1 url=$2 pgid=${SERVICES[-1]} start=$SECONDS
  until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url" || true) != 000 ]]; do
    kill -0 -- "-$pgid" 2>/dev/null || { tail -40 "$LOGS/$name.log"; die "$name exited"; }
    ((SECONDS - start < START_TIMEOUT_S)) || { tail -40 "$LOGS/$name.log"; die "$name: no answer"; }
    sleep 2
  done
  TIMINGS+=("$(printf '%-44s %5ds' "$name: start until /health answers" $((SECONDS - start)))")
}

show_health() {  # show_health NAME URL
  local code
  code=$(curl -s -o "$LOGS/$1.health.json" -w '%{http_code}' --max-time 30 "$2" || true)
  echo "$1: GET $2 -> HTTP $code"
  cat "$LOGS/$1.health.json"
  echo
}

main() {
  say "debootstrap bookworm into $ROOTFS"
  timed "debootstrap" bootstrap
  mount_filesystems

  say "the Dockerfile, step by step ($DOCKERFILE)"
  echo "context: $CONTEXT at $(git -C "$CONTEXT" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(git -C "$CONTEXT" status --porcelain 2>/dev/null | wc -l) paths changed or new since"
  read_dockerfile
  check_packages_copied
  build_image
  [[ $IMAGE_USER != root ]] || die "the Dockerfile leaves the image running as root"

  say "services as $IMAGE_USER ($(chroot "$ROOTFS" id "$IMAGE_USER"))"
  local port
  for port in 8000 8003; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/" || true) == 000 ]] \
      || die "something already answers on 127.0.0.1:$port"
  done
  local neo4j=(PAGEFORGE_NEO4J__URI="$NEO4J_URI" PAGEFORGE_NEO4J__USER=neo4j
    PAGEFORGE_NEO4J__PASSWORD=check-image PAGEFORGE_VECTORS__QDRANT_URL="$QDRANT_URL")
  start_service renderer 8003 "${neo4j[@]}" PAGEFORGE_SERVICE=renderer
  wait_until_answering renderer http://127.0.0.1:8003/health
  start_service gateway 8000 PAGEFORGE_SERVICE=gateway \
    PAGEFORGE_GATEWAY__FORMVERSIONS_URL=http://127.0.0.1:8001 \
    PAGEFORGE_GATEWAY__SYSVERSIONS_URL=http://127.0.0.1:8002 \
    PAGEFORGE_GATEWAY__RENDERER_URL=http://127.0.0.1:8003
  wait_until_answering gateway http://127.0.0.1:8000/health
  ps -o user,pid,sid,args -s "$(IFS=,; echo "${SERVICES[*]}")" || true

  say "/health"
  show_health renderer http://127.0.0.1:8003/health
  show_health gateway http://127.0.0.1:8000/health
  echo "why, in the renderer's log:"
  grep -m1 -o '"msg": "neo4j not reachable[^"]*"' "$LOGS/renderer.log" || true

  say "the Dockerfile's HEALTHCHECK, against the gateway on :8000"
  local probe rc=0
  probe=$(chroot "$ROOTFS" python -c 'import json, shlex, sys; print(shlex.join(json.loads(sys.argv[1])))' \
    "$HEALTHCHECK_JSON")
  echo "$probe"
  in_root "$IMAGE_USER" IMAGE_ENV "$IMAGE_WORKDIR" "$probe" >"$LOGS/healthcheck.log" 2>&1 || rc=$?
  tail -1 "$LOGS/healthcheck.log"
  echo "HEALTHCHECK exit code: $rc (0 healthy, else unhealthy)"

  say "a PDF from WeasyPrint, as $IMAGE_USER"
  in_root "$IMAGE_USER" IMAGE_ENV "$IMAGE_WORKDIR" 'python - <<"EOF"
import weasyprint, pypdf
weasyprint.HTML(string="<p style=\"font-family: DejaVu Sans\">hi</p>").write_pdf("/tmp/x.pdf")
reader = pypdf.PdfReader("/tmp/x.pdf")
fonts = {f["/BaseFont"] for page in reader.pages for f in page["/Resources"]["/Font"].get_object().values()}
print(f"weasyprint {weasyprint.__version__}: /tmp/x.pdf, {len(reader.pages)} page, fonts {sorted(fonts)},"
      f" text {reader.pages[0].extract_text()!r}")
EOF'

  say "timings"
  printf '%s\n' "${TIMINGS[@]}"
}

main
