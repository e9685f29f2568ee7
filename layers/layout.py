"""What callers need to know about a net that prototxt/generate.py built, as a value that comes with it:
`build_net` returns a NetLayout beside the NetParameter, and every generated prototxt file carries it on its
second line (`# layout: {...}`), so that nothing reads layer names back to learn a net's variant, its roots or
which of its layers are fixed maps. The names of the fixed maps are defined here, once."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from data_prep.errors import UserError

LAYOUT_PREFIX = "# layout: "

# Frozen layers whose weights are set when a net is loaded (layers.deploy), never trained nor saved in weights:
ROOT_AVERAGE = "root_average"  # eq. (7): insert each root's zero row, centre, average over the roots
# the evaluation tail's maps (layers.targets.evaluation_maps; prototxt.generate.evaluation_tail)
TORSO_BONES_MAP, TORSO_LENGTHS_MAP, TORSO_SUM_MAP = "torso_bones", "torso_lengths_sq", "torso_predicted"
ERROR_MAPS = {"p1": "error_p1", "zero_mean": "error_zero_mean"}  # protocol -> its alignment of the error
JOINT_ERROR_MAPS = {"p1": "joint_errors_p1_sq", "zero_mean": "joint_errors_zero_mean_sq"}  # per-joint sums
EVALUATION_MAPS = (TORSO_BONES_MAP, TORSO_LENGTHS_MAP, TORSO_SUM_MAP, *ERROR_MAPS.values(), *JOINT_ERROR_MAPS.values())
# an evaluation net's inputs beside "data", and its outputs
EVALUATION_INPUTS = ("gt_mm", "torso_sum")
POSE_MM, MPJPE_OUTPUTS = "pose3d_mm", {"p1": "mpjpe_p1", "zero_mean": "mpjpe_zero_mean"}


def root_slug(joint_name: str) -> str:
    """The name of a root joint in its 3D head's layers (fc2_3d_<slug>, head_name), e.g. hip."""
    return joint_name.lower().replace("/", "_")


def head_name(joint_name: str) -> str:
    """The output layer of the 3D head relative to a root joint, e.g. out_3d_hip."""
    return f"out_3d_{root_slug(joint_name)}"


@dataclasses.dataclass(frozen=True)
class NetLayout:
    variant: str  # baseline, multireg, 2dcls, both (layers.config.VARIANTS)
    split: str  # train, test, deploy, evaluate, time
    roots: tuple  # joint indices of the 3D heads, in the order of `heads` (eq. 7 averages them)
    heads: tuple  # the 3D heads' output layers
    trained: tuple  # layers whose parameters a .caffemodel holds (a deploy or evaluation net's)
    fixed_maps: tuple  # frozen layers set on load (ROOT_AVERAGE, EVALUATION_MAPS), absent from weights
    evaluation: bool  # has the evaluation tail (EVALUATION_INPUTS in, POSE_MM and MPJPE_OUTPUTS out)
    folded: bool = False  # BatchNorm + Scale folded into the layers before them (layers.fold): no such layers

    def folded_by(self, pairs) -> "NetLayout":
        """The layout of this net folded (layers.fold.folded_net_param's (layer, BatchNorm, Scale) pairs)."""
        gone = {name for _, bn, scale in pairs for name in (bn, scale)}
        return dataclasses.replace(self, trained=tuple(n for n in self.trained if n not in gone), folded=True)

    def to_line(self) -> str:
        return LAYOUT_PREFIX + json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_line(cls, line: str) -> "NetLayout":
        fields = json.loads(line[len(LAYOUT_PREFIX):])
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def read_layout(prototxt) -> NetLayout:
    """The layout a generated prototxt carries; a UserError naming the file when it carries none."""
    try:
        with open(prototxt) as f:
            for _, line in zip(range(5), f):
                if line.startswith(LAYOUT_PREFIX):
                    return NetLayout.from_line(line.rstrip("\n"))
    except OSError as e:
        raise UserError(f"{prototxt}: cannot be read ({e.strerror})") from None
    except (ValueError, TypeError) as e:
        raise UserError(f"{prototxt}: its layout line is damaged ({e}); regenerate it with "
                        "`python -m prototxt.generate`") from None
    raise UserError(f"{prototxt}: not a net prototxt/generate.py wrote (no `{LAYOUT_PREFIX.strip()}` line); "
                    "use one of prototxt/ or regenerate it with `python -m prototxt.generate`")


def committed_layouts(folder: Path) -> dict:
    """{variant: NetLayout} of the (unfolded) deploy nets committed in `folder` (prototxt/deploy_<variant>.prototxt)."""
    layouts = (read_layout(p) for p in sorted(Path(folder).glob("deploy_*.prototxt")))
    return {layout.variant: layout for layout in layouts if not layout.folded}
