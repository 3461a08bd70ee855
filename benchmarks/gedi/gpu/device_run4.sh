#!/bin/bash
# device run 4: the short-run EBM alone with negative batches of 128 and 256, 3 seeds each, longer; then the judge
DEV=$1; STEPS=$2; MIN=$3; JUDGE=$4; O=$5
W=/tmp/work; mkdir -p $W/gen $W/logs
SR="--arch ebm --sgld-restart 1 --sgld-steps 40"
GEN="--invariance-weight 0 --prior-weight 0 --gen-after 0 --aug-warmup 0"
run() { OMP_NUM_THREADS=2 python tasks/gedi_pretrain.py --device $DEV --steps $STEPS --minutes $MIN --no-progress --log-every 500 $SR $GEN "${@:3}" --seed $2 --out $W/gen/$1/seed$2 > $W/logs/$1_$2.log 2>&1 & }
for s in 0 1 2; do
  run gen_sr_ebm_nb128 $s --sgld-batch 128
  run gen_sr_ebm_nb256 $s --sgld-batch 256
done
wait
for f in $W/logs/*.log; do echo "== $f"; grep -E '"(steps|train_seconds)"' $f | head -2; done
rm -f $W/gen/*/seed*/checkpoint.pt
tar czf $O/gen.tar.gz -C $W gen logs
OMP_NUM_THREADS=8 python benchmarks/gedi_unification.py --runs $W/gen --sgld-steps run --samples 1000 --per-cluster 100 \
  --judge-steps $JUDGE --device $DEV --out $W/unif > $W/logs/unif.log 2>&1
tail -22 $W/logs/unif.log
rm -rf $W/unif/judge
tar czf $O/unif.tar.gz -C $W unif logs/unif.log
