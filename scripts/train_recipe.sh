#!/bin/bash
# The shipped model's whole training recipe (v5) as one command: 5 epochs from scratch, three
# fine-tunes (velocity weight 1.0; radar dropout 0.3, 0.5, 0.7), then the export to a bundle.
# Every step resumes when rerun, so an interrupted recipe continues where it stopped.
#
#   scripts/train_recipe.sh RUNS BUNDLE [fusion train options ...]
#     RUNS    run-directory prefix: steps go to RUNS_v2 .. RUNS_v5
#     BUNDLE  exported bundle directory
#     EXPORT  extra `fusion export` options (default: "--fp16 --int8 out/data/train")
#   e.g. scripts/train_recipe.sh out/train/fusion_sim models/fusion_sim            # shipped model
#        EXPORT= scripts/train_recipe.sh out/train/lidar_only out/bundles/lidar_only --modalities lidar
#
# About 2 h 10 min on an idle 2-core machine; data from the `fusion sim --shards` loop in docs/MODEL.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$1
bundle=$2
shift 2
data=out/data/train
step() { echo "== $(date -u +%H:%M:%S) ${runs}_$1" && .venv/bin/fusion train --data "$data" --out "${runs}_$1" --quiet "${@:2}"; }
step v2 --epochs 5 --batch 4 --seed 0 "$@"
step v3 --init "${runs}_v2/last.pt" --epochs 1 --lr 5e-4 --seed 1 --velocity-weight 1.0 --dropout radar=0.3 "$@"
step v4 --init "${runs}_v3/last.pt" --epochs 2 --lr 5e-4 --seed 2 --velocity-weight 1.0 --dropout radar=0.5 "$@"
step v5 --init "${runs}_v4/last.pt" --epochs 2 --lr 5e-4 --seed 3 --velocity-weight 1.0 --dropout radar=0.7 "$@"
# shellcheck disable=SC2086
.venv/bin/fusion export "${runs}_v5/last.pt" --out "$bundle" ${EXPORT---fp16 --int8 $data} --data "$data"
echo "== $(date -u +%H:%M:%S) exported $bundle"
