"""BatchNorm statistics re-estimated over the training set (layers/bn_stats.py): the stored statistics of the
first BatchNorm layer equal the mean of its input (conv1's output) over the training images, computed here
with NumPy from the net's own conv1, the weights untouched."""
from __future__ import annotations

import numpy as np

from conftest import REPO
from data_prep.records import read_meta


def test_reestimated_statistics_are_the_training_mean_of_the_layer_input(lmdb_root, tmp_path):
    import caffe

    from data_prep.batches import BatchSource
    from layers.bn_stats import reestimate_batch_norm
    from layers.config import INPUT_SIZE
    from layers.deploy import load_deploy_net

    out = lmdb_root
    train = out / "walking_train.lmdb"
    count = read_meta(train)["count"]
    batch = next(b for b in (8, 6, 5, 4, 3, 2) if count % b == 0)
    caffe.set_mode_cpu()
    caffe.set_random_seed(0)
    deploy = REPO / "prototxt" / "deploy_baseline.prototxt"
    weights = tmp_path / "random.caffemodel"
    caffe.Net(str(deploy), caffe.TEST).save(str(weights))
    net, _ = load_deploy_net(deploy, weights, batch_size=batch)
    conv1_before = net.params["conv1"][0].data.copy()
    used = reestimate_batch_norm(net, str(deploy), str(weights), str(train), batches=10_000, batch_size=batch)
    assert used == count
    np.testing.assert_array_equal(net.params["conv1"][0].data, conv1_before)

    source = BatchSource(str(train), batch, INPUT_SIZE, train=False, seed=0, pca_sigma=0.0)
    image = np.empty((batch, 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    joints, pose = np.empty((batch, 17, 2), np.float32), np.empty((batch, 17, 3), np.float32)
    total = np.zeros(net.blobs["conv1"].data.shape[1])
    for b in range(count // batch):
        source.fill(b, image, joints, pose)
        net.blobs["data"].data[...] = image
        net.forward(end="conv1")
        total += net.blobs["conv1"].data.astype(np.float64).mean(axis=(0, 2, 3))
    mean, n = net.params["conv1_bn"][0].data, net.params["conv1_bn"][2].data[0]
    assert n == count // batch
    np.testing.assert_allclose(mean / n, total / (count // batch), rtol=1e-4, atol=1e-5)
    assert (net.params["conv1_bn"][1].data > 0).all()
