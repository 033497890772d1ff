#!/usr/bin/env bash
# Overlay PNGs (lidar coloured by depth, radar rings) and edge-alignment scores for the three
# real samples in ../shared/realdata, each with a rig built from that sample's own calibration:
#
#   scripts/realdata_overlays.sh [REALDATA_DIR] [OUT_DIR]      (defaults: ../shared/realdata out/overlays)
#
#   nuScenes  rig: `fusion calib import nuscenes` on nuscenes_official (the devkit tables);
#             LIDAR_TOP sweep on the 6 cameras        -> OUT/nuscenes/cam_*.png
#   KITTI     rig: `fusion calib import kitti` on a KITTI calibration text written from
#             kitti_000008/calib.json (P0..P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo; the
#             sample's 000008.txt is mmdet3d's bare lidar2img matrix, not a KITTI calib file);
#             HDL-64 scan on the left colour camera  -> OUT/kitti/cam2.png
#   PJLab     rig: K, the 4 plumb_bob coefficients and T_cam_lidar of pjlab_opencalib/calib.json
#             (calibration.refine.lidar_camera_rig); the raw distorted 1920x1200 image
#                                                     -> OUT/pjlab/center_camera.png
#             and, with the radar-camera pair's APPROXIMATE extrinsic (calib.json says it is an
#             initial guess), one Delphi ESR scan on its image -> OUT/pjlab_radar/center_camera.png
#
# Runs from any directory; uses the repository's .venv when present.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "${1:-$REPO/../shared/realdata}" && pwd)"
OUT="${2:-$REPO/out/overlays}"
PY="$REPO/.venv/bin/python"
[[ -x "$PY" ]] || PY=python3
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$REPO"
fusion() { "$PY" -m fusion_node.cli "$@"; }
calib() {  # `fusion calib ACTION ...`; the action's module directly while it is not yet registered
    local action="$1"; shift
    if "$PY" -c "import sys; from fusion_node.commands.calib import ACTIONS; sys.exit('$action' not in ACTIONS)"; then
        fusion calib "$action" "$@"
    else
        "$PY" -m "fusion_node.commands.calib_${action//-/_}" "$@"
    fi
}

echo "== nuScenes scene-0061 (6 cameras)"
NUS="$DATA/nuscenes_official"
calib import nuscenes "$NUS" --version v1.0-mini --out "$OUT/nuscenes_rig.yaml"
images=()
for channel in FRONT FRONT_LEFT FRONT_RIGHT BACK BACK_LEFT BACK_RIGHT; do
    images+=(--image "cam_$(tr '[:upper:]' '[:lower:]' <<<"$channel")=$(ls "$NUS"/samples/CAM_"$channel"/*.jpg)")
done
calib overlay --rig "$OUT/nuscenes_rig.yaml" --lidar "$(ls "$NUS"/samples/LIDAR_TOP/*.pcd.bin)" \
    --lidar-columns x,y,z,intensity,ring "${images[@]}" --out "$OUT/nuscenes"

echo "== KITTI 000008"
"$PY" - "$DATA/kitti_000008/calib.json" "$OUT/kitti_000008_calib.txt" <<'PYTHON'
import json, sys
calib = json.load(open(sys.argv[1]))
def row(matrix, rows):
    return " ".join(f"{v:.12g}" for r in matrix[:rows] for v in r)
lines = [f"{key}: {row(calib[key], 3)}" for key in ("P0", "P1", "P2", "P3")]
lines.append("R0_rect: " + " ".join(f"{v:.12g}" for r in calib["R0_rect"][:3] for v in r[:3]))
lines += [f"{key}: {row(calib[key], 3)}" for key in ("Tr_velo_to_cam", "Tr_imu_to_velo")]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PYTHON
calib import kitti "$OUT/kitti_000008_calib.txt" --out "$OUT/kitti_rig.yaml"
calib overlay --rig "$OUT/kitti_rig.yaml" --lidar "$DATA/kitti_000008/000008.bin" \
    --lidar-columns x,y,z,reflectance --image "cam2=$DATA/kitti_000008/000008.png" --out "$OUT/kitti"

echo "== PJLab OpenCalib lidar + camera (raw distorted image)"
PJ="$DATA/pjlab_opencalib"
"$PY" - "$PJ" "$OUT" <<'PYTHON'
import csv, json, math, sys
from pathlib import Path
import numpy as np
from calibration import CameraIntrinsics, rig_from_dict
from calibration.refine import lidar_camera_rig
from calibration.transforms import invert_transform

def rigid(matrix):
    """Nearest proper rotation (SVD) of a transform printed with 6 digits: the rig needs R^T R = I to 1e-5."""
    T = np.array(matrix, dtype=np.float64)
    u, _, vt = np.linalg.svd(T[:3, :3])
    T[:3, :3] = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    return T

root, out = Path(sys.argv[1]), Path(sys.argv[2])
calib = json.loads((root / "calib.json").read_text())
pair = calib["lidar2camera"]
width, height = pair["image_size_wh"]
intrinsics = CameraIntrinsics(K=np.array(pair["K"]), width=width, height=height,
                              distortion_model="plumb_bob", D=np.array(pair["dist_k1_k2_p1_p2"]))
rig = lidar_camera_rig(rigid(pair["T_cam_lidar"]), intrinsics, lidar_id="top_center_lidar",
                       camera_id="center_camera", name="pjlab_lidar2camera")
rig.dump(out / "pjlab_rig.yaml")

# radar + camera pair: approximate extrinsic; the first Delphi ESR scan (its 64 track slots are
# the first 64 rows; empty slots have track_status 0)
radar = calib["radar2camera"]
width, height = radar["image_size_wh"]
camera = CameraIntrinsics(K=np.array(radar["K"]), width=width, height=height,
                          distortion_model="plumb_bob", D=np.array(radar["dist_k1_k2_p1_p2"]))
camera_doc = rig_from_dict({"rig": {"name": "x"}, "sensors": [{
    "id": "center_camera", "modality": "camera", "topic": "/center_camera/image", "frame_id": "center_camera",
    "rate_hz": 10.0, "extrinsic": {"matrix": invert_transform(rigid(radar["T_cam_radar"])).tolist()},
    "intrinsics": {"K": camera.K.tolist(), "width": width, "height": height,
                   "distortion_model": "plumb_bob", "D": camera.D.tolist()}}]}).to_dict()["sensors"][0]
rig_from_dict({
    "rig": {"name": "pjlab_radar2camera", "base_frame": "base_link", "reference_sensor": "front_radar"},
    "sensors": [{"id": "front_radar", "modality": "radar", "topic": "/front_radar/points", "frame_id": "front_radar",
                 "rate_hz": 20.0, "extrinsic": {"matrix": np.eye(4).tolist()},
                 "radar": {"fields": ["x", "y", "z", "vr", "rcs"], "max_points": 64, "max_range_m": 174.0,
                           "horizontal_fov_deg": 90.0}}, camera_doc],
}).dump(out / "pjlab_radar_rig.yaml")
rows = [r for r in list(csv.DictReader(open(root / "radar2camera" / "front_radar_delphi.csv")))[:64]
        if r["track_status"] != "0"]
points = np.array([[float(r["track_range_m"]) * math.cos(float(r["track_angle_rad"])),
                    float(r["track_range_m"]) * math.sin(float(r["track_angle_rad"])), 0.0] for r in rows])
np.save(out / "pjlab_radar_scan0.npy", points.reshape(-1, 3))
PYTHON
calib overlay --rig "$OUT/pjlab_rig.yaml" --lidar "$PJ/lidar2camera/0.pcd" \
    --image "center_camera=$PJ/lidar2camera/0.png" --out "$OUT/pjlab"
calib overlay --rig "$OUT/pjlab_radar_rig.yaml" --radar "$OUT/pjlab_radar_scan0.npy" \
    --image "center_camera=$PJ/radar2camera/0.jpg" --out "$OUT/pjlab_radar"

echo "overlays written under $OUT"
