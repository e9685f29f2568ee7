"""data_prep/bvh.py: the BVH file read back by a reader written here from the format's description (not the
writer's code), forward kinematics from its offsets and channels: every bone of every frame points where the
prediction's does, within 1 degree, at the fixed skeleton's length."""
from __future__ import annotations

import numpy as np

from data_prep.bvh import bvh_text
from data_prep.skeleton import BONES, JOINTS, PARENTS


def read_bvh(text: str):
    """[(name, parent index, offset, channels)], frames (F, channels): the HIERARCHY and MOTION sections."""
    tokens = text.split()
    nodes, stack, i, last = [], [], 0, None
    while tokens[i] != "MOTION":
        t = tokens[i]
        if t in ("ROOT", "JOINT"):
            nodes.append([tokens[i + 1], stack[-1] if stack else None, None, []])
            last, i = len(nodes) - 1, i + 2
        elif t == "End":  # End Site { OFFSET x y z }: no channels
            i += 8
        elif t == "{":
            stack.append(last)
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif t == "OFFSET":
            nodes[last][2] = np.array([float(v) for v in tokens[i + 1:i + 4]])
            i += 4
        elif t == "CHANNELS":
            n = int(tokens[i + 1])
            nodes[last][3] = tokens[i + 2:i + 2 + n]
            i += 2 + n
        else:
            i += 1
    frames = int(tokens[i + 2])
    values = np.array([float(v) for v in tokens[i + 6:]]).reshape(frames, -1)
    return nodes, values


def rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def forward_kinematics(nodes, frame) -> dict:
    """name -> world position, each node's rotation the product of its channels' rotations in the listed order."""
    world_rot, world_pos, k = [], [], 0
    for name, parent, offset, channels in nodes:
        local, translation = np.eye(3), np.zeros(3)
        for ch in channels:
            if ch.endswith("position"):
                translation["XYZ".index(ch[0])] = frame[k]
            else:
                local = local @ rotation(ch[0], frame[k])
            k += 1
        if parent is None:
            world_pos.append(translation + offset)
            world_rot.append(local)
        else:
            world_pos.append(world_pos[parent] + world_rot[parent] @ offset)
            world_rot.append(world_rot[parent] @ local)
    return {n[0]: p for n, p in zip(nodes, world_pos)}


def test_bvh_round_trip_every_bone_within_one_degree():
    rng = np.random.default_rng(0)
    start = np.zeros((17, 3))
    for j, p in enumerate(PARENTS):  # a plausible pose in camera axes: each bone 100-400 mm, mostly vertical
        if p >= 0:
            start[j] = start[p] + rng.normal(0, 80, 3) + np.array([0, 250 if j in (2, 3, 5, 6) else -200, 0])
    lengths = [float(rng.uniform(100, 450)) for _ in BONES]
    poses = start[None] + rng.normal(0, 120, (6, 17, 3))  # six frames, every bone in a new direction
    nodes, frames = read_bvh(bvh_text(poses, JOINTS, PARENTS, BONES, lengths, 1 / 25))
    assert len(frames) == 6 and nodes[0][0] == "Hip" and nodes[0][3][:3] == ["Xposition", "Yposition", "Zposition"]
    bvh_axes = np.array([1.0, -1.0, -1.0])  # camera (x right, y down, z forward) to BVH (Y up, Z towards the camera)
    worst = 0.0
    for pose, frame in zip(poses, frames):
        found = forward_kinematics(nodes, frame)
        assert np.allclose(found["Hip"], pose[0] * bvh_axes, atol=1e-3)
        for (p, c), length in zip(BONES, lengths):
            got = found[JOINTS[c].replace("/", "_")] - found[JOINTS[p].replace("/", "_")]
            want = (pose[c] - pose[p]) * bvh_axes
            cosine = got @ want / np.linalg.norm(got) / np.linalg.norm(want)
            worst = max(worst, float(np.degrees(np.arccos(np.clip(cosine, -1, 1)))))
            assert abs(np.linalg.norm(got) - length) < 0.01
    assert worst < 1.0, worst
    # the rest pose (every rotation zero) is the T-pose: legs down, arms out to the sides, the right arm at -X
    rest = forward_kinematics(nodes, np.zeros(frames.shape[1]))
    assert rest["RFoot"][1] < rest["RKnee"][1] < rest["Hip"][1] < rest["Head"][1]
    assert rest["RWrist"][0] < rest["RShoulder"][0] < 0 < rest["LShoulder"][0] < rest["LWrist"][0]
