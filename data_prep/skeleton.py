"""Joints, bones, roots, actions and the subject protocol of the paper (sections 3, 4, 5).

Every constant the paper fixes, or that docs/design.md ("The paper, and what we chose where it is silent")
chose for it, lives here.
"""
from __future__ import annotations

import re

# Human3.6M stores 32 joints per frame (96 values in D3 files, 64 in D2 files).
NUM_H36M_JOINTS = 32

# Section 3: "The number of joints N_j is set to 17". The common 17 of the 32, in this order
# (docs/design.md: joints).
JOINTS = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
    "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)
NUM_JOINTS = len(JOINTS)
H36M_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

# Kinematic parent of each of the 17 joints (-1 for Hip).
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
BONES = tuple((p, j) for j, p in enumerate(PARENTS) if p >= 0)

# Section 4, scale recovery: "we only used the length of joints in the torso" (docs/design.md: scale).
TORSO_BONES = ((0, 1), (0, 4), (0, 7), (7, 8), (8, 11), (8, 14))

# Section 3.3: six root nodes (docs/design.md: roots): Hip, Thorax, RKnee, LKnee, LElbow, RElbow.
ROOTS = (0, 8, 2, 5, 12, 15)
BASELINE_ROOTS = (0,)

LEFT_JOINTS = tuple(i for i, n in enumerate(JOINTS) if n.startswith("L"))
RIGHT_JOINTS = tuple(i for i, n in enumerate(JOINTS) if n.startswith("R"))

# Parent of each of the 32 Human3.6M joints (the release's kinematic tree), used by the synthetic
# generator to place the 15 joints the paper does not use.
H36M_PARENTS = (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22,
                12, 24, 25, 26, 27, 28, 27, 30)

# Section 5: the 15 actions in the column order of Table 1.
ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)
# The six actions of Table 2.
ABLATION_ACTIONS = ("Discussion", "Eating", "Greeting", "Phoning", "Photo", "Walking")

# Section 5: "5 subjects (S1, S5, S6, S7, S8) as a training set, and 2 subjects (S9, S11) as a test set".
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
SUBJECTS = TRAIN_SUBJECTS + TEST_SUBJECTS

CAMERAS = ("54138969", "55011271", "58860488", "60457274")

# File-name stems of the release -> the paper's action. S1 says TakingPhoto/WalkingDog, the others
# Photo/WalkDog; stems are matched whole (after removing a subaction number), so Sitting never
# swallows SittingDown, nor Walking WalkDog or WalkTogether.
FILE_ACTION_TO_ACTION = {a: a for a in ACTIONS}
FILE_ACTION_TO_ACTION.update({"TakingPhoto": "Photo", "WalkingDog": "WalkDog"})

_SUBACTION = re.compile(r"^(?P<stem>[A-Za-z]+)(?: (?P<sub>\d+))?$")


def action_of_file_stem(stem: str) -> str | None:
    """'Directions 1' -> 'Directions', 'TakingPhoto' -> 'Photo'; None for names that are not one of
    the 15 actions (e.g. '_ALL' files or typos), which the caller reports."""
    m = _SUBACTION.match(stem)
    if not m:
        return None
    return FILE_ACTION_TO_ACTION.get(m.group("stem"))


def action_slug(action: str) -> str:
    """File-system name of an action: 'WalkDog' -> 'walkdog' (solver_walkdog.prototxt)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    return action.lower()
