"""Caffe-facing code: the Python layers, the deploy net, inference, `caffe train` runs, the device set-up.

Importing the package sets two defaults for Caffe, each unless the caller chose a value; both are read once, when
Caffe loads, and the tools import from here before anything loads Caffe:
- GLOG_minloglevel 2: Caffe's INFO log is quiet;
- OMP_WAIT_POLICY PASSIVE: Caffe's idle OpenMP threads sleep instead of spinning, so they leave the cores to the
  data layer's workers and to other processes (docs/design.md, "CPU speed"). In the set-up's venv its caffe
  wrapper and a start-up hook set it too; this line is for other interpreters (the GPU machine's).
"""
import os

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
