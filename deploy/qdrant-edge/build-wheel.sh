#!/usr/bin/env bash
# Builds the Qdrant Edge Python binding (qdrant-edge-py) that the embedded vector index runs on, from the
# Qdrant 1.18.2 source in ../shared/qdrant, with three changes: the shard's blocking calls release the GIL
# (gil-release.diff), a shard replays its WAL when loaded (wal-replay.diff), and identical vectors no
# longer fill each other's HNSW links (duplicate-links.diff).
#
#   deploy/qdrant-edge/build-wheel.sh MATURIN OUT_DIR   -> OUT_DIR/qdrant_edge_py-0.7.2+pageforge.3-*.whl
#
# Why: the PyPI wheels hold the GIL inside every engine call, so `optimize()` (building HNSW, seconds at
# 20k points) froze the whole process, event loop included, and the server could never index what it was
# sent. gil-release.diff wraps flush, optimize, update, query, search, scroll, count and retrieve in
# `py.detach` (pyo3's allow_threads). Edge 1.18.2 writes every update to its WAL but never reads it back,
# while segments reach the disk only on flush: a process killed between the two lost acknowledged updates
# (the PyPI wheel, from a later Qdrant, replays). wal-replay.diff re-applies the WAL on load, makes flush
# wait for updates in progress instead of panicking beside them, and drops the WAL entries a flush
# persisted. HNSW's neighbour heuristic drops a candidate only when a kept link is strictly closer to it
# than the point is; copies of one vector tie, so a copy kept other copies as all its links and a group of
# more copies than links (96 at PageForge's m) was a sink that searches could not leave. Layouts repeat
# across versions (at 1M perturbed pages, 469 texts had more than 96 copies). duplicate-links.diff makes a
# candidate as close to the point as a kept link redundant when merely as close (upstream Qdrant made
# this change after 1.18.2, qdrant/qdrant#10239), and gives a point with a copy already in the graph that
# copy's links as candidates too: a linking search whose beam copies fill finds nothing else. Distinct
# vectors tie with probability zero and are linked as before. The engine's API is unchanged. The version carries
# the local label `+pageforge.3`, which vectors/edge.py requires, so an unpatched wheel is refused by name.
# The workspace edit is the one ../shared/qdrant/build.sh makes (raft from the snapshot beside the source,
# tonic from crates.io): cargo resolves the whole workspace, though the edge crates use neither.
# The cargo build directory is kept under CACHE (default ~/.cache/pageforge/qdrant-edge): a first build is
# 10-18 min on 2 cores, a rebuild reuses the compiled dependencies. Needs cargo/rustc >= 1.94 (rustup),
# crates.io, and clang, lld, protoc and libunwind from Debian (installed when missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
maturin=$(cd "$(dirname "${1:?usage: build-wheel.sh MATURIN OUT_DIR}")" && pwd)/$(basename "$1")
out=${2:?usage: build-wheel.sh MATURIN OUT_DIR}
shared=${PAGEFORGE_SHARED:-$here/../../../shared}/qdrant
cache=${CACHE:-$HOME/.cache/pageforge/qdrant-edge}
source_sha256=529e02327285184e7ad0521f755fc3b557b50e2c5d27f453153c91b432cf8e23
raft_sha256=dc1cddca9f4dd88bf5b25371828958a7c8f0a7692846e692a5808252a561e1f7

echo "$source_sha256  $shared/qdrant-1.18.2.tar.gz" | sha256sum --check --quiet
echo "$raft_sha256  $shared/raft-rs-aafb07c.tar.gz" | sha256sum --check --quiet
command -v cargo >/dev/null || { echo "cargo is missing: the Qdrant Edge binding is built with Rust >= 1.94 (rustup)" >&2; exit 1; }
missing=""
for pair in clang:clang lld:lld protoc:protobuf-compiler; do
  command -v "${pair%%:*}" >/dev/null || missing="$missing ${pair#*:}"
done
ldconfig -p | grep -q libunwind.so || missing="$missing libunwind-dev"
if [ -n "$missing" ]; then
  echo "installing from Debian:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
src="$cache/qdrant-1.18.2"
rm -rf "$src" "$cache/raft-rs"
tar xzf "$shared/qdrant-1.18.2.tar.gz" -C "$cache"
tar xzf "$shared/raft-rs-aafb07c.tar.gz" -C "$cache"
python3 - "$src" "$cache/raft-rs" <<'EOF'
import pathlib, sys
src, raft = pathlib.Path(sys.argv[1]), sys.argv[2]
cargo = src / "Cargo.toml"
text = cargo.read_text()
rev = 'git = "https://github.com/tikv/raft-rs", rev = "aafb07c7bab439c6139926a77dfafc5b10e9bc84"'
for old, new in [
    ('tonic = { git = "https://github.com/qdrant/tonic", branch = "v0.14.6-qdrant" }\n', ""),
    ('raft-proto = { ' + rev + ',', 'raft-proto = { path = "' + raft + '/proto",'),
    ('raft = { ' + rev + ' ,', 'raft = { path = "' + raft + '",'),
]:
    assert old in text, old
    text = text.replace(old, new)
cargo.write_text(text)
pool = src / "lib/api/src/grpc/dynamic_channel_pool.rs"
code = pool.read_text()
old = "        .connect_timeout(connection_timeout)\n        .http2_max_local_error_reset_streams(None);"
assert old in code
pool.write_text(code.replace(old, "        .connect_timeout(connection_timeout);"))
binding = src / "lib/edge/python/Cargo.toml"
manifest = binding.read_text()
assert '\nversion = "0.7.2"\n' in manifest
binding.write_text(manifest.replace('\nversion = "0.7.2"\n', '\nversion = "0.7.2+pageforge.3"\n', 1))
EOF
patch --quiet -d "$src" -p1 < "$here/gil-release.diff"
patch --quiet -d "$src" -p1 < "$here/wal-replay.diff"
patch --quiet -d "$src" -p1 < "$here/duplicate-links.diff"
cd "$src/lib/edge/python"
rm -rf "$cache/partial"
CARGO_TARGET_DIR="$cache/target" CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} \
  nice -n 10 "$maturin" build --release --quiet -i python3.11 --out "$cache/partial"
# The wheel and its checksum reach OUT_DIR only once both are whole: the Makefile checks the one against
# the other before every install.
(cd "$cache/partial" && sha256sum qdrant_edge_py-*.whl > SHA256SUMS)
mv "$cache/partial"/* "$out"/
rm -rf "$src" "$cache/raft-rs" "$cache/partial"
cat "$out/SHA256SUMS"
