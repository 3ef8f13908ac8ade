#!/usr/bin/env bash
# Regenerate the published CPU result sets in results/ (fixture data from ../shared/data), seeds 0-2.
# Several hours on 2 CPU cores. Each set resumes: rerunning only fills in what is missing.
# The GPU sets and figures come from scripts/gpu-bench.sh on a GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
TB=".venv/bin/transferbench"
DATA="${TRANSFERBENCH_SHARED_DATA:-../shared/data}"
SEEDS="${SEEDS:-0,1,2}"
run() { $TB run --seeds "$SEEDS" --resume --no-progress "$@"; }

run --task cifar10 --data-dir "$DATA/cifar10" --adapter efficientnet-lite0 --image-size 96 --epochs 3 \
  --strategy linear-probe,finetune,lp-ft,partial,scratch,lora,ia3,bitfit,llrd,gradual-unfreeze \
  --out results/cifar10-subset-efficientnet-lite0-96px
run --task sst2 --data-dir "$DATA/sst2" --adapter tfidf-logreg --strategy scratch --out results/sst2-subset-minilm-l6
run --task sst2 --data-dir "$DATA/sst2" --adapter minilm-l6 --max-length 64 --epochs 3 \
  --strategy linear-probe,finetune,scratch,lora,ia3,bitfit,llrd,gradual-unfreeze --out results/sst2-subset-minilm-l6
# The data-budget sweep; its "all" rows are the quick suite's digits rows.
run --task digits --adapter efficientnet-lite0 --epochs 3 --train-examples 5,20,all --per-class \
  --strategy linear-probe,finetune,scratch --out results/digits-data-efficiency-efficientnet-lite0
FSDD="results/fsdd-speaker-encoder-logmel-cnn"
FEW="results/fsdd-few-labels"
for task in fsdd-digits fsdd-speakers; do
  run --task $task --data-dir "$DATA/fsdd" --adapter logmel-cnn --strategy scratch --epochs 5 --out $FSDD
  run --task $task --data-dir "$DATA/fsdd" --adapter speaker-encoder --strategy linear-probe,finetune,scratch \
    --epochs 5 --out $FSDD
  # what applies to an LSTM encoder (lora/ia3 do not: `transferbench list strategies`)
  run --task $task --data-dir "$DATA/fsdd" --adapter speaker-encoder --strategy bitfit,llrd,gradual-unfreeze \
    --epochs 5 --out $FSDD
done
for spec in "fsdd-digits 5,20" "fsdd-speakers 5"; do
  read -r task sizes <<<"$spec"
  few="--task $task --data-dir $DATA/fsdd --train-examples $sizes --per-class --batch-size 16 --epochs 5 --out $FEW"
  run $few --adapter logmel-cnn --strategy scratch
  run $few --adapter speaker-encoder --strategy linear-probe,finetune,scratch
done
# Full CIFAR-10 in the hub's layout (../shared/data/cifar10-full), 96 px: all 45,000 training images
# for one epoch, and the VTAB-1k protocol (800 + 200) at the default budget.
FULL="--task cifar10 --data-dir $DATA/cifar10-full --adapter efficientnet-lite0 --image-size 96"
run $FULL --epochs 1 --strategy linear-probe,finetune,scratch --out results/cifar10-full-efficientnet-lite0-96px
run $FULL --train-examples vtab-1k --strategy linear-probe,finetune,scratch --out results/cifar10-vtab1k-efficientnet-lite0-96px
$TB report --index results --sets --html
