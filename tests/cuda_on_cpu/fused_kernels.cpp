// Launches the kernels of third_party/caffe/patches-cuda/0009 on the CPU (cuda_on_cpu.hpp) with the grids the
// patched layers use, on arrays read from raw files, and writes the results beside them.
// tests/test_fused_kernels.py extracts the kernels from the patch into the three .inc files and builds this.
//
//   fused_kernels KERNEL f32|f64 ascending|descending|shuffled SEED GRID DIR DIMS...
//
// GRID 0 takes the layer's own grid; DIR holds the inputs as raw arrays (x.raw, ...) and gets the outputs.
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "cuda_on_cpu.hpp"

namespace caffe {
namespace batch_norm_cu {
#include "batch_norm_kernels.inc"
}  // namespace batch_norm_cu
namespace bias_cu {
#include "bias_kernels.inc"
}  // namespace bias_cu
namespace scale_cu {
#include "scale_kernels.inc"
}  // namespace scale_cu
}  // namespace caffe

namespace {

std::string dir;

template <typename Dtype>
std::vector<Dtype> read(const char* name, size_t count) {
  std::ifstream in(dir + "/" + name + ".raw", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());  // none if missing
  if (bytes.size() != count * sizeof(Dtype)) {
    std::fprintf(stderr, "%s.raw: %zu bytes, expected %zu\n", name, bytes.size(), count * sizeof(Dtype));
    std::exit(2);
  }
  std::vector<Dtype> values(count);  // exactly count: a read past the end is the sanitizer's to catch
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

template <typename Dtype>
void write(const char* name, const std::vector<Dtype>& values) {
  std::ofstream out(dir + "/" + name + ".raw", std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(Dtype));
  if (!out) cuda_on_cpu::fail("cannot write an output", 0);
}

template <typename Dtype>
int run(const std::string& kernel, cuda_on_cpu::Order order, unsigned seed, int grid, int argc, char** dims) {
  using namespace caffe;  // NOLINT
  const int block = CAFFE_CUDA_NUM_THREADS;
  auto dim = [&](int i) { return i < argc ? std::atoi(dims[i]) : -1; };
  auto go = [&](int layer_grid, auto body) {
    cuda_on_cpu::launch(dim3(grid > 0 ? grid : layer_grid), dim3(block), order, seed, body);
  };
  const int num = dim(0), channels = dim(1), spatial = dim(2), flag = dim(3);
  const size_t count = static_cast<size_t>(num) * channels * spatial;
  if (kernel == "stats") {
    auto x = read<Dtype>("x", count);
    std::vector<Dtype> mean(channels), variance(channels);
    go(batch_norm_cu::channel_blocks(channels), [&] {
      batch_norm_cu::BatchNormChannelStats<Dtype>(num, channels, spatial, x.data(), mean.data(), variance.data());
    });
    write("mean", mean);
    write("variance", variance);
  } else if (kernel == "normalize") {  // flag 1: top is bottom (in place)
    auto x = read<Dtype>("x", count), mean = read<Dtype>("mean", channels), stdev = read<Dtype>("std", channels);
    std::vector<Dtype> y(count), x_norm(count);
    Dtype* top = flag == 1 ? x.data() : y.data();
    go(CAFFE_GET_BLOCKS(count), [&] {
      batch_norm_cu::BatchNormNormalize<Dtype>(count, channels, spatial, x.data(), mean.data(), stdev.data(), top,
                                               x_norm.data());
    });
    write("y", flag == 1 ? x : y);
    write("x_norm", x_norm);
  } else if (kernel == "grad_sums") {
    auto dy = read<Dtype>("dy", count), y = read<Dtype>("y", count);
    std::vector<Dtype> sum_dy(channels), sum_dy_y(channels);
    go(batch_norm_cu::channel_blocks(channels), [&] {
      batch_norm_cu::BatchNormGradientSums<Dtype>(num, channels, spatial, dy.data(), y.data(), sum_dy.data(),
                                                  sum_dy_y.data());
    });
    write("sum_dy", sum_dy);
    write("sum_dy_y", sum_dy_y);
  } else if (kernel == "backward_apply") {  // flag 1: bottom diff is top diff (in place)
    auto dy = read<Dtype>("dy", count), y = read<Dtype>("y", count);
    auto sum_dy = read<Dtype>("sum_dy", channels), sum_dy_y = read<Dtype>("sum_dy_y", channels);
    auto stdev = read<Dtype>("std", channels);
    std::vector<Dtype> dx(count);
    Dtype* bottom = flag == 1 ? dy.data() : dx.data();
    go(CAFFE_GET_BLOCKS(count), [&] {
      batch_norm_cu::BatchNormBackwardApply<Dtype>(count, channels, spatial, Dtype(1. / (num * spatial)), dy.data(),
                                                   y.data(), sum_dy.data(), sum_dy_y.data(), stdev.data(), bottom);
    });
    write("dx", flag == 1 ? dy : dx);
  } else if (kernel == "backward_global") {  // flag 1: in place
    auto dy = read<Dtype>("dy", count), stdev = read<Dtype>("std", channels);
    std::vector<Dtype> dx(count);
    Dtype* bottom = flag == 1 ? dy.data() : dx.data();
    go(CAFFE_GET_BLOCKS(count), [&] {
      batch_norm_cu::BatchNormBackwardGlobal<Dtype>(count, channels, spatial, dy.data(), stdev.data(), bottom);
    });
    write("dx", flag == 1 ? dy : dx);
  } else if (kernel == "bias_reduce") {  // dims: outer, bias_dim, inner, accum
    const int outer = num, bias_dim = channels, inner = spatial;
    auto top_diff = read<Dtype>("top_diff", count), bias_diff = read<Dtype>("bias_diff", bias_dim);
    go(bias_dim < 65535 ? bias_dim : 65535, [&] {
      bias_cu::BiasBackwardReduce<Dtype>(outer, bias_dim, inner, top_diff.data(), flag == 1, bias_diff.data());
    });
    write("bias_diff_out", bias_diff);
  } else if (kernel == "scale_reduce") {  // dims: outer, scale_dim, inner, which (1 scale, 2 bias, 3 both)
    const int outer = num, scale_dim = channels, inner = spatial;
    auto top_diff = read<Dtype>("top_diff", count), x = read<Dtype>("x", count);
    auto scale_diff = read<Dtype>("scale_diff", scale_dim), bias_diff = read<Dtype>("bias_diff", scale_dim);
    go(scale_dim < 65535 ? scale_dim : 65535, [&] {
      scale_cu::ScaleBackwardReduce<Dtype>(outer, scale_dim, inner, top_diff.data(), x.data(),
                                           (flag & 1) ? scale_diff.data() : nullptr,
                                           (flag & 2) ? bias_diff.data() : nullptr);
    });
    write("scale_diff_out", scale_diff);
    write("bias_diff_out", bias_diff);
  } else {
    std::fprintf(stderr, "unknown kernel %s\n", kernel.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s KERNEL f32|f64 ascending|descending|shuffled SEED GRID DIR DIMS...\n", argv[0]);
    return 2;
  }
  const std::string kernel = argv[1], type = argv[2], order_name = argv[3];
  const cuda_on_cpu::Order order = order_name == "descending" ? cuda_on_cpu::Order::descending
                                   : order_name == "shuffled" ? cuda_on_cpu::Order::shuffled
                                                              : cuda_on_cpu::Order::ascending;
  const unsigned seed = std::atoi(argv[4]);
  const int grid = std::atoi(argv[5]);
  dir = argv[6];
  if (type == "f64") return run<double>(kernel, order, seed, grid, argc - 7, argv + 7);
  return run<float>(kernel, order, seed, grid, argc - 7, argv + 7);
}
