#!/bin/bash
# device run: generation variants of GEDI (MNIST seed 0), then the judge-based evaluation
# usage: bash .devdata/gen.sh DEVICE STEPS MINUTES JUDGE_STEPS SAMPLES OUT
DEV=$1; STEPS=$2; MIN=$3; JUDGE=$4; SAMPLES=$5; O=$6
mkdir -p $O/gen $O/logs
COMMON="--device $DEV --steps $STEPS --minutes $MIN --no-progress --log-every 500 --seed 0"
SR="--sgld-restart 1 --sgld-steps 40"
GEN="--invariance-weight 0 --prior-weight 0 --gen-after 0 --aug-warmup 0"
declare -A V
V[full_sr_ebm]="--arch ebm $SR"
V[full_sr_ebm_gw1]="--arch ebm $SR --gen-weight 1"
V[gen_sr_ebm]="--arch ebm $SR $GEN"
V[full_ebm]="--arch ebm"
V[full_sr_cnn]="--arch mnist_cnn $SR"
for name in "${!V[@]}"; do
  OMP_NUM_THREADS=2 python tasks/gedi_pretrain.py $COMMON ${V[$name]} --out $O/gen/$name/seed0 > $O/logs/$name.log 2>&1 &
done
wait
for name in "${!V[@]}"; do echo "== $name"; tail -8 $O/logs/$name.log; done
rm -f $O/gen/*/seed0/checkpoint.pt
OMP_NUM_THREADS=8 python benchmarks/gedi_unification.py --runs $O/gen --sgld-steps run --samples $SAMPLES \
  --judge-steps $JUDGE --device $DEV --out $O/unif > $O/logs/unif.log 2>&1
tail -20 $O/logs/unif.log
rm -rf $O/unif/judge
