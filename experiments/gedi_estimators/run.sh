#!/usr/bin/env bash
# The estimator comparison: arms x 3 seeds of `nesy-gedi pretrain` (the default LeNet), two runs at a time on one thread
# each, then the judge. Usage: bash experiments/gedi_estimators/run.sh [OUT [ARM...]]
# (default runs/gedi_estimators, every arm; the summary keeps the rows of arms not run again)
set -euo pipefail
OUT=${1:-runs/gedi_estimators}
shift || true
COMMON="--steps 1500 --gen-after 500 --no-progress --log-every 250"
declare -A ARMS=(
  [sgld]="--gen-estimator sgld"
  [dsm_w1]="--gen-estimator dsm --gen-weight 1"
  [dsm_w10]="--gen-estimator dsm --gen-weight 10"
  [recovery]="--gen-estimator recovery"
  [amortised]="--gen-estimator amortised"
  [sgld_kl01]="--gen-estimator sgld --sampler-kl-weight 0.1"
  [sgld_kl1]="--gen-estimator sgld --sampler-kl-weight 1"
  [sgld_kl01_ent]="--gen-estimator sgld --sampler-kl-weight 0.1 --sampler-entropy-weight 0.03"
)
SELECTED=("$@")
if ((${#SELECTED[@]} == 0)); then SELECTED=(sgld dsm_w1 dsm_w10 recovery amortised sgld_kl01 sgld_kl1 sgld_kl01_ent); fi
jobs=()
for arm in "${SELECTED[@]}"; do
  for seed in 0 1 2; do
    jobs+=("$arm $seed")
  done
done
run() {
  local arm=$1 seed=$2
  OMP_NUM_THREADS=1 nesy-gedi pretrain $COMMON ${ARMS[$arm]} --seed "$seed" --out "$OUT/$arm/seed$seed" \
    > "$OUT/$arm.seed$seed.log" 2>&1
}
mkdir -p "$OUT"
for ((i = 0; i < ${#jobs[@]}; i += 2)); do
  run ${jobs[i]} &
  if ((i + 1 < ${#jobs[@]})); then run ${jobs[i + 1]} & fi
  wait
done
python -m experiments.gedi.unification --runs "$OUT" --samples 500 --per-cluster 50 --out "$OUT/judged"
python -m experiments.gedi_estimators.summary "$OUT"
