"""The LMDB format, read and written here only: one record per frame, a Caffe Datum (the only place data_prep
touches Caffe, for its protobuf), and each LMDB's meta.json (its count, joints, record layout and the training
statistics; read_meta checks the fields the readers need, check_lmdb the count against the records).

Datum.channels/height/width = 3, 250, 250; Datum.data = the BGR crop, either raw in Caffe's C x H x W byte
order (Datum.encoded false, 184 KiB) or a JPEG file (Datum.encoded true, as Caffe's own convert_imageset
--encoded writes it); each record says which, so LMDBs of either kind (and older raw ones) read the same.
Datum.float_data = the labels below, in this order (FLOAT_FIELDS); Datum.label = frame index.
Keys: b"<subject>/<action_file>/<camera>/<frame:06d>", sortable by subject/action/camera/frame.
"""
from __future__ import annotations

import json
from pathlib import Path

import lmdb
import numpy as np

from .files import write_text_atomic
from .skeleton import NUM_JOINTS

FORMAT_VERSION = 1  # of meta.json and the records

# name -> (offset, shape) inside Datum.float_data
FLOAT_FIELDS = {}
_offset = 0
for _name, _shape in (("joints2d", (NUM_JOINTS, 2)),       # crop pixels (250 x 250 crop)
                      ("pose3d", (NUM_JOINTS, 3)),         # zero mean, unit Frobenius norm (section 4)
                      ("pose3d_mm", (NUM_JOINTS, 3)),      # original camera-coordinate pose, mm
                      ("mean_mm", (3,)), ("scale_mm", (1,))):  # pose3d_mm = pose3d * scale + mean
    FLOAT_FIELDS[_name] = (_offset, _shape)
    _offset += int(np.prod(_shape))
NUM_FLOATS = _offset


ENCODINGS = ("raw", "jpeg")
DEFAULT_ENCODING = "jpeg"  # 7x smaller records, decoding well ahead of a GPU's rate (docs/benchmarks.md)
JPEG_QUALITY = 95


def _datum_class():
    from caffe.proto import caffe_pb2  # Caffe's protobuf only; no Caffe runtime needed

    return caffe_pb2.Datum


def record_key(sequence_key: str, frame: int) -> bytes:
    return f"{sequence_key}/{frame:06d}".encode()


def encode_image(crop_bgr: np.ndarray, encoding: str = DEFAULT_ENCODING, quality: int = JPEG_QUALITY) -> bytes:
    """(H, W, 3) uint8 BGR -> Datum.data: C x H x W bytes ('raw') or a JPEG file ('jpeg')."""
    if encoding == "raw":
        return np.ascontiguousarray(crop_bgr.transpose(2, 0, 1)).tobytes()
    if encoding == "jpeg":
        import cv2  # lazy: OpenCV only where images are read

        ok, data = cv2.imencode(".jpg", crop_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise ValueError("JPEG encoding of a crop failed")
        return data.tobytes()
    raise ValueError(f"encoding {encoding!r}: expected one of {', '.join(ENCODINGS)}")


def decode_image(datum) -> np.ndarray:
    """Datum -> (3, H, W) uint8 BGR, whichever way it was stored."""
    if datum.encoded:
        import cv2  # lazy: OpenCV only where images are read

        image = cv2.imdecode(np.frombuffer(datum.data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.shape != (datum.height, datum.width, 3):
            raise ValueError("a JPEG record does not decode to its stated size; the LMDB is damaged, rebuild it")
        return image.transpose(2, 0, 1)
    return np.frombuffer(datum.data, dtype=np.uint8).reshape(datum.channels, datum.height, datum.width)


def encode_record(crop_bgr: np.ndarray, frame: int, encoding: str = DEFAULT_ENCODING, **labels) -> bytes:
    if crop_bgr.dtype != np.uint8 or crop_bgr.ndim != 3 or crop_bgr.shape[2] != 3:
        raise ValueError(f"crop: expected (H, W, 3) uint8, got {crop_bgr.shape} {crop_bgr.dtype}")
    floats = np.empty(NUM_FLOATS, dtype=np.float32)
    for name, (off, shape) in FLOAT_FIELDS.items():
        value = np.asarray(labels[name], dtype=np.float32)
        if value.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {value.shape}")
        floats[off:off + value.size] = value.ravel()
    datum = _datum_class()(channels=3, height=crop_bgr.shape[0], width=crop_bgr.shape[1], label=int(frame),
                           data=encode_image(crop_bgr, encoding), encoded=encoding != "raw")
    datum.float_data.extend(floats.tolist())
    return datum.SerializeToString()


def decode_record(value: bytes) -> dict:
    """{'image': (3, H, W) uint8 BGR, 'frame': int, and each FLOAT_FIELDS entry as float32}."""
    datum = _datum_class()()
    datum.ParseFromString(value)
    if len(datum.float_data) != NUM_FLOATS:
        raise ValueError(f"record has {len(datum.float_data)} label values, expected {NUM_FLOATS}: "
                         "an LMDB from another tool or version? Rebuild it with tools/make_lmdb.py")
    out = {"image": decode_image(datum), "frame": datum.label}
    floats = np.asarray(datum.float_data, dtype=np.float32)
    for name, (off, shape) in FLOAT_FIELDS.items():
        out[name] = floats[off:off + int(np.prod(shape))].reshape(shape)
    return out


def write_meta(lmdb_path: Path, meta: dict) -> None:
    """meta.json into an LMDB's folder, whole or not at all."""
    write_text_atomic(Path(lmdb_path) / "meta.json", json.dumps(meta, indent=1))


def read_meta(lmdb_path: Path) -> dict:
    path = Path(lmdb_path) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; {lmdb_path} is not an LMDB made by tools/make_lmdb.py "
                                "(or its build did not finish): rebuild it")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e}); the LMDB's description is damaged: rebuild it with "
                         "tools/make_lmdb.py") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a JSON object; rebuild the LMDB with tools/make_lmdb.py")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta.get('format_version')}, expected {FORMAT_VERSION}; rebuild")
    for field, kind in META_FIELDS.items():
        if field not in meta:
            raise ValueError(f"{path}: field \"{field}\" is missing; the file was edited or cut short: rebuild the "
                             "LMDB with tools/make_lmdb.py")
        if not isinstance(meta[field], kind) or isinstance(meta[field], bool):
            raise ValueError(f"{path}: field \"{field}\" is {type(meta[field]).__name__}, expected "
                             f"{getattr(kind, '__name__', 'a number')}; rebuild the LMDB with tools/make_lmdb.py")
    if meta["count"] < 1:
        raise ValueError(f"{path}: field \"count\" is {meta['count']}; rebuild the LMDB with tools/make_lmdb.py")
    return meta


# meta.json's fields that the readers need (data layer, evaluation, prediction), with their JSON types.
META_FIELDS = {"action": str, "split": str, "count": int, "joints": list, "mean_bgr": list, "pca_eigval_rgb": list,
               "pca_eigvec_rgb": list, "mean_torso_lengths_mm": list}


def record_count(lmdb_path: Path) -> int:
    """The records an LMDB holds (its own count, without reading them)."""
    try:
        env = lmdb.open(str(lmdb_path), readonly=True, lock=False, readahead=False)
    except lmdb.Error as e:
        raise ValueError(f"{lmdb_path}: cannot open LMDB ({e}); rebuild it with tools/make_lmdb.py") from e
    try:
        return int(env.stat()["entries"])
    finally:
        env.close()


def check_lmdb(lmdb_path: Path) -> dict:
    """read_meta, and the records counted against meta.json's count (a truncated or mixed LMDB)."""
    meta = read_meta(lmdb_path)
    found = record_count(lmdb_path)
    if found != meta["count"]:
        raise ValueError(f"{lmdb_path}: {found} records but meta.json says {meta['count']}: a truncated or mixed "
                         "LMDB; rebuild it with tools/make_lmdb.py")
    return meta
