"""A clip's predicted 3D poses as a BVH animation (Blender, Maya, Unity, MotionBuilder import it).

The skeleton is fixed: the 17 joints (data_prep.skeleton), each bone at the training set's mean length; the rest
pose (every rotation zero) is a T-pose facing +Z: legs straight down, spine, neck and head straight up, hips,
shoulders and arms straight out sideways (the person's right at -X), REST_DIRECTIONS. Positions go from the
camera axes (x right, y down, z forward) to BVH's (X right, Y up, Z towards the camera): (x, -y, -z), in mm.

Each frame's rotations are found from the predicted positions so that every bone points exactly where the
prediction's does (its length is the fixed skeleton's): a joint with one child turns by the smallest rotation
that takes the rest direction of its bone to the predicted one, in the world frame, and its channels hold that
rotation relative to its parent's. A joint with several children (Hip, Thorax) cannot point three bones with one
rotation, so it keeps its parent's orientation and gets one zero-length joint per child ("Hip>RHip"), each
turning for its own bone. Rotation channels are Zrotation Xrotation Yrotation (degrees; the local rotation is
Rz @ Rx @ Ry applied to column vectors); the root (Hip) also has X/Y/Zposition, its predicted position.
"""
from __future__ import annotations

import numpy as np

ROTATION_ORDER = "ZXY"
UP, DOWN, LEFT, RIGHT = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)  # the person's left: +X


def rest_direction(joints, child: int) -> tuple:
    """The T-pose direction of the bone into joint `child` (by its name in data_prep.skeleton.JOINTS)."""
    name = joints[child]
    if name in ("RHip", "LHip", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist"):
        return RIGHT if name.startswith("R") else LEFT
    if name in ("RKnee", "RFoot", "LKnee", "LFoot"):
        return DOWN
    return UP  # Spine, Thorax, Neck/Nose, Head


def to_bvh_axes(points_camera: np.ndarray) -> np.ndarray:
    """Camera axes (x right, y down, z forward) to BVH's (X right, Y up, Z towards the camera)."""
    return np.asarray(points_camera, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


def smallest_rotation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The 3x3 rotation by the smallest angle that takes the direction u to the direction v."""
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    axis, c = np.cross(u, v), float(np.dot(u, v))
    s = float(np.linalg.norm(axis))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        other = np.eye(3)[int(np.argmin(np.abs(u)))]  # opposite: half a turn about any axis normal to u
        axis = np.cross(u, other)
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / s
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def euler_zxy_degrees(r: np.ndarray) -> tuple:
    """(z, x, y) in degrees with r = Rz(z) @ Rx(x) @ Ry(y)."""
    x = np.arcsin(np.clip(r[2, 1], -1.0, 1.0))
    z = np.arctan2(-r[0, 1], r[1, 1])
    y = np.arctan2(-r[2, 0], r[2, 2])
    return tuple(float(np.degrees(a)) for a in (z, x, y))


def _name(joint: str) -> str:
    return joint.replace("/", "_")


class Skeleton:
    """The fixed skeleton: nodes (name, parent node, offset, joint index or None for a per-child node, the bone
    (parent joint, child joint) its rotation aims or None) in BVH order, depth first."""

    def __init__(self, joints, parents, bone_lengths: dict):
        self.joints, self.parents = list(joints), list(parents)
        self.children = {j: [c for c, p in enumerate(parents) if p == j] for j in range(len(joints))}
        # (parent joint, child joint) -> the bone's rest vector, BVH axes, at its mean length
        self.rest_offset = {(p, c): np.asarray(rest_direction(self.joints, c)) * float(length)
                            for (p, c), length in bone_lengths.items()}
        self.nodes = []
        self._add(0, None, np.zeros(3))

    def _add(self, joint: int, parent_node, offset) -> None:
        index = len(self.nodes)
        kids = self.children[joint]
        aims = (joint, kids[0]) if len(kids) == 1 else None
        self.nodes.append({"name": _name(self.joints[joint]), "parent": parent_node, "offset": offset, "joint": joint,
                           "aims": aims})
        if len(kids) == 1:
            self._add(kids[0], index, self.rest_offset[(joint, kids[0])])
        elif len(kids) > 1:
            for c in kids:
                split = len(self.nodes)
                self.nodes.append({"name": f"{_name(self.joints[joint])}>{_name(self.joints[c])}", "parent": index,
                                   "offset": np.zeros(3), "joint": None, "aims": (joint, c)})
                self._add(c, split, self.rest_offset[(joint, c)])

    def local_rotations(self, pose: np.ndarray) -> list:
        """One frame (J, 3 BVH axes): each node's rotation relative to its parent node's."""
        world = []
        for node in self.nodes:
            parent = np.eye(3) if node["parent"] is None else world[node["parent"]]
            if node["aims"] is None:
                world.append(parent)  # a joint with several children (or none) keeps its parent's orientation
            else:
                p, c = node["aims"]
                world.append(smallest_rotation(self.rest_offset[(p, c)], pose[c] - pose[p]))
        return [world[i] if n["parent"] is None else world[n["parent"]].T @ world[i] for i, n in enumerate(self.nodes)]


def bvh_text(poses_mm: np.ndarray, joints, parents, bones, bone_lengths_mm, frame_time_s: float) -> str:
    """The BVH file of a clip: poses_mm (F, J, 3) in camera axes; bones [(parent, child)] with bone_lengths_mm
    beside them (the training LMDB's meta.json: bones, mean_bone_lengths_mm); frame_time_s: seconds between the
    clip's frames."""
    skeleton = Skeleton(joints, parents, {tuple(b): length for b, length in zip(bones, bone_lengths_mm)})
    lines = ["HIERARCHY"]
    depth_of = {}

    def close_to(depth_now: int, depth_next: int) -> None:
        for d in range(depth_now, depth_next - 1, -1):
            lines.append("  " * d + "}")

    for i, node in enumerate(skeleton.nodes):
        depth = 0 if node["parent"] is None else depth_of[node["parent"]] + 1
        depth_of[i] = depth
        pad = "  " * depth
        if i and depth <= depth_of[i - 1]:
            close_to(depth_of[i - 1], depth)
        lines.append(f"{pad}{'ROOT' if node['parent'] is None else 'JOINT'} {node['name']}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.4f}' for v in node['offset'])}")
        channels = (
            "Xposition Yposition Zposition " if node["parent"] is None else ""
        ) + "Zrotation Xrotation Yrotation"
        lines.append(f"{pad}  CHANNELS {len(channels.split())} {channels}")
        leaf = not any(other["parent"] == i for other in skeleton.nodes)
        if leaf:
            lines += [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0.0000 0.0000 0.0000", f"{pad}  }}"]
    close_to(depth_of[len(skeleton.nodes) - 1], 0)
    poses = to_bvh_axes(poses_mm)
    lines += ["MOTION", f"Frames: {len(poses)}", f"Frame Time: {frame_time_s:.6f}"]
    for pose in poses:
        values = list(pose[0])
        for r in skeleton.local_rotations(pose):
            values += euler_zxy_degrees(r)
        lines.append(" ".join(f"{v:.4f}" for v in values))
    return "\n".join(lines) + "\n"
