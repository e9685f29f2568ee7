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
