#!/usr/bin/env bash
# Regenerate the published CPU result sets in results/ (fixture data from ../shared/data).
# Takes about an hour on 2 CPU cores. Each set resumes: rerunning only fills in what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
TB=".venv/bin/transferbench"
DATA="${TRANSFERBENCH_SHARED_DATA:-../shared/data}"
$TB run --suite quick --out results/quick-digits-efficientnet-lite0 --no-progress
$TB run --task cifar10 --data-dir "$DATA/cifar10" --adapter efficientnet-lite0 --image-size 96 --epochs 3 \
  --strategy linear-probe,finetune,lp-ft,partial,scratch --seeds 0 --resume \
  --out results/cifar10-subset-efficientnet-lite0-96px --no-progress
$TB run --task sst2 --data-dir "$DATA/sst2" --adapter tfidf-logreg --strategy scratch --seeds 0 --resume \
  --out results/sst2-subset-minilm-l6 --no-progress
$TB run --task sst2 --data-dir "$DATA/sst2" --adapter minilm-l6 --max-length 64 --epochs 3 \
  --strategy linear-probe,finetune,scratch --seeds 0 --resume --out results/sst2-subset-minilm-l6 --no-progress
$TB run --task digits --adapter efficientnet-lite0 --epochs 3 --train-examples 5,20,all --per-class \
  --strategy linear-probe,finetune,scratch --seeds 0,1,2 --resume \
  --out results/digits-data-efficiency-efficientnet-lite0 --no-progress
for d in results/*/; do
  [[ -f "$d/results.jsonl" ]] && $TB report "$d"
done
$TB report --index results
