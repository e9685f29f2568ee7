"""The Caffe build tools/setup.sh made: where its `caffe` tool and build folder are, the environment the tool runs
in, and Caffe's own gtests (their filters in one place); and two checks the set-up runs on a fresh build (the
CUDA header guard, the caffe_pb2 an old protoc wrote)."""
from __future__ import annotations

import ast
import dataclasses
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from data_prep.cli import REPO
from data_prep.errors import UserError
from data_prep.files import write_text_atomic


def gtest_filters() -> dict:
    """Which of Caffe's gtests run where, from third_party/caffe/gtest_filters.env (the set-up and the GPU-machine
    kit read the same file): GTEST_FILTER_CPU_BUILD, GTEST_FILTER_CUDA_BUILD_CPU_CASES, GTEST_FILTER_GPU_CASES."""
    text = (REPO / "third_party" / "caffe" / "gtest_filters.env").read_text()
    return dict(re.findall(r"^(GTEST_\w+)='([^']*)'", text, re.M))


def caffe_binary() -> str:
    """The caffe tool the drivers run: PARK3D_CAFFE when set (a caffe built by tools/build_pycaffe.sh for another
    Python), else the set-up's wrapper in .venv, else `caffe` on PATH."""
    if os.environ.get("PARK3D_CAFFE"):
        return os.environ["PARK3D_CAFFE"]
    local = REPO / ".venv" / "bin" / "caffe"
    return str(local) if local.is_file() else "caffe"


def caffe_env(**overrides) -> dict:
    """The environment for the caffe tool: the folder of the Python running this first on PATH (the set-up's
    venv; on a GPU machine, the interpreter the kit built pycaffe for), so the tool's embedded Python, which
    finds its prefix by looking up `python3` on PATH (tools/setup.sh), has the same packages; plus `overrides`."""
    env = {**os.environ, **overrides}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def caffe_home(venv: Path = REPO / ".venv") -> Path:
    """The Caffe build folder tools/setup.sh linked into `venv` (it writes <venv>/.caffe-home)."""
    marker = Path(venv) / ".caffe-home"
    if not marker.is_file():
        raise UserError(f"{marker}: missing; run tools/setup.sh first")
    return Path(marker.read_text().strip())


@dataclasses.dataclass
class GtestRun:
    returncode: int
    log: str
    ran: int  # tests that ran
    passed: int
    failed: list  # names of the failed tests


def run_caffe_gtests(home: Path, gtest_filter: str, device: int | None = None, env: dict | None = None,
                     timeout: float = 3000) -> GtestRun:
    """Caffe's own gtests the set-up built into `home` (bin/caffe_layer_tests: the nets' layer types, the SGD
    solver, the math functions), run from share/caffe_gtest_root, where the solver tests find their data.
    device: the GPU for the GPU cases (the test binary takes it as its first plain argument). The tests' temporary
    folders (a caffe_test.* folder in TMPDIR for each snapshot or HDF5 case, which Caffe never removes: about 800 a
    run) and glog's files go to a folder of their own inside the caller's TMPDIR, removed afterwards."""
    home = Path(home)
    env = {**(os.environ if env is None else env), "LD_LIBRARY_PATH": str(home / "lib")}
    command = [str(home / "bin" / "caffe_layer_tests"), f"--gtest_filter={gtest_filter}"]
    with tempfile.TemporaryDirectory(prefix="caffe-gtests.", dir=env.get("TMPDIR")) as scratch:
        out = subprocess.run(command + ([] if device is None else [str(device)]), capture_output=True, text=True,
                             timeout=timeout, cwd=home / "share" / "caffe_gtest_root", env={**env, "TMPDIR": scratch})
    log = out.stdout + out.stderr
    ran = re.search(r"\[==========\] (\d+) tests? from (\d+) test cases? ran", log)
    passed = re.search(r"\[  PASSED  \] (\d+) tests?", log)
    failed = sorted(set(re.findall(r"^\[  FAILED  \] ([A-Za-z]\S*)", log, re.M)))  # not the "N tests, listed below"
    return GtestRun(out.returncode, log, int(ran.group(1)) if ran else 0, int(passed.group(1)) if passed else 0, failed)


def links(home: Path, library: str) -> bool:
    """Whether the build in `home` links `library` (a soname's stem, "libcudnn.so" say): ldd of its libcaffe."""
    ldd = subprocess.run(["ldd", str(Path(home) / "lib" / "libcaffe.so")], capture_output=True, text=True).stdout
    return library in ldd


FATBIN_MAGIC = 0xBA55ED50
FATBIN_KINDS = {1: "PTX", 2: "ELF"}


def gpu_code(library: Path) -> set:
    """The GPU code a CUDA-built shared library carries, as ("ELF", 90) for sm_90 machine code and ("PTX", 90) for
    compute_90 PTX: read from its .nv_fatbin section (NVIDIA's fatbin containers, one per compiled .cu file: a
    16-byte header of magic, version, header size and payload size; then entries, each a header of kind, version,
    header size, payload size and, at byte 28, the architecture, followed by its payload). Empty for a library
    without GPU code."""
    data = Path(library).read_bytes()
    shoff, = struct.unpack_from("<Q", data, 0x28)  # ELF64 little-endian: the section header table
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = sections[shstrndx][4]
    found = set()
    for name, _, _, _, offset, size in sections:
        if data[names_at + name:data.index(b"\0", names_at + name)] != b".nv_fatbin":
            continue
        pos = offset
        while pos + 16 <= offset + size:
            magic, _, header, payload = struct.unpack_from("<IHHQ", data, pos)
            if magic != FATBIN_MAGIC:  # containers are aligned: the padding between them
                pos += 8
                continue
            entry, end = pos + header, pos + header + payload
            while entry < end:
                kind, _, entry_header, entry_payload = struct.unpack_from("<HHIQ", data, entry)
                found.add((FATBIN_KINDS.get(kind, str(kind)), struct.unpack_from("<I", data, entry + 28)[0]))
                entry += entry_header + entry_payload
            pos = end
    return found


def runs_on(codes: set, capability: tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability runs a library that carries `codes` (gpu_code()): machine code
    runs on the same major version at an equal or higher minor (sm_80 on an 8.6 card, not on 9.0 or 7.5); PTX on
    any card at or above it, compiled by the driver at the first start (compute_90 on a 12.0 card)."""
    major, minor = capability
    card = 10 * major + minor
    return any(kind == "ELF" and arch // 10 == major and arch <= card or kind == "PTX" and arch <= card
               for kind, arch in codes)


def describe_gpu_code(codes: set) -> str:
    """gpu_code() as people write it: "sm_80, sm_90, PTX compute_90"."""
    elf = [f"sm_{arch}" for kind, arch in sorted(codes) if kind == "ELF"]
    ptx = [f"PTX compute_{arch}" for kind, arch in sorted(codes) if kind == "PTX"]
    return ", ".join(elf + ptx) or "no GPU code"


def has_cudnn(home: Path) -> bool:
    """Whether the build in `home` links cuDNN (a PARK3D_CUDNN=9 build: its GPU convolutions run through cuDNN,
    and CAFFE_TF32=1 lets cuBLAS and cuDNN use TF32 tensor cores, third_party/caffe/patches-cudnn/0007)."""
    return links(home, "libcudnn.so")


def gtest_cpu_filter(home: Path) -> str:
    """The filter of the gtests that run without a GPU in the build in `home`: a CUDA build's (whose libcaffe links
    CUDA's runtime) leaves out its GPU cases too. Read from gtest_filters.env now, so that a change there holds for
    the builds already in the cache."""
    cuda = links(home, "libcudart.so")
    return gtest_filters()["GTEST_FILTER_CUDA_BUILD_CPU_CASES" if cuda else "GTEST_FILTER_CPU_BUILD"]


# ---- the header guard of a CUDA build whose toolkit is not the system's (route 13) -------------------------------
# A host compiler finds thrust, cub and libcu++ wherever its include path has them: in a build against CUDA 13's
# toolkit from the cache, a Debian CUDA toolkit installed beside it (/usr/include/thrust) would be read silently.
# The build's dependency files (gcc's *.o.d, FindCUDA's nvcc *.depend) list every header each object read; a
# CUDA header outside the route's own roots is a build that mixed toolkits.
CUDA_DIRS = {"thrust", "cub", "cuda", "crt", "cccl", "libcudacxx", "cooperative_groups", "nv"}
CUDA_FILE_PREFIXES = ("cuda", "cublas", "curand", "cudnn", "nccl", "cusparse", "cufft", "cusolver", "nvrtc", "nvml",
                      "driver_types", "vector_types", "host_defines", "device_types", "builtin_types", "math_constants",
                      "sm_", "surface_", "texture_", "device_functions", "device_launch_parameters")


def is_cuda_header(path: str) -> bool:
    """A header of a CUDA toolkit: under one of its folders (thrust/, cub/, crt/, ...), or a CUDA file name directly
    in an include folder (/usr/include/cuda_runtime.h). Boost's boost/predef/language/cuda.h is no CUDA header."""
    parts = Path(path).parts
    if "boost" in parts:
        return False
    return any(p in CUDA_DIRS for p in parts[:-1]) or (
        len(parts) > 1 and parts[-2] == "include" and parts[-1].startswith(CUDA_FILE_PREFIXES))


def dependency_files(build_dir: Path) -> list:
    build_dir = Path(build_dir)
    return sorted([*build_dir.rglob("*.o.d"), *build_dir.rglob("*.depend")])


def foreign_cuda_headers(dep_files, allowed_roots) -> dict:
    """{header: the first dependency file that lists it} for every CUDA header read from outside allowed_roots
    (the route's toolkit, cuDNN and NCCL folders, the build's own source and build folders)."""
    roots = tuple(str(Path(r).resolve()) + os.sep for r in allowed_roots)
    found, seen = {}, set()  # every header is judged once, however many objects read it
    for dep in dep_files:
        for path in re.findall(r"(?:^|[\s\"';])(/[^\s\"';\\]+)", Path(dep).read_text(errors="replace"), re.M):
            if path in seen:
                continue
            seen.add(path)
            if is_cuda_header(path) and not path.startswith(roots) and not os.path.realpath(path).startswith(roots):
                found[path] = str(dep)
    return found


def header_guard(build_dir: Path, allowed_roots, report: Path | None = None) -> int:
    """The check tools/setup.sh runs after a route-13 build: 0 if every CUDA header came from allowed_roots,
    1 (naming the headers) if not. `report` records what was checked, for the CUDA smoke test."""
    deps = dependency_files(build_dir)
    if not deps:
        print(f"header guard: no dependency files under {build_dir}; cannot check the build", file=sys.stderr)
        return 1
    foreign = foreign_cuda_headers(deps, allowed_roots)
    summary = (f"checked {len(deps)} dependency files: {len(foreign)} CUDA headers from outside "
               f"{' '.join(str(r) for r in allowed_roots)}")
    if report is not None:
        Path(report).write_text(summary + "\n" + "".join(f"{h}  (read by {d})\n" for h, d in sorted(foreign.items())))
    print(summary)
    for header, dep in sorted(foreign.items())[:20]:
        print(f"  {header}  (read by {dep})", file=sys.stderr)
    if foreign:
        print("header guard: this CUDA build read another toolkit's headers (above); the route's host include "
              "path must name its own toolkit first (third_party/caffe/cuda-13.lock, CUDA_HOST_INCLUDE)",
              file=sys.stderr)
    return 1 if foreign else 0


# ---- caffe_pb2 from a protoc older than 3.20 -----------------------------------------------------------------
# protoc before 3.20 (Ubuntu 22.04 ships 3.12) writes Python modules that build each descriptor by hand
# (`_descriptor.FileDescriptor(..., serialized_pb=...)`, then one `_descriptor.Descriptor(...)` per message); the
# protobuf runtime the venv pins (6.x) refuses those ("Descriptors cannot be created directly"). What a newer
# protoc writes instead is the same serialized FileDescriptorProto handed to the runtime's builder, which makes the
# classes from it. The C++ side keeps the system's protoc and libprotobuf; only the Python module changes.
MODERN_PB2 = """\
# -*- coding: utf-8 -*-
# Generated by the protocol buffer compiler.  DO NOT EDIT!
# source: {source}
# (rewritten by tools/setup.sh, layers/caffe_build.py: protoc {version} wrote the pre-3.20 form, which the
# protobuf runtime in the venv refuses; this is the form protoc 3.20+ writes, from the same serialized descriptor)
\"\"\"Generated protocol buffer code.\"\"\"
from google.protobuf.internal import builder as _builder
from google.protobuf import descriptor as _descriptor
from google.protobuf import descriptor_pool as _descriptor_pool
from google.protobuf import symbol_database as _symbol_database

_sym_db = _symbol_database.Default()

DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile({serialized!r})

_globals = globals()
_builder.BuildMessageAndEnumDescriptors(DESCRIPTOR, _globals)
_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, {module!r}, _globals)
"""


def legacy_serialized_descriptor(source: str) -> bytes | None:
    """The serialized FileDescriptorProto of a _pb2 module in protoc's pre-3.20 form, or None when the module is in
    the newer form (nothing to do). Raises ValueError for a pre-3.20 module this cannot rewrite (one that imports
    other .proto files: caffe.proto imports none)."""
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["DESCRIPTOR"]):
            continue
        call = node.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "FileDescriptor"):
            return None  # protoc 3.20+: DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(...)
        keywords = {k.arg: k.value for k in call.keywords}
        deps = keywords.get("dependencies")
        if deps is not None and not (isinstance(deps, (ast.List, ast.Tuple)) and not deps.elts):
            raise ValueError("a pre-3.20 _pb2 module that imports other .proto files: regenerate it with protoc 3.20+")
        serialized = keywords.get("serialized_pb")
        if not (isinstance(serialized, ast.Constant) and isinstance(serialized.value, bytes)):
            raise ValueError("a pre-3.20 _pb2 module without a serialized_pb literal")
        return serialized.value
    return None


def modern_pb2_source(source: str, protoc_version: str = "before 3.20") -> str | None:
    """The module protoc 3.20+ writes for the same .proto, from a pre-3.20 module's text; None if `source` is in
    the newer form already."""
    serialized = legacy_serialized_descriptor(source)
    if serialized is None:
        return None
    from google.protobuf import descriptor_pb2
    proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    module = proto.name.removesuffix(".proto").replace("/", ".") + "_pb2"
    return MODERN_PB2.format(source=proto.name, serialized=serialized, module=module, version=protoc_version)


def modernize_pb2(path: Path, protoc_version: str = "before 3.20") -> bool:
    """Rewrite the _pb2 module at `path` in place (data_prep.files.write_text_atomic: whole or not at all) when an
    old protoc wrote it; True if it was rewritten."""
    text = modern_pb2_source(Path(path).read_text(), protoc_version)
    if text is None:
        return False
    write_text_atomic(Path(path), text)
    return True


if __name__ == "__main__":
    # python -m layers.caffe_build header-guard BUILD_DIR REPORT ALLOWED_ROOT...
    # python -m layers.caffe_build modernize-pb2 FILE [PROTOC_VERSION]
    if len(sys.argv) >= 3 and sys.argv[1] == "modernize-pb2":
        done = modernize_pb2(Path(sys.argv[2]), *sys.argv[3:4])
        print(f"{sys.argv[2]}: {'rewritten in the protoc 3.20+ form' if done else 'in the protoc 3.20+ form already'}")
        sys.exit(0)
    if len(sys.argv) < 5 or sys.argv[1] != "header-guard":
        sys.exit("usage: python -m layers.caffe_build header-guard BUILD_DIR REPORT ALLOWED_ROOT...\n"
                 "       python -m layers.caffe_build modernize-pb2 FILE [PROTOC_VERSION]")
    sys.exit(header_guard(Path(sys.argv[2]), sys.argv[4:], Path(sys.argv[3])))
