"""Numbers the paper fixes (sections 3-4), in one place. Sizes chosen where the figures are lost are
marked "choice" (docs/design.md, "The paper, and what we chose where it is silent")."""
from data_prep.skeleton import NUM_JOINTS  # 17 joints (section 3); the six roots are skeleton.ROOTS

INPUT_SIZE = 225  # section 3.1: "accepts a 225x225 sized image"
GRID = 16  # N_g (section 3.1 / Fig. 1)
NUM_CLASSES_2D = GRID * GRID  # classes per joint
OUTPUT_3D = 3 * (NUM_JOINTS - 1)  # 48: joints relative to one root, the root itself left out

# Fig. 1 trunk: ZFNet filter sizes and strides, fewer maps (docs/design.md: trunk; the pads are a choice).
CONV_LAYERS = (  # name, maps, kernel, stride, pad, followed by max-pooling 3x3/2
    ("conv1", 64, 7, 2, 0, True),
    ("conv2", 128, 5, 2, 0, True),
    ("conv3", 192, 3, 1, 1, False),
    ("conv4", 192, 3, 1, 1, False),
    ("conv5", 192, 3, 1, 1, True),
)
FC_SIZE = 2048  # fc1/fc2 of both branches and fc probs 2D (docs/design.md)
# Table 2's four variants: (multiple roots, the 2D-cls link); the paper's full model is "both"
VARIANTS = {"baseline": (False, False), "multireg": (True, False), "2dcls": (False, True), "both": (True, True)}
DROPOUT = 0.3  # section 4: dropout 0.3 on every fc layer

# Section 4: loss weights and solver.
LAMBDA_2D = (0.1, 0.01)  # 0.1, then 0.01 after LAMBDA_2D_STEP_EPOCH epochs
LAMBDA_2D_STEP_EPOCH = 16
LAMBDA_3D = 0.5
BATCH_SIZE = 128
BASE_LR = 0.01
LR_GAMMA = 0.5
LR_STEP_EPOCHS = 4
EPOCHS = 28
MOMENTUM = 0.9
WEIGHT_DECAY = 0.001
PCA_SIGMA = 0.1  # fancy-PCA colour augmentation (Krizhevsky et al. 2012), alpha ~ N(0, 0.1)


def scaled(size: int, width: float) -> int:
    """A layer's maps or size in a net of `width` times the paper's (prototxt.generate.build_net's width)."""
    return max(1, round(size * width))
