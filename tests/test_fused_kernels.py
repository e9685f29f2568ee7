"""The GPU kernels of third_party/caffe/patches-cuda/0009 (BatchNorm's forward and backward, the Scale and bias
gradients), checked without a card. The kernels' source is cut from the patch and run on the CPU by a small launch
emulator (tests/cuda_on_cpu/: a block's threads are fibers that switch at __syncthreads()), under AddressSanitizer
where it runs, with the grids the patched layers launch. Checked against NumPy references written here from the layers'
definitions and a numerical gradient. Each result must be the same bits under three thread orders and several
grids, so no thread reads what another may still be writing. This does not replace Caffe's GPU gtests on a card
(warps, the card's compiler, speed): tools/device_check.sh runs those."""
from __future__ import annotations

import functools
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import REPO, caffe_home

PATCH = REPO / "third_party" / "caffe" / "patches-cuda" / "0009-gpu-fused-bias-batchnorm.patch"
EMULATOR = REPO / "tests" / "cuda_on_cpu"
BATCH_NORM_CU = "src/caffe/layers/batch_norm_layer.cu"
BIAS_CU = "src/caffe/layers/bias_layer.cu"
SCALE_CU = "src/caffe/layers/scale_layer.cu"
EPS = 1e-5  # Caffe's BatchNorm default
OUTPUTS = {"stats": ("mean", "variance"), "normalize": ("y", "x_norm"), "grad_sums": ("sum_dy", "sum_dy_y"),
           "backward_apply": ("dx",), "backward_global": ("dx",), "bias_reduce": ("bias_diff_out",),
           "scale_reduce": ("scale_diff_out", "bias_diff_out")}
# (N, C, spatial): fewer elements per channel than a block's 512 threads; more than its 8 loads a thread (4400 > 8 *
# 512: each thread adds two groups of loads); a fully connected layer's blob at the paper's batch (spatial 1: a
# channel's elements are C apart).
SHAPES = [(5, 3, 7), (4, 2, 1100), (128, 37, 1)]


def kernel_source(patch: str, path: str) -> str:
    """What the patch adds to `path` in its hunks that define __global__ kernels (each such hunk adds whole
    top-level definitions: helpers, kernels), #include lines left out."""
    diff = patch.split(f"+++ b/{path}\n", 1)[1].split("\ndiff --git ", 1)[0]
    lines = []
    for hunk in re.split(r"^@@ [^\n]*\n", diff, flags=re.M)[1:]:
        if "__global__" in hunk:
            lines += [line[1:] for line in hunk.splitlines() if line.startswith("+") and "#include" not in line]
    return "\n".join(lines) + "\n"


def sources(patch: str) -> list[str]:
    """The kernels of batch_norm_layer.cu, bias_layer.cu and scale_layer.cu, as build() takes them."""
    return [kernel_source(patch, path) for path in (BATCH_NORM_CU, BIAS_CU, SCALE_CU)]


SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def probe_runs(folder, flags) -> bool:
    (folder / "probe.cpp").write_text("int main() { return 0; }\n")
    built = subprocess.run(["g++", *flags, str(folder / "probe.cpp"), "-o", str(folder / "probe")],
                           capture_output=True)
    try:
        return built.returncode == 0 and subprocess.run([str(folder / "probe")], capture_output=True).returncode == 0
    except PermissionError:  # a temporary folder mounted noexec
        return False


@functools.cache
def sanitizers_run(folder) -> bool:
    """Whether a program built with SANITIZE runs here (an older AddressSanitizer fails on kernels that randomise
    more address bits, for one); skips where no program built here runs at all."""
    if not probe_runs(folder, []):
        pytest.skip(f"a program g++ builds in {folder} does not run (no g++ toolchain, or the folder is noexec)")
    return probe_runs(folder, SANITIZE)


def build(folder, batch_norm: str, bias: str, scale: str):
    if shutil.which("g++") is None:
        pytest.skip("no g++ here")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch_norm_kernels.inc").write_text(batch_norm)
    (folder / "bias_kernels.inc").write_text(bias)
    (folder / "scale_kernels.inc").write_text(scale)
    binary = folder / "fused_kernels"
    # -Wno-unknown-pragmas: `#pragma unroll` is nvcc's; -Wno-sign-compare: threadIdx.x is unsigned, as in CUDA
    out = subprocess.run(["g++", "-std=c++17", "-O1", "-g", *(SANITIZE if sanitizers_run(folder.parent) else []),
                          "-Wall", "-Werror", "-Wno-sign-compare", "-Wno-unused-function", "-Wno-unknown-pragmas",
                          f"-I{EMULATOR}", f"-I{folder}", str(EMULATOR / "fused_kernels.cpp"), "-o", str(binary)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return binary


@pytest.fixture(scope="module")
def patch_text():
    return PATCH.read_text()


@pytest.fixture(scope="module")
def kernels(tmp_path_factory, patch_text):
    return build(tmp_path_factory.mktemp("fused"), *sources(patch_text))



def launch(binary, tmp_path, kernel, dims, inputs, order="ascending", seed=0, grid=0, check=True):
    """Runs one kernel as the layer launches it (grid 0) or on another grid; returns its outputs, or the
    finished process where check is False."""
    dtype = next(iter(inputs.values())).dtype
    folder = tmp_path / f"{kernel}-{order}-{seed}-{grid}"
    folder.mkdir(exist_ok=True)
    for name, array in inputs.items():
        assert array.dtype == dtype
        array.tofile(folder / f"{name}.raw")
    out = subprocess.run([str(binary), kernel, "f64" if dtype == np.float64 else "f32", order, str(seed), str(grid),
                          str(folder), *map(str, dims)], capture_output=True, text=True, timeout=120)
    if not check:
        return out
    assert out.returncode == 0, out.stderr
    return {name: np.fromfile(folder / f"{name}.raw", dtype) for name in OUTPUTS[kernel]}


def batch_norm(x):
    """Caffe's BatchNorm in training, from its definition: per channel over N and space, biased variance."""
    mean = x.mean(axis=(0, 2), keepdims=True)
    var = x.var(axis=(0, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + EPS)


def test_the_emulator_launches_as_caffe_and_the_patch_launches_what_is_run_here(patch_text):
    """The emulator's block size and kernel loop are Caffe's (read from the installed header), and the patched
    layers launch each kernel on the grid fused_kernels.cpp gives it."""
    header = (caffe_home() / "include" / "caffe" / "util" / "device_alternate.hpp").read_text()
    assert "const int CAFFE_CUDA_NUM_THREADS = 512;" in header
    assert re.search(r"for \(int i = blockIdx\.x \* blockDim\.x \+ threadIdx\.x; \\\s*i < \(n\); \\\s*"
                     r"i \+= blockDim\.x \* gridDim\.x\)", header), header
    launches = re.findall(r"^\+\s+(\w+)<Dtype>.*\n\+\s+<<<([^,]+), (\w+)>>>", patch_text, re.M)
    assert sorted(launches) == sorted([
        ("BatchNormChannelStats", "channel_blocks(channels_)", "CAFFE_CUDA_NUM_THREADS"),
        ("BatchNormNormalize", "CAFFE_GET_BLOCKS(count)", "CAFFE_CUDA_NUM_THREADS"),
        ("BatchNormBackwardGlobal", "CAFFE_GET_BLOCKS(count)", "CAFFE_CUDA_NUM_THREADS"),
        ("BatchNormGradientSums", "channel_blocks(channels_)", "CAFFE_CUDA_NUM_THREADS"),
        ("BatchNormBackwardApply", "CAFFE_GET_BLOCKS(count)", "CAFFE_CUDA_NUM_THREADS"),
        ("BiasBackwardReduce", "blocks", "CAFFE_CUDA_NUM_THREADS"),
        ("ScaleBackwardReduce", "blocks", "CAFFE_CUDA_NUM_THREADS"),
        ("ScaleForward", "CAFFE_GET_BLOCKS(count)", "CAFFE_CUDA_NUM_THREADS")]), launches
    assert "const int blocks = bias_dim_ < 65535 ? bias_dim_ : 65535;" in patch_text
    assert "const int blocks = scale_dim_ < 65535 ? scale_dim_ : 65535;" in patch_text


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_forward_is_its_definition(kernels, tmp_path, shape, dtype):
    """The channel statistics, then (x - mean) / sqrt(var + eps) into top and x_norm, also in place."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3 + rng.standard_normal((1, shape[1], 1)) * 5).astype(dtype)
    x64 = x.astype(np.float64)
    stats = launch(kernels, tmp_path, "stats", shape, {"x": x})
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats["mean"], x64.mean(axis=(0, 2)), **tolerance)
    np.testing.assert_allclose(stats["variance"], x64.var(axis=(0, 2)), **tolerance)
    std = np.sqrt(stats["variance"] + dtype(EPS)).astype(dtype)  # the layer's add_scalar and sqrt between them
    inputs = {"x": x, "mean": stats["mean"], "std": std}
    apart = launch(kernels, tmp_path, "normalize", shape, inputs)
    np.testing.assert_allclose(apart["y"].reshape(shape), batch_norm(x64), **tolerance)
    assert np.array_equal(apart["y"], apart["x_norm"])
    in_place = launch(kernels, tmp_path, "normalize", (*shape, 1), inputs)
    assert np.array_equal(in_place["y"], apart["y"]) and np.array_equal(in_place["x_norm"], apart["x_norm"])


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_backward_is_the_numerical_gradient(kernels, tmp_path, shape):
    """The forward's kernels then the backward's, in double, against central differences of sum(dE/dY * Y(x))
    through the definition above; in place gives the same bits."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) * 2 + 1
    dy = rng.standard_normal(shape)
    stats = launch(kernels, tmp_path, "stats", shape, {"x": x})
    std = np.sqrt(stats["variance"] + EPS)
    y = launch(kernels, tmp_path, "normalize", shape, {"x": x, "mean": stats["mean"], "std": std})["x_norm"]
    sums = launch(kernels, tmp_path, "grad_sums", shape, {"dy": dy, "y": y})
    inputs = {"dy": dy, "y": y, **sums, "std": std}
    dx = launch(kernels, tmp_path, "backward_apply", (*shape, 0), inputs)["dx"].reshape(shape)
    numerical = np.zeros(shape)
    h = 1e-6
    for i in np.ndindex(*shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numerical[i] = (np.sum(dy * batch_norm(up)) - np.sum(dy * batch_norm(down))) / (2 * h)
    np.testing.assert_allclose(dx, numerical, rtol=1e-6, atol=1e-7)
    in_place = launch(kernels, tmp_path, "backward_apply", (*shape, 1), inputs)["dx"]
    assert np.array_equal(in_place.reshape(shape), dx)


def test_batch_norm_backward_with_stored_statistics_divides_by_the_std(kernels, tmp_path):
    """use_global_stats: dE/dX = dE/dY / sqrt(var + eps), per channel; IEEE division, so exactly NumPy's."""
    shape = (6, 4, 50)
    rng = np.random.default_rng(3)
    dy = rng.standard_normal(shape).astype(np.float32)
    std = rng.uniform(0.5, 2, 4).astype(np.float32)
    for in_place in (0, 1):
        dx = launch(kernels, tmp_path, "backward_global", (*shape, in_place), {"dy": dy, "std": std})
        assert np.array_equal(dx["dx"].reshape(shape), dy / std[None, :, None])


@pytest.mark.parametrize("accumulate", [0, 1])
@pytest.mark.parametrize("shape", [(128, 40, 1), (3, 5, 700), (2, 1, 1)])
def test_the_bias_gradient_sums_the_batch_and_space(kernels, tmp_path, shape, accumulate):
    """BiasLayer's backward: bias_diff[c] (+)= the sum of the top diff over the outer and inner dimensions; added
    to the parameter's diff when it is the layer's own (accum), replacing it when the bias is a bottom."""
    rng = np.random.default_rng(4)
    top_diff = rng.standard_normal(shape)
    before = rng.standard_normal(shape[1])
    out = launch(kernels, tmp_path, "bias_reduce", (*shape, accumulate), {"top_diff": top_diff, "bias_diff": before})
    np.testing.assert_allclose(out["bias_diff_out"], top_diff.sum(axis=(0, 2)) + accumulate * before,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("which", [1, 2, 3])
@pytest.mark.parametrize("shape", [(128, 40, 1), (3, 5, 700), (1, 6, 300), (2, 1, 1)])
def test_the_scale_gradients_sum_dy_x_and_dy(kernels, tmp_path, shape, which):
    """ScaleLayer's backward for a learned scale, y = x * scale[c] + bias[c]: scale_diff[c] += the sum of dE/dY * X
    and bias_diff[c] += the sum of dE/dY over the outer and inner dimensions (which: 1 the scale's only, 2 the
    bias's only, 3 both); a diff not asked for is left as it was, to the bit."""
    rng = np.random.default_rng(8)
    top_diff, x = rng.standard_normal(shape), rng.standard_normal(shape) * 3 + 1
    scale_before, bias_before = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    out = launch(kernels, tmp_path, "scale_reduce", (*shape, which),
                 {"top_diff": top_diff, "x": x, "scale_diff": scale_before, "bias_diff": bias_before})
    for flag, name, before, total in ((1, "scale_diff_out", scale_before, (top_diff * x).sum(axis=(0, 2))),
                                      (2, "bias_diff_out", bias_before, top_diff.sum(axis=(0, 2)))):
        if which & flag:
            np.testing.assert_allclose(out[name], before + total, rtol=1e-12, atol=1e-12)
        else:
            assert out[name].tobytes() == before.tobytes()


def block_tree_sum(values):
    """A block's sum as the kernels order it, in the values' own precision: thread t adds elements t, t + 512, ...
    in turn, then the threads' sums are halved in a tree (t += t + s for s = 256, 128, ..., 1)."""
    threads = np.zeros(512, values.dtype)
    padded = np.concatenate([values, np.zeros(-len(values) % 512, values.dtype)])
    for row in padded.reshape(-1, 512):
        threads = threads + row
    s = 256
    while s:
        threads[:s] = threads[:s] + threads[s:2 * s]
        s //= 2
    return threads[0]


def test_the_channel_statistics_are_the_bits_of_the_plain_strided_order(kernels, tmp_path):
    """The loads are issued eight at a time, but each thread adds its elements in the order of the plain loop
    (k = t, t + 512, ...), and the block's tree then halves: float32 NumPy in that order gives the same bits (the
    statistics, and the Scale layer's bias sum)."""
    shape = (3, 2, 1500)  # 4500 elements a channel: two groups of loads for some threads, one for others
    x = (np.random.default_rng(7).standard_normal(shape) * 4 + 9).astype(np.float32)
    out = launch(kernels, tmp_path, "stats", shape, {"x": x})
    for c in range(shape[1]):
        values = x[:, c, :].reshape(-1)  # k = n * spatial + i
        mean = block_tree_sum(values) / np.float32(values.size)
        variance = block_tree_sum((values - mean) * (values - mean)) / np.float32(values.size)
        assert out["mean"][c].tobytes() == mean.tobytes() and out["variance"][c].tobytes() == variance.tobytes()
    zeros = np.zeros(shape[1], np.float32)
    sums = launch(kernels, tmp_path, "scale_reduce", (*shape, 2), {"top_diff": x, "x": x, "scale_diff": zeros,
                                                                    "bias_diff": zeros})["bias_diff_out"]
    assert sums.tobytes() == np.array([block_tree_sum(x[:, c, :].reshape(-1)) for c in range(shape[1])]).tobytes()


def test_every_result_is_the_same_bits_in_any_thread_order_and_on_any_grid(kernels, tmp_path):
    """Threads run ascending, descending or shuffled at each barrier; the grid is the layer's, one block, or
    two (a block then takes several channels). Any read of shared memory that a barrier does not order after its
    write would change the bits with the order; the docs' 'a run repeats bit for bit' holds for the order of the
    sums, which the grid does not change."""
    shape = (3, 5, 200)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) + 10).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    cases = [("stats", shape, {"x": x}), ("grad_sums", shape, {"dy": dy, "y": x}),
             ("bias_reduce", (*shape, 1), {"top_diff": dy, "bias_diff": x[0, :, 0].copy()}),
             ("scale_reduce", (*shape, 3), {"top_diff": dy, "x": x, "scale_diff": x[1, :, 0].copy(),
                                           "bias_diff": x[0, :, 0].copy()})]
    for kernel, dims, inputs in cases:
        first = None
        for order, seed in (("ascending", 0), ("descending", 0), ("shuffled", 1), ("shuffled", 2)):
            for grid in (0, 1, 2):
                out = launch(kernels, tmp_path, kernel, dims, inputs, order=order, seed=seed, grid=grid)
                if first is None:
                    first = out
                for name in out:
                    assert out[name].tobytes() == first[name].tobytes(), (kernel, order, seed, grid, name)


def test_the_emulator_catches_a_missing_barrier_a_divergent_barrier_and_a_read_past_the_end(tmp_path, patch_text):
    """The checks above can fail: the same kernels with one of the three faults each fail them."""
    batch_norm, bias, scale = sources(patch_text)
    shape = (3, 4, 200)
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32) + 3

    # block_sum without the barrier after reading the total: the next sum overwrites it while others read
    racy = batch_norm.replace("  const Dtype total = shared[0];\n  __syncthreads();\n",
                              "  const Dtype total = shared[0];\n")
    assert racy != batch_norm
    binary = build(tmp_path / "racy", racy, bias, scale)
    variance = [launch(binary, tmp_path, "stats", shape, {"x": x}, order=order)["variance"]
                for order in ("ascending", "descending")]
    assert not np.allclose(variance[0], x.astype(np.float64).var(axis=(0, 2)), rtol=1e-4) or not np.array_equal(
        *variance)

    # the bias sum's last barrier moved inside `if (threadIdx.x == 0)`: thread 0 waits where the others return
    divergent = bias.replace("partial[0];\n    }\n    __syncthreads();\n",
                             "partial[0];\n      __syncthreads();\n    }\n")
    assert divergent != bias
    out = launch(build(tmp_path / "divergent", batch_norm, divergent, scale), tmp_path, "bias_reduce", (*shape, 0),
                 {"top_diff": x, "bias_diff": np.zeros(4, np.float32)}, check=False)
    assert out.returncode != 0 and "reached by some of the block's threads while others returned" in out.stderr

    # one element too many per channel (not added, only read): the last channel reads past the blob
    past = batch_norm.replace("return k < per_channel ? x[", "return k <= per_channel ? x[")
    assert past != batch_norm
    binary = build(tmp_path / "past", past, bias, scale)
    if not sanitizers_run(tmp_path):
        pytest.skip("AddressSanitizer does not run here: reads past the end are not checked")
    out = launch(binary, tmp_path, "stats", shape, {"x": x}, check=False)
    assert out.returncode != 0 and "heap-buffer-overflow" in out.stderr, out.stderr[-2000:]
