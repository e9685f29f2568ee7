"""layers/torch_model.py: PoseNet built from layers/config.py with a trained net's weights as its state_dict
(tools/export.py --torch) gives pycaffe's outputs; skipped where torch is not installed (PARK3D_TORCH=1 bash
tools/setup.sh installs it)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SOFTMAX, assert_agree, lmdb_test_images, pycaffe_outputs

torch = pytest.importorskip("torch", reason="torch is optional: `PARK3D_TORCH=1 bash tools/setup.sh` installs it")


@pytest.mark.parametrize("variant", ["baseline", "both"])
def test_state_dict_gives_pycaffes_outputs(variant, trained_variants, lmdb_root, tmp_path):
    from conftest import EXPORT_WIDTH
    from data_prep.records import read_meta
    from layers.deploy import load_deploy_net
    from layers.torch_model import PoseNet
    from tools import export

    deploy, weights = trained_variants[variant]
    train = lmdb_root / "walking_train.lmdb"
    assert (
        export.main(
            [
                "--weights",
                str(weights),
                "--deploy",
                str(deploy),
                "--train-lmdb",
                str(train),
                "--bn-batches",
                "0",
                "--torch",
                str(tmp_path / "net.pt"),
            ]
        )
        == 0
    )
    net = PoseNet(variant, EXPORT_WIDTH)
    net.load_state_dict(torch.load(tmp_path / "net.pt"))
    net.eval()
    images, gt_mm = lmdb_test_images(lmdb_root)
    want = pycaffe_outputs(deploy, weights, images, read_meta(train)["mean_torso_lengths_mm"])
    with torch.no_grad():
        got = dict(
            zip(("softmax_2d", "pose3d", "pose3d_mm"), (t.double().numpy() for t in net(torch.from_numpy(images))))
        )
        logits, heads = net.train_outputs(torch.from_numpy(images[:4]))
    assert_agree(got, want, gt_mm)
    caffe_net, layout = load_deploy_net(deploy, weights, batch_size=4)
    caffe_net.blobs["data"].data[...] = images[:4]
    caffe_net.forward()
    assert np.abs(logits.numpy() - caffe_net.blobs["logits_2d"].data).max() <= SOFTMAX * 100
    for head, out in zip(layout.heads, heads):
        assert np.abs(out.numpy() - caffe_net.blobs[head].data).max() <= 1e-4


def test_folding_the_batch_norms_keeps_the_outputs():
    """layers.torch_model.fold_batch_norms (the peer's folded deploy net): with BatchNorm statistics and affine parts
    far from the identity, the folded net gives the net's own outputs, with no BatchNorm left."""
    from layers.torch_model import PoseNet, fold_batch_norms

    torch.manual_seed(3)
    net = PoseNet("both", 0.25, mean_torso_lengths=[100.0] * 6)
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(3, 3, 225, 225)
    with pytest.raises(ValueError, match="training mode"):
        fold_batch_norms(net)
    net.eval()
    with torch.no_grad():
        want = [t.double() for t in net(x)]
        got = [t.double() for t in fold_batch_norms(net)(x)]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    for g, w in zip(got, want):
        assert torch.allclose(g, w, rtol=1e-4, atol=1e-5), (g - w).abs().max()
