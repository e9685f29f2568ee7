#!/usr/bin/env bash
# Compiles the caffe tool (with its embedded Python, for the nets' Python layers), pycaffe's _caffe.so and
# Boost.Python for one Python, against a prebuilt libcaffe, from a kit that tools/pycaffe_kit.sh packed: on a
# machine whose Python is not the one the Caffe build was made with (a GPU machine's Python 3.12 with NumPy 2, say),
# with no network and no packages installed. Needs g++, that Python's headers and a shared libpython.
#   bash tools/build_pycaffe.sh KIT LIBDIRS PYTHON OUT
# KIT: the unpacked kit; LIBDIRS: colon-separated folders holding libcaffe.so and the libraries it links (the
# bundle's deps, CUDA's); PYTHON: the interpreter (its NumPy's headers are used); OUT (must not exist): bin/caffe,
# lib/libboost_python3XY.so.1.74.0, python/caffe (the package, _caffe.so in it), deps/ (links into LIBDIRS, the
# programs' run path). Prints OUT's PYTHONPATH line.
#   bash tools/build_pycaffe.sh --check PYTHON    # one line: whether this machine can build for PYTHON (exit 0 or 2)
set -euo pipefail
die() { echo "build_pycaffe: $*" >&2; exit 2; }
if [ "${1:-}" = --check ] && [ $# -eq 2 ]; then
  set -- - - "$2" -
else
  [ $# -eq 4 ] || die "usage: bash tools/build_pycaffe.sh KIT LIBDIRS PYTHON OUT, or --check PYTHON"
fi
KIT=$1 LIBDIRS=$2 PY=$3 OUT=$4
command -v "$PY" >/dev/null || die "no Python $PY on this machine"
read -r PYVER PY_INC NP_INC LIBPY PYFULL NPVER < <("$PY" - <<'PYEOF'
import os, sys, sysconfig
try:
    import numpy
    np_inc, np_ver = numpy.get_include(), numpy.__version__
except ImportError:
    np_inc = np_ver = "-"
libdir, ldlib = sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("LDLIBRARY") or ""
libpy = next((p for p in (os.path.join(libdir, ldlib), os.path.join(libdir, sysconfig.get_config_var("MULTIARCH") or "", ldlib))
              if ldlib.endswith(".so") and os.path.isfile(p)), "-")
print("%d%d" % sys.version_info[:2], sysconfig.get_paths()["include"], np_inc, libpy, sys.version.split()[0], np_ver)
PYEOF
) || die "$PY does not run"
# what this machine lacks to build for PY, checked once: --check lists it, a build stops on it
problems=()
command -v g++ >/dev/null || problems+=("no g++ on this machine")
[ -f "$PY_INC/Python.h" ] || problems+=("no headers ($PY_INC/Python.h): install its -dev package")
[ "$NP_INC" != - ] || problems+=("no NumPy")
[ "$LIBPY" != - ] || problems+=("no shared libpython (the caffe tool embeds Python for the Python layers)")
lacks=$(printf '%s; ' "${problems[@]}") lacks=${lacks%; }
if [ "$KIT" = - ]; then  # --check
  echo "$PY: Python $PYFULL with NumPy $NPVER, g++ $(g++ -dumpfullversion 2>/dev/null || echo -): $([ -z "$lacks" ] &&
    echo "pycaffe can be built for it" || echo "pycaffe cannot be built for it: $lacks")"
  exit $(( ${#problems[@]} ? 2 : 0 ))
fi
KIT=$(cd "$KIT" && pwd)
[ -f "$KIT/src/caffe.cpp" ] && [ -d "$KIT/boost_python_src" ] || die "$KIT is not a kit from tools/pycaffe_kit.sh"
[ ! -e "$OUT" ] || die "$OUT exists; remove it first"
[ -z "$lacks" ] || die "cannot build for $PY: $lacks"
TMP=$OUT.partial.$$
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/obj" "$TMP/bin" "$TMP/lib" "$TMP/python"
JOBS=${JOBS:-$(nproc)}
CXX=(g++ -std=gnu++17 -fPIC -O2 -DNDEBUG -isystem "$KIT/include" -I"$PY_INC")
defines() { tr ' ' '\n' < "$KIT/src/$1.flags" | grep -E '^-D' | tr '\n' ' '; }
cflags() { tr ' ' '\n' < "$KIT/src/$1.flags" | grep -E '^-(f|m|W|O)' | tr '\n' ' '; }
# the link line of a program: the libraries the original linked (its NEEDED), this Python's in place of that one's
libs() {
  local name
  while read -r name; do
    case $name in
      libpython3*) echo "$LIBPY" ;;
      libboost_python*) echo "$TMP/lib/libboost_python$PYVER.so.1.74.0" ;;
      libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
      *) echo "-l:$name" ;;
    esac
  done < "$KIT/src/$1.needed"
}
# LIBDIRS seen through OUT/deps: a link to each library there, first folder first, except the ones this Python's
# libpython loads, which come from this system (a bundle's copies are another distribution's: Debian 13's
# libpython3.13 needs a newer libexpat than Debian 12's), and except another Python's libpython and Boost.Python
mkdir -p "$TMP/deps"
ldd "$LIBPY" | awk '/=>/ {print $1}' > "$TMP/own.txt"
IFS=: read -r -a dirs <<< "$LIBDIRS"
for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  d=$(cd "$d" && pwd) || die "no folder $d (LIBDIRS)"
  for f in "$d"/*.so*; do
    name=${f##*/}
    case $name in libpython3*|libboost_python*) continue ;; esac
    [ -e "$f" ] && [ ! -e "$TMP/deps/$name" ] && ! grep -qxF "$name" "$TMP/own.txt" || continue
    ln -s "$f" "$TMP/deps/$name"
  done
done
LDIRS=(-L"$TMP/deps" -Wl,-rpath-link,"$TMP/deps")

# Boost.Python, every source in parallel
find "$KIT/boost_python_src" -name '*.cpp' | sort | awk -v t="$TMP/obj" '{o = $0; gsub(/.*boost_python_src\//, "", o); gsub(/\//, "_", o); print $0 "\t" t "/bp_" o ".o"}' > "$TMP/bp.txt"
BP=("${CXX[@]}" -DBOOST_PYTHON_SOURCE -DBOOST_PYTHON_DYN_LINK -DBOOST_ALL_NO_LIB -fvisibility=hidden)
pids=() failed=0
while IFS=$'\t' read -r src obj; do
  "${BP[@]}" -c "$src" -o "$obj" 2> "$obj.log" & pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
done < "$TMP/bp.txt"
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed = 0 ] || { cat "$TMP"/obj/bp_*.log >&2; die "Boost.Python did not compile for Python $PYVER (the errors above)"; }
# shellcheck disable=SC2046
g++ -shared -o "$TMP/lib/libboost_python$PYVER.so.1.74.0" -Wl,-soname,"libboost_python$PYVER.so.1.74.0" $(cut -f2 "$TMP/bp.txt") ||
  die "Boost.Python did not link"
# the caffe tool and _caffe.so, at once
# shellcheck disable=SC2046
"${CXX[@]}" $(defines caffe.bin) $(cflags caffe.bin) -c "$KIT/src/caffe.cpp" -o "$TMP/obj/caffe.o" 2> "$TMP/obj/caffe.log" & t=$!
# shellcheck disable=SC2046
"${CXX[@]}" -I"$NP_INC" $(defines pycaffe) $(cflags pycaffe) -c "$KIT/src/_caffe.cpp" -o "$TMP/obj/_caffe.o" 2> "$TMP/obj/_caffe.log" ||
  { cat "$TMP/obj/_caffe.log" >&2; die "_caffe.cpp did not compile for Python $PYVER and NumPy $("$PY" -c 'import numpy; print(numpy.__version__)')"; }
wait $t || { cat "$TMP/obj/caffe.log" >&2; die "caffe.cpp did not compile for Python $PYVER"; }
RPATH=-Wl,-rpath,$TMP/lib:$TMP/deps
RPATH=${RPATH//$TMP/$OUT}
# shellcheck disable=SC2046
g++ -fopenmp -o "$TMP/bin/caffe" "$TMP/obj/caffe.o" "${LDIRS[@]}" $(libs caffe.bin) "$RPATH" || die "the caffe tool did not link"
cp -r "$KIT/python/caffe" "$TMP/python/caffe"
# shellcheck disable=SC2046
g++ -shared -fopenmp -o "$TMP/python/caffe/_caffe.so" "$TMP/obj/_caffe.o" "${LDIRS[@]}" $(libs pycaffe) "$RPATH" ||
  die "_caffe.so did not link"
rm -rf "$TMP/obj" "$TMP/bp.txt" "$TMP/own.txt"
# -T: where a second copy finished first, fail rather than move this one inside its OUT
mv -T "$TMP" "$OUT" 2>/dev/null || die "$OUT appeared while this one built (a second copy?): use that one, or remove it and run again"
trap - EXIT
echo "PYTHONPATH=$OUT/python"
