"""Caffe-facing code: the Python layers, the deploy net, inference, `caffe train` runs, the device set-up.

Importing the package sets two defaults for Caffe, each unless the caller chose a value; both are read once, when
Caffe loads, and the tools import from here before anything loads Caffe:
- GLOG_minloglevel 2: Caffe's INFO log is quiet;
- GOMP_SPINCOUNT 1000, unless OMP_WAIT_POLICY is set: Caffe's idle OpenMP threads spin briefly, then sleep, so
  they leave the cores to the data layer's workers and to other processes (docs/design.md, "CPU speed"). In the
  set-up's venv its caffe wrapper and a start-up hook set it too; this line is for other interpreters (the GPU
  machine's).
"""
import os

os.environ.setdefault("GLOG_minloglevel", "2")
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
