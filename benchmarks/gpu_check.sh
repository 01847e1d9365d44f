#!/usr/bin/env bash
# One prepared check of the rasterizer on a lent GPU machine (../shared/spec/GPU.md), every stage
# with its own timeout, all within 9 minutes, logs and a summary under $OUT:
#   tests       the rasterizer tests on CUDA (Vulkan rerun deselected)
#   repeats     benchmarks/repeated_backward.py: 10 identical backward passes, both blend_backward kernels
#   bench_*     benchmarks/rasterizer.py at 648x420 and 1920x1080 tiled 5x5, both kernels (gsplat beside
#               the default one)
#   step        benchmarks/training_step.py on colmap_desk at 1600 px, 500k Gaussians, with gsplat's step
#   train       gaussian_point_train.py, 7,000 steps of colmap_desk at full resolution (1600 px long
#               side, the official cap): minutes and val PSNR (metrics.json)
#
# 1. On the CPU machine, from the repository root (pycolmap converts the COLMAP model there):
#        bash ../shared/tools/gpu_site.sh          # .gpu_site/site.tar.xz: taichi, dill, plyfile, gsplat
#        bash benchmarks/gpu_check.sh --prepare    # .gpu_data/: garden .npz + prepared colmap_desk (~25 MB)
# 2. On the GPU machine (run tool, carry [".gpu_site", ".gpu_data"]):
#        bash benchmarks/gpu_check.sh
# CPU dry run of the whole script with tiny sizes (a few minutes; gsplat parts skip themselves):
#        TAICHI_3DGS_ARCH=cpu GPU_CHECK_SMALL=1 OUT=/tmp/gpu_check bash benchmarks/gpu_check.sh
# Environment: OUT (default ./gpu_check_out), PYTHON (default python3), TAICHI_3DGS_ARCH (default
# cuda), TAICHI_3DGS_DATASETS (default ./.gpu_data), TRAIN_BLEND_BACKWARD (atomic | reproducible:
# the kernel of the training stage, default atomic), GPU_CHECK_SMALL=1 (tiny sizes).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
DATA=${TAICHI_3DGS_DATASETS:-$ROOT/.gpu_data}

if [ "${1:-}" = "--prepare" ]; then
    SHARED=${SHARED_DATASETS:-$ROOT/../shared/datasets}
    set -e
    mkdir -p "$DATA/gsplat_test_garden"
    cp "$SHARED/gsplat_test_garden/test_garden.npz" "$DATA/gsplat_test_garden/"
    rm -rf "$DATA/desk_prepared"
    # The converter references the pinhole images in place (absolute paths); copy them into the
    # prepared folder and make the paths relative, so the folder works wherever it is carried.
    "$PY" - "$SHARED/colmap_desk" "$DATA/desk_prepared" <<'EOF'
import json, shutil, sys
from pathlib import Path
from taichi_3dgs.data.colmap import convert_colmap
out = convert_colmap(sys.argv[1], sys.argv[2]).output_dir
(out / "images").mkdir()
for name in ("train.json", "val.json"):
    records = json.loads((out / name).read_text())
    for record in records:
        source = Path(record["image_path"])
        shutil.copy2(source, out / "images" / source.name)
        record["image_path"] = f"images/{source.name}"
    (out / name).write_text(json.dumps(records, indent=1))
print(f"prepared {out}: {sum(1 for _ in (out / 'images').iterdir())} images")
EOF
    du -sh "$DATA"
    exit 0
fi

OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
if [ -f .gpu_site/site.tar.xz ] && [ "${TAICHI_3DGS_ARCH:-cuda}" = cuda ]; then
    mkdir -p /tmp/site && tar -C /tmp/site -xJf .gpu_site/site.tar.xz
    export PYTHONPATH=/tmp/site:$ROOT
else
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
export TAICHI_3DGS_ARCH=${TAICHI_3DGS_ARCH:-cuda}
export TAICHI_3DGS_DATASETS=$DATA
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-16}
TRAIN_BLEND_BACKWARD=${TRAIN_BLEND_BACKWARD:-atomic}
GARDEN=$DATA/gsplat_test_garden/test_garden.npz
DESK=$DATA/desk_prepared

if [ "${GPU_CHECK_SMALL:-0}" = 1 ]; then
    TESTS=(tests/rasterizer/test_reproducible_backward.py tests/rasterizer/test_rasterize_determinism.py)
    REPEATS=(--width 160 --height 104 --repeats 3)
    SMALL=(--width 160 --height 104 --runs 1 --warmup 0)
    TILED=(--width 192 --height 108 --tile 3 --runs 1 --warmup 0)
    STEP=(--long_side 200 --gaussians 5000 --runs 1 --warmup 1)
    TRAIN=(--num-iterations 20 --max-image-long-side 200 --val-interval 10)
else
    TESTS=(tests/rasterizer --ignore tests/rasterizer/test_blend_layouts.py)  # that file is about ti.cpu and Vulkan
    REPEATS=(--repeats 10)
    SMALL=(--runs 10)
    TILED=(--width 1920 --height 1080 --tile 5 --runs 10)
    STEP=(--long_side 1600 --gaussians 500000 --runs 10)
    TRAIN=(--num-iterations 7000 --val-interval 3500)
fi

stage() {  # stage NAME SECONDS COMMAND...: run with a timeout, log to $OUT/NAME.log, one summary line
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "$name: exit $rc in $(( $(date +%s) - start )) s (limit $limit s)$([ $rc = 124 ] && echo ', TIMED OUT')" \
        | tee -a "$SUMMARY"
}

{ echo "gpu_check $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
  echo "arch $TAICHI_3DGS_ARCH"; } 2>&1 | tee -a "$SUMMARY"
if [ "$TAICHI_3DGS_ARCH" = cuda ]; then  # gsplat's CUDA extension builds (~2 min) while the tests run
    timeout 240 "$PY" -c "from gsplat.cuda._backend import _C" > "$OUT/gsplat_build.log" 2>&1 &
fi

stage tests 100 "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}" -k "not vulkan"
stage repeats 40 "$PY" benchmarks/repeated_backward.py --data "$GARDEN" "${REPEATS[@]}"
wait  # gsplat's build, before the benchmarks that time it
stage bench_648_atomic 40 "$PY" benchmarks/rasterizer.py --data "$GARDEN" "${SMALL[@]}" --gsplat
stage bench_648_reproducible 25 "$PY" benchmarks/rasterizer.py --data "$GARDEN" "${SMALL[@]}" \
    --blend_backward reproducible
stage bench_1080_tiled_atomic 60 "$PY" benchmarks/rasterizer.py --data "$GARDEN" "${TILED[@]}" --gsplat
stage bench_1080_tiled_reproducible 40 "$PY" benchmarks/rasterizer.py --data "$GARDEN" "${TILED[@]}" \
    --blend_backward reproducible
stage step 45 "$PY" benchmarks/training_step.py --prepared "$DESK" "${STEP[@]}"
start=$(date +%s)
stage train 190 "$PY" gaussian_point_train.py --train_config "$DESK/train_config.yaml" "${TRAIN[@]}" \
    --output-model-dir "$OUT/train" --summary-writer-log-dir "$OUT/train/logs" --checkpoint-interval 100000 \
    --rasterisation-config.blend-backward "$TRAIN_BLEND_BACKWARD"
echo "train: $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s wall, blend_backward $TRAIN_BLEND_BACKWARD; metrics.json: $(cat "$OUT/train/metrics.json" 2>/dev/null | tr -d '\n' | head -c 600)" \
    | tee -a "$SUMMARY"
for log in "$OUT"/*.log; do  # the figures, gathered
    echo "== $(basename "$log")"
    tr '\r' '\n' < "$log" | grep -v "^training:" \
        | grep -E "passed|failed|rror|bit-identical|differ|device:|Gaussians|forward|stage|  [a-z_]+ +[0-9]|step|ours|gsplat|PSNR" \
        | tail -25
done >> "$SUMMARY"
echo "summary: $SUMMARY"
