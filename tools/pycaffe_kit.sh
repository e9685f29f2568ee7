#!/usr/bin/env bash
# Packs what it takes to compile the caffe tool and pycaffe for another Python against a Caffe that tools/setup.sh
# built (patch 0010 keeps Python out of libcaffe, so only these two and Boost.Python depend on the Python): the
# sources as that build compiled them (share/pycaffe_src: caffe.cpp, _caffe.cpp, their defines and flags), the
# libraries each linked (their NEEDED entries), pycaffe's Python files, Boost.Python's sources (Debian 12's Boost
# 1.74 with Debian's Python patches, third_party/boost/source.lock, checked by SHA-256; the headers then get
# third_party/boost/patches/, for Python 3.13), and every header these
# include apart from the C and C++ libraries', Python's and NumPy's (found by the compiler: g++ -M; the Boost
# libraries among them whole, as another compiler takes other files of them). tools/build_pycaffe.sh
# compiles it, here (the rehearsal) or on a machine without network (tools/device_bundle.sh carries it).
#   bash tools/pycaffe_kit.sh CAFFE_HOME DEST [INCLUDE_DIR...]
# CAFFE_HOME: a build from the cache; INCLUDE_DIR: the include folders that build compiled with beyond Caffe's own
# and the system's (a CUDA route: the toolkit's, cuDNN's, NCCL's). DEST must not exist; it is written whole or not at all.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "pycaffe_kit: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: bash tools/pycaffe_kit.sh CAFFE_HOME DEST [INCLUDE_DIR...]"
HOME_DIR=$1 DEST=$2
shift 2
EXTRA_INCLUDES=("$@")
[ -f "$HOME_DIR/share/pycaffe_src/caffe.bin.flags" ] ||
  die "$HOME_DIR has no share/pycaffe_src/caffe.bin.flags (a build from before patch 0010): run tools/setup.sh again"
[ ! -e "$DEST" ] || die "$DEST exists; remove it first"
# the kit pairs Debian 12's Boost.Python 1.74 sources with this system's Boost headers, which must be 1.74 too
BOOST_HEADERS=$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp 2>/dev/null)
[ "$BOOST_HEADERS" = 1_74 ] || die "the kit is made on a system whose Boost is 1.74 (Debian 12, Ubuntu 22.04)," \
  "as its Boost.Python sources are; this one has ${BOOST_HEADERS:-no Boost headers}"
CACHE_ROOT=${PARK3D_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/park3dpose}
# shellcheck source=../third_party/boost/source.lock
source "$ROOT/third_party/boost/source.lock"
TMP=$DEST.partial.$$
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/src" "$TMP/include" "$TMP/python" "$CACHE_ROOT/downloads"

# Boost.Python's sources: downloaded once into the cache, checked, unpacked, Debian's Python patches applied.
fetch() {  # URL SHA256 -> path in the cache
  local file=$CACHE_ROOT/downloads/$(basename "$1")
  if [ ! -f "$file" ]; then
    curl -fsSL --retry 3 -o "$file.partial.$$" "$1" || { rm -f "$file.partial.$$"; die "cannot download $1"; }
    mv "$file.partial.$$" "$file"
  fi
  echo "$2  $file" | sha256sum -c --quiet - >&2 || { rm -f "$file"; die "$file does not match its SHA-256 in third_party/boost/source.lock (removed; run again)"; }
  echo "$file"
}
orig=$(fetch "$BOOST_ORIG_URL" "$BOOST_ORIG_SHA256")
debian=$(fetch "$BOOST_DEBIAN_URL" "$BOOST_DEBIAN_SHA256")
tar xJf "$orig" -C "$TMP" boost/libs/python/src boost/libs/python/include
tar xJf "$debian" -C "$TMP" debian/patches
for p in $(grep -l -E '^\+\+\+ [^ ]*libs/python/' "$TMP"/debian/patches/*.patch "$TMP"/debian/patches/*.diff 2>/dev/null | sort); do
  patch -d "$TMP/boost" -p1 --forward --quiet < "$p" >/dev/null || die "Debian's $(basename "$p") does not apply to Boost.Python's sources"
done
# the patched headers are those Debian installed (libboost-python1.74-dev): the sources match the headers
diff -r "$TMP/boost/libs/python/include/boost/python" /usr/include/boost/python >/dev/null ||
  die "Boost.Python's patched headers differ from /usr/include/boost/python (not Debian 12's Boost 1.74?)"
mv "$TMP/boost/libs/python/src" "$TMP/boost_python_src"
rm -rf "$TMP/boost" "$TMP/debian" "$TMP/boost_python_src/numpy"  # pycaffe uses NumPy's C API, not Boost.Python's

# the sources, as the build compiled them, and the libraries each linked
cp "$HOME_DIR"/share/pycaffe_src/* "$TMP/src/"
readelf -d "$HOME_DIR/bin/caffe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' > "$TMP/src/caffe.bin.needed"
pycaffe=$(ls -d "$HOME_DIR"/lib/python3*/dist-packages/caffe)
readelf -d "$pycaffe/_caffe.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' > "$TMP/src/pycaffe.needed"
cp -r "$pycaffe" "$TMP/python/caffe"
rm -f "$TMP/python/caffe/_caffe.so"
find "$TMP/python" -name __pycache__ -prune -exec rm -rf {} +

# Headers: what g++ -M lists for the three sources (this Python's and NumPy's own are left out: the target's are
# used), less the C library's, the kernel's and the compiler's (the target compiler brings its own).
VPY=${PARK3D_VENV:-$ROOT/.venv}/bin/python  # the set-up's Python: its headers and NumPy's only to find the others
PY_INC=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NP_INC=$("$VPY" -c 'import numpy; print(numpy.get_include())')
roots=("$HOME_DIR/include" "${EXTRA_INCLUDES[@]}" /usr/include/hdf5/serial "/usr/include/$(gcc -print-multiarch)" /usr/include)
incs=(); for r in "${roots[@]}"; do incs+=(-I"$r"); done
flags() { tr ' ' '\n' < "$TMP/src/$1.flags" | grep -E '^-D' | tr '\n' ' '; }
{
  # shellcheck disable=SC2046
  g++ -M $(flags caffe.bin) "${incs[@]}" -I"$PY_INC" "$TMP/src/caffe.cpp"
  # shellcheck disable=SC2046
  g++ -M $(flags pycaffe) "${incs[@]}" -I"$PY_INC" -I"$NP_INC" "$TMP/src/_caffe.cpp"
  find "$TMP/boost_python_src" -name '*.cpp' | while read -r f; do
    g++ -M -DBOOST_PYTHON_SOURCE -DBOOST_PYTHON_DYN_LINK -DNDEBUG "${incs[@]}" -I"$PY_INC" "$f"
  done
} | tr ' \\' '\n\n' | grep '^/' | grep -v '\.cpp$' | sort -u > "$TMP/headers.txt" ||
  die "g++ -M failed on the sources (see above)"
grep -v -E "^($PY_INC|$NP_INC|/usr/lib/gcc|/usr/include/c\+\+|$TMP)/" "$TMP/headers.txt" > "$TMP/candidates.txt"
# files the C library, the kernel headers and libstdc++ own (dpkg): left to the target
{ dpkg-query -S $(grep '^/usr/include' "$TMP/candidates.txt") 2>/dev/null || true; } |
  awk -F': ' '$1 ~ /^(libc6-dev|linux-libc-dev|libcrypt-dev|libstdc\+\+-[0-9]+-dev|libgcc-[0-9]+-dev|libpython3[.0-9]*-dev)(:|$)/ {print $2}' |
  sort -u > "$TMP/system.txt"
n=0
while read -r h; do
  grep -qxF "$h" "$TMP/system.txt" && continue
  rel=""
  for r in "${roots[@]}"; do
    case $h in "$r"/*) rel=${h#"$r"/}; break ;; esac
  done
  [ -n "$rel" ] || die "header $h is under none of the include folders (${roots[*]})"
  mkdir -p "$TMP/include/$(dirname "$rel")" && cp -L "$h" "$TMP/include/$rel"
  n=$((n + 1))
done < "$TMP/candidates.txt"
# Boost's headers choose among their own files by compiler (its atomics, say: GCC 14 includes files GCC 12 does
# not), so each Boost library these sources touch comes whole, with Boost's top-level headers: 3.3 MB compressed
# where g++ -M's list alone is 0.9 MB.
for lib in $(sed -n 's|^/usr/include/boost/\([^/]*\)/.*|\1|p' "$TMP/candidates.txt" | sort -u); do
  cp -rL "/usr/include/boost/$lib" "$TMP/include/boost/"
done
cp -L /usr/include/boost/*.hpp "$TMP/include/boost/"
n=$(find "$TMP/include" -type f | wc -l)
rm -f "$TMP/headers.txt" "$TMP/candidates.txt" "$TMP/system.txt"
# the project's patches to those headers (third_party/boost/patches/: what later Pythons removed)
for p in "$ROOT"/third_party/boost/patches/*.patch; do
  patch -d "$TMP/include" -p1 --forward --quiet < "$p" >/dev/null || die "$p does not apply to the kit's Boost.Python headers"
done
echo "Boost.Python 1.74 sources ($(find "$TMP/boost_python_src" -name '*.cpp' | wc -l) files), $n headers, the caffe tool's and pycaffe's sources from $HOME_DIR" > "$TMP/kit.txt"
mv "$TMP" "$DEST"
trap - EXIT
cat "$DEST/kit.txt"
