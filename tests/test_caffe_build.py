"""The project's Caffe build: pycaffe (with patch 0012's borrowed blob memory), the layer types the nets use,
Caffe's own tests of those layers, and a net with this repo's Python layers trained by the caffe tool and by
pycaffe."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, caffe_env, caffe_home, run_caffe_gtests
from layers.caffe_build import (
    describe_gpu_code,
    foreign_cuda_headers,
    header_guard,
    modern_pb2_source,
    modernize_pb2,
    runs_on,
)

LAYER_TYPES = ["Convolution", "Pooling", "BatchNorm", "Scale", "InnerProduct", "ReLU", "Dropout", "Concat",
               "Softmax", "EuclideanLoss", "Reshape", "Python", "Input", "Split"]


def test_pycaffe_imports_with_layer_types():
    import caffe

    assert caffe.__version__.startswith("1.0")
    missing = set(LAYER_TYPES) - set(caffe.layer_type_list())
    assert not missing


def needed(path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)


def test_libcaffe_holds_no_python_and_the_two_programs_that_embed_it_do():
    """Patch 0010: the Python layer's creator lives in the caffe tool and in _caffe.so, so libcaffe links no
    libpython and no Boost.Python (tools/build_pycaffe.sh compiles those two for another Python against it)."""
    home = caffe_home()
    lib = needed(home / "lib" / "libcaffe.so")
    assert lib and not [n for n in lib if n.startswith(("libpython", "libboost_python"))], lib
    pycaffe = next(home.glob("lib/python3*/dist-packages/caffe/_caffe.so"))
    for program in (home / "bin" / "caffe", pycaffe):
        names = needed(program)
        assert any(n.startswith("libboost_python3") for n in names), (program, names)
    assert any(n.startswith("libpython3") for n in needed(home / "bin" / "caffe"))


def test_a_blob_borrows_an_arrays_memory(tmp_path):
    """Patch 0012, by hand: a net y = 2x whose input blob borrows an array in an anonymous shared mapping reads
    that array, writes through it, and follows later changes to it without a copy; a wrong dtype, count or layout,
    or no array at all, is a ValueError; pin_host_memory says False where there is no card (this CPU build)."""
    import mmap

    import caffe

    net_file = tmp_path / "twice.prototxt"
    net_file.write_text('layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }\n'
                        'layer { name: "y" type: "Scale" bottom: "x" top: "y" param { lr_mult: 0 } '
                        'scale_param { filler { type: "constant" value: 2 } } }\n')
    net = caffe.Net(str(net_file), caffe.TEST)
    memory = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_SHARED)
    x = np.ndarray((2, 3), np.float32, buffer=memory)
    x[...] = [[0, 1, 2], [3, 4, 5]]
    net.blobs["x"].borrow_data(x)
    assert net.blobs["x"].data.ctypes.data == x.ctypes.data
    assert net.forward()["y"].tolist() == [[0, 2, 4], [6, 8, 10]]
    x[0, 0] = 10
    assert net.forward()["y"][0].tolist() == [20, 2, 4]
    net.blobs["x"].data[1, 2] = -1  # through the blob, into the array
    assert x[1, 2] == -1
    for wrong in (np.zeros((2, 3)), np.zeros((2, 2), np.float32), np.zeros((3, 2), np.float32).T, [0.0] * 6):
        with pytest.raises(ValueError, match="Blob.borrow_data"):
            net.blobs["x"].borrow_data(wrong)
    assert caffe._caffe.pin_host_memory(memory) is False and caffe._caffe.unpin_host_memory(memory) is False


def test_caffe_tool_runs_from_the_venv():
    out = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "--version"], capture_output=True, text=True,
                         env=caffe_env(), check=True)
    assert "caffe version 1.0.0" in (out.stdout + out.stderr)


def _omp_spin_count(cmd, **env) -> str:
    """The spin count libgomp in the process `cmd` runs with, as libgomp itself reports it when it loads
    (OMP_DISPLAY_ENV=VERBOSE): 300000 by default, 0 under OMP_WAIT_POLICY=PASSIVE, 3e10 ACTIVE, else GOMP_SPINCOUNT."""
    run_env = {k: v for k, v in caffe_env().items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(cmd, capture_output=True, text=True, env={**run_env, "OMP_DISPLAY_ENV": "VERBOSE", **env},
                         cwd=REPO, timeout=120, check=True)
    m = re.search(r"GOMP_SPINCOUNT = '(\d+)'", out.stdout + out.stderr)
    assert m, f"{cmd}: libgomp did not report its settings:\n{out.stderr[-2000:]}"
    return m.group(1)


def test_caffe_openmp_threads_sleep_soon_when_idle_unless_the_user_chose():
    """Idle OpenMP threads that spin take a core from the data layer's workers and other processes (1.9x slower
    training beside one busy core, docs/benchmarks.md). The raw binary spins 300000 rounds; the venv's caffe
    wrapper 1000, and so does pycaffe in the venv's Python (its start-up hook) and pycaffe imported through
    `layers` in another Python (here: the hook's setting taken back first); a user's own choice stands."""
    binary = str(caffe_home() / "bin" / "caffe")
    wrapper = str(REPO / ".venv" / "bin" / "caffe")
    pycaffe = [sys.executable, "-c", "import caffe"]
    assert _omp_spin_count([binary, "--version"], LD_LIBRARY_PATH=str(caffe_home() / "lib")) == "300000"
    for cmd in ([wrapper, "--version"], pycaffe):
        assert _omp_spin_count(cmd) == "1000"
        assert _omp_spin_count(cmd, OMP_WAIT_POLICY="ACTIVE") == "30000000000"
        assert _omp_spin_count(cmd, OMP_WAIT_POLICY="PASSIVE") == "0"
        assert _omp_spin_count(cmd, GOMP_SPINCOUNT="5") == "5"
    no_hook = "import os; os.environ.pop('GOMP_SPINCOUNT'); import layers.deploy"
    assert _omp_spin_count([sys.executable, "-c", no_hook]) == "1000"


def test_caffe_own_layer_tests_pass():
    """Caffe's gtest files for every layer type the nets use, the SGD solver and the math functions
    (third_party/caffe/build_options.env)."""
    subset = (caffe_home() / "share" / "caffe_layer_tests.txt").read_text().strip()
    assert "batch_norm_layer" in subset and "euclidean_loss_layer" in subset and "gradient_based_solver" in subset
    code, log, ran, passed = run_caffe_gtests()
    assert code == 0, log[-3000:]
    assert ran == passed and ran > 500, log[-2000:]


def test_caffe_gtests_leave_no_folders_in_tmpdir(tmp_path):
    """Caffe's snapshot tests make a caffe_test.* folder in TMPDIR per case and never remove it (hundreds a run of
    the whole set); run_caffe_gtests gives them a folder of their own inside TMPDIR and removes it."""
    from layers.caffe_build import run_caffe_gtests as run

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    r = run(caffe_home(), "SGDSolverTest/0.TestSnapshot*", env={**caffe_env(), "TMPDIR": str(tmpdir)}, timeout=300)
    assert r.returncode == 0 and r.ran == r.passed == 2, r.log[-2000:]
    assert sorted(p.name for p in tmpdir.iterdir()) == []


def test_caffe_own_python_layer_tests_pass(tmp_path):
    import caffe

    test_file = caffe_home() / "share" / "caffe_python_tests" / "test_python_layer.py"
    # TMPDIR: its phase test writes a net file there and leaves it
    out = subprocess.run([sys.executable, "-m", "unittest", "-v", str(test_file)], capture_output=True, text=True,
                         cwd=test_file.parent, env={**caffe_env(), "TMPDIR": str(tmp_path)})
    assert out.returncode == 0 and "OK" in out.stderr, out.stderr[-2000:]
    assert caffe is not None


SOLVER = REPO / "tests" / "data" / "tiny_solver.prototxt"  # constant input -> 2 joints x 16 classes, this repo's
# SoftLabelTargets and SoftLabelCrossEntropyLoss: the loss must fall as the logits fit the soft labels.


def test_python_layer_net_trains_with_caffe_tool():
    """As the README's check: `.venv/bin/caffe train -solver tests/data/tiny_solver.prototxt` from the repo root."""
    out = subprocess.run([".venv/bin/caffe", "train", "-solver", "tests/data/tiny_solver.prototxt"], cwd=REPO,
                         capture_output=True, text=True, env={**caffe_env(), "GLOG_minloglevel": "0"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"Iteration \d+ .*loss = ([0-9.e+-]+)", out.stderr)]
    assert len(losses) >= 10 and losses[-1] < 0.5 * losses[0], losses


def test_python_layer_net_trains_with_pycaffe(monkeypatch):
    import caffe

    caffe.set_mode_cpu()
    monkeypatch.chdir(REPO)  # the solver names its net relative to the repo root
    solver = caffe.SGDSolver(str(SOLVER))
    first = None
    for _ in range(20):
        solver.step(1)
        first = first if first is not None else float(solver.net.blobs["loss"].data[0])
    assert float(solver.net.blobs["loss"].data[0]) < 0.5 * first
    assert np.isfinite(solver.net.blobs["loss"].data).all()


def compile_with_deps(tmp_path, *include_dirs) -> Path:
    """A real g++ compile of a file that includes thrust, with `include_dirs` first on the path, its dependency
    file written where CMake has it (-MD -MF <object>.d); returns the build folder."""
    src = tmp_path / "layer.cpp"
    src.write_text("#include <thrust/device_vector.h>\nint f() { return THRUST_TOY; }\n")
    build = tmp_path / "build"
    build.mkdir(exist_ok=True)
    flags = [f"-isystem{d}" for d in include_dirs]
    subprocess.run(
        ["g++", *flags, "-MD", "-MF", str(build / "layer.cpp.o.d"), "-c", str(src), "-o", str(build / "layer.cpp.o")],
        check=True,
        capture_output=True,
        text=True,
    )
    return build


def toolkit_with_thrust(root: Path) -> Path:
    (root / "include" / "thrust").mkdir(parents=True)
    (root / "include" / "thrust" / "device_vector.h").write_text("#define THRUST_TOY 1\n")
    return root


def test_the_header_guard_names_another_toolkits_thrust(tmp_path):
    """A route-13 build whose host compiler found thrust in another toolkit (as /usr/include/thrust from Debian's
    CUDA 11.8 was found before the route got its include/cccl) fails the guard, naming the header; the same
    compile with the route's own folder first passes. Real g++ dependency files, two toy toolkits."""
    own = toolkit_with_thrust(tmp_path / "cache" / "cuda-13")
    other = toolkit_with_thrust(tmp_path / "usr")
    mixed = compile_with_deps(tmp_path, other / "include", own / "include")
    report = tmp_path / "guard.txt"
    assert header_guard(mixed, [own, tmp_path / "build"], report) == 1
    assert f"{other}/include/thrust/device_vector.h" in report.read_text()
    assert report.read_text().startswith("checked 1 dependency files: 1 CUDA headers from outside")
    right = compile_with_deps(tmp_path, own / "include", other / "include")
    assert header_guard(right, [own, tmp_path / "build"], report) == 0
    assert report.read_text().startswith("checked 1 dependency files: 0 CUDA headers")


def test_the_header_guard_reads_nvcc_depend_files_and_ignores_caffes_own_headers(tmp_path):
    dep = tmp_path / "cuda_compile_1_generated_conv_layer.cu.o.depend"
    dep.write_text('SET(CUDA_NVCC_DEPEND\n "/opt/toolkit/include/cuda_runtime.h"\n "/usr/include/cub/cub.cuh"\n'
                   ' "/usr/include/stdio.h"\n "/work/src/include/caffe/util/cudnn.hpp"\n'
                   ' "/usr/include/boost/predef/language/cuda.h"\n)\n')
    found = foreign_cuda_headers([dep], ["/opt/toolkit", "/work"])
    assert found == {"/usr/include/cub/cub.cuh": str(dep)}


def test_the_boost_patch_takes_out_every_python_call_that_python_313_removed(tmp_path):
    """third_party/boost/patches/ (applied by tools/pycaffe_kit.sh to the kit's headers) applies to the system's
    Boost.Python 1.74 headers, which call PyEval_CallFunction / PyEval_CallMethod (gone in Python 3.13), and leaves
    none of those calls; the headers' other lines are untouched (counted independently of the patch). The kit is
    made where the system's Boost is 1.74 (Debian 12, as its Boost.Python sources are Debian 12's); elsewhere
    (Debian 13's Boost 1.83 no longer makes those calls) there is nothing to patch."""
    version = re.search(r'BOOST_LIB_VERSION "(\w+)"', Path("/usr/include/boost/version.hpp").read_text()).group(1)
    if version != "1_74":
        pytest.skip(f"the system's Boost is {version}; the patch is for Boost 1.74's headers, which the kit is made of")
    shutil.copytree("/usr/include/boost/python", tmp_path / "boost" / "python")
    removed = re.compile(r"\bPyEval_Call(Function|Method)\s*\(")
    def calls(pattern):
        return sum(len(pattern.findall(p.read_text())) for p in (tmp_path / "boost" / "python").rglob("*.hpp"))
    before = calls(removed)
    assert before == 4, before  # call.hpp 1, call_method.hpp 1, override.hpp 2 in Boost 1.74
    lines_before = sum(len(p.read_text().splitlines()) for p in (tmp_path / "boost").rglob("*.hpp"))
    for patch in sorted((REPO / "third_party" / "boost" / "patches").glob("*.patch")):
        with patch.open() as f:
            subprocess.run(["patch", "-d", str(tmp_path), "-p1", "--forward", "--quiet"], stdin=f, check=True)
    assert calls(removed) == 0
    assert calls(re.compile(r"\bPyObject_Call(Function|Method)\s*\(")) == before
    assert sum(len(p.read_text().splitlines()) for p in (tmp_path / "boost").rglob("*.hpp")) == lines_before


# ---- caffe_pb2 from a protoc older than 3.20 (Ubuntu 22.04's protoc 3.12) -------------------------------------
def legacy_pb2(name: str, package: str, serialized: bytes, body: str = "") -> str:
    """A _pb2 module in the form protoc before 3.20 writes (its header and FileDescriptor call as protoc 3.12
    wrote caffe_pb2 on Ubuntu 22.04), with `body` after it."""
    return ("# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  DO NOT EDIT!\n"
            f"# source: {name}\n\nfrom google.protobuf import descriptor as _descriptor\n"
            "from google.protobuf import message as _message\nfrom google.protobuf import reflection as _reflection\n"
            "from google.protobuf import symbol_database as _symbol_database\n"
            "# @@protoc_insertion_point(imports)\n\n_sym_db = _symbol_database.Default()\n\n\n"
            f"DESCRIPTOR = _descriptor.FileDescriptor(\n  name={name!r},\n  package={package!r},\n  syntax='proto2',\n"
            "  serialized_options=None,\n  create_key=_descriptor._internal_create_key,\n"
            f"  serialized_pb={serialized!r}\n)\n" + body)


def toy_proto() -> bytes:
    from google.protobuf import descriptor_pb2
    f = descriptor_pb2.FileDescriptorProto(name="toy/toy.proto", package="toy", syntax="proto2")
    m = f.message_type.add(name="Point")
    m.field.add(name="x", number=1, type=2, label=1, default_value="1.5")  # optional float x = 1 [default = 1.5]
    e = f.enum_type.add(name="Phase")
    e.value.add(name="TRAIN", number=0)
    e.value.add(name="TEST", number=1)
    return f.SerializeToString()


TOY_LEGACY_BODY = """
_POINT = _descriptor.Descriptor(
  name='Point', full_name='toy.Point', filename=None, file=DESCRIPTOR, containing_type=None,
  create_key=_descriptor._internal_create_key, fields=[], extensions=[], nested_types=[], enum_types=[],
  serialized_options=None, is_extendable=False, syntax='proto2', extension_ranges=[], oneofs=[],
)
Point = _reflection.GeneratedProtocolMessageType('Point', (_message.Message,), {'DESCRIPTOR': _POINT})
"""


def run_module(path: Path, code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter of this venv (its own descriptor pool) with the module at `path` imported as m."""
    prog = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('m', {str(path)!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n" + code)
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120)


def test_a_pb2_module_from_protoc_before_3_20_is_refused_by_the_venvs_protobuf_and_works_rewritten(tmp_path):
    """The failure Ubuntu 22.04's set-up met (its protoc 3.12's caffe_pb2 under the pinned protobuf 6), on a toy
    .proto: the old form does not import; the rewritten one does, with the field's default and the enum's values
    as the .proto says (not as the rewrite computes them)."""
    legacy = tmp_path / "toy_pb2.py"
    legacy.write_text(legacy_pb2("toy/toy.proto", "toy", toy_proto(), TOY_LEGACY_BODY))
    refused = run_module(legacy, "")
    assert refused.returncode != 0 and "Descriptors cannot be created directly" in refused.stderr, refused.stderr
    assert modernize_pb2(legacy, "3.12.4")
    works = run_module(legacy, "print(m.Point().x, m.TRAIN, m.TEST, m.Point(x=2.25).SerializeToString().hex())")
    assert works.returncode == 0, works.stderr
    assert works.stdout.split() == ["1.5", "0", "1", "0d00001040"]  # field 1, fixed32 (tag 0x0d): 2.25f LE
    assert "protoc 3.12.4 wrote the pre-3.20 form" in legacy.read_text()
    importing = legacy_pb2("toy/toy.proto", "toy", toy_proto()).replace(
        "  serialized_options=None,", "  serialized_options=None,\n  dependencies=[other__pb2.DESCRIPTOR,],")
    with pytest.raises(ValueError, match="imports other .proto files"):
        modern_pb2_source(importing)


def test_the_rewritten_caffe_pb2_reads_and_writes_nets_as_the_builds_own(tmp_path):
    """caffe.proto's serialized descriptor from this build's caffe_pb2 (a protoc 3.20+ module), wrapped in the old
    form and rewritten, parses a committed net and a solver to the same bytes and defaults as the build's own
    module; the build's own module is left as it is."""
    own = next((caffe_home() / "lib").glob("python3*/dist-packages/caffe/proto/caffe_pb2.py"))
    serialized = run_module(own, "print(m.DESCRIPTOR.serialized_pb.hex())")
    legacy = tmp_path / "caffe_pb2.py"
    legacy.write_text(legacy_pb2("caffe/proto/caffe.proto", "caffe", bytes.fromhex(serialized.stdout.strip())))
    copy = tmp_path / "own_pb2.py"
    shutil.copy(own, copy)
    assert not modernize_pb2(copy) and copy.read_bytes() == own.read_bytes()
    assert modernize_pb2(legacy)
    net, solver = REPO / "prototxt/nets/walking_train.prototxt", REPO / "prototxt/solver_walking.prototxt"
    probe = ("from google.protobuf import text_format\nimport hashlib\n"
             f"net = text_format.Parse(open({str(net)!r}).read(), m.NetParameter())\n"
             f"sol = text_format.Parse(open({str(solver)!r}).read(), m.SolverParameter())\n"
             "print(hashlib.sha256(net.SerializeToString()).hexdigest(), len(net.layer), m.TRAIN, m.TEST)\n"
             "print(sol.delta, sol.momentum2, m.BatchNormParameter().eps, m.SolverParameter.GPU)\n"
             "print(sorted(m.DESCRIPTOR.message_types_by_name))")
    a, b = run_module(own, probe), run_module(legacy, probe)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout and int(a.stdout.split()[1]) > 50


# What a CUDA build holds by default (third_party/caffe/cuda-*.lock): sm_80 and sm_90 machine code, compute_90 PTX
DEFAULT_GPU_CODE = {("ELF", 80), ("ELF", 90), ("PTX", 90)}


@pytest.mark.parametrize("capability, runs", [
    ((8, 0), True), ((8, 6), True), ((8, 9), True),  # an A100, an RTX 3090, an L4: sm_80 machine code
    ((9, 0), True),                                   # an H100 or H200: sm_90
    ((10, 0), True), ((12, 0), True),                 # Blackwell: the driver compiles compute_90's PTX
    ((7, 5), False), ((7, 0), False), ((6, 1), False),  # a T4, a V100, a GTX 1080: older than any of it
])
def test_which_cards_run_the_default_gpu_code(capability, runs):
    """NVIDIA's rules (CUDA C++ Programming Guide, binary and PTX compatibility): a cubin for X.y runs on X.z with
    z >= y only; PTX for X.y on any card of X.y or higher."""
    assert runs_on(DEFAULT_GPU_CODE, capability) is runs


def test_machine_code_does_not_run_on_a_lower_minor_or_another_major_and_ptx_not_below_itself():
    assert not runs_on({("ELF", 86)}, (8, 0)) and runs_on({("ELF", 86)}, (8, 9))
    assert not runs_on({("ELF", 80), ("ELF", 90)}, (12, 0))  # no PTX: nothing for Blackwell
    assert not runs_on({("PTX", 90)}, (8, 6)) and runs_on({("PTX", 75)}, (8, 6))
    assert runs_on({("ELF", 120)}, (12, 1)) and not runs_on({("ELF", 121)}, (12, 0))
    assert not runs_on(set(), (9, 0))


def test_gpu_code_reads_as_people_write_it():
    assert describe_gpu_code(DEFAULT_GPU_CODE) == "sm_80, sm_90, PTX compute_90"
    assert describe_gpu_code({("ELF", 75)}) == "sm_75"
    assert describe_gpu_code(set()) == "no GPU code"
