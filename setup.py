"""Park, Hwang & Kwak (2016), 3D human pose estimation with 2D pose information, reproduced on BVLC Caffe.

Caffe itself is not a pip dependency: tools/setup.sh builds it and links it into the venv.
"""
from setuptools import setup

setup(
    name="park3dpose",
    version="0.1.0",
    description="Caffe reproduction of Park, Hwang, Kwak (ECCV-W 2016): 3D pose CNN with 2D pose information",
    packages=["data_prep", "layers", "prototxt", "bench", "tools"],
    python_requires=">=3.10,<3.14",  # the distribution's python3: Debian 12 (3.11), 13 (3.13); Ubuntu 22.04, 24.04
    install_requires=[
        "numpy", "protobuf", "six", "h5py", "lmdb", "opencv-python-headless", "cdflib", "tqdm",
        "matplotlib",
    ],
)
