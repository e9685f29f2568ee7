"""bench/measure.py: the FLOP counts the benchmark's limit rows divide by, on a net small enough to count by hand."""
from __future__ import annotations


def test_flops_of_a_convolution_and_an_inner_product_by_hand(tmp_path):
    import caffe
    from caffe import layers as L

    from bench.measure import forward_flops, training_flops

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    n.conv = L.Convolution(n.data, num_output=4, kernel_size=3, bias_term=False)  # 4 x 3x3x3 weights, 6x6 outputs
    n.fc = L.InnerProduct(n.conv, num_output=5, bias_term=False)  # 144 inputs -> 5
    (tmp_path / "net.prototxt").write_text(str(n.to_proto()))
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    conv, fc = 2 * (4 * 27) * 36, 2 * 144 * 5  # 7776 and 1440
    assert forward_flops(net) == conv + fc
    assert training_flops(net, "conv") == 3 * (conv + fc) - conv  # no gradient into the image
