"""Caffe-facing code: the Python layers, the deploy net, inference, `caffe train` runs, the device set-up.

Importing the package quiets Caffe's INFO log (GLOG_minloglevel 2) unless the caller chose a level: glog reads
the variable once, when Caffe loads, and the tools import from here before anything loads Caffe.
"""
import os

os.environ.setdefault("GLOG_minloglevel", "2")
