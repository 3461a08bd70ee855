#!/bin/bash
# device run 3: stabilising the short-run EBM (negative batch 128, lower lr), joint GEDI + short-run EBM,
# then the judge-based evaluation (with conditional samples and per-digit flip AUROC) incl. the CPU EBM checkpoints
DEV=$1; STEPS=$2; MIN=$3; JUDGE=$4; O=$5
W=/tmp/work; mkdir -p $W/gen $W/logs
SR="--arch ebm --sgld-restart 1 --sgld-steps 40 --sgld-batch 128"
GEN="--invariance-weight 0 --prior-weight 0 --gen-after 0 --aug-warmup 0"
run() { OMP_NUM_THREADS=1 python tasks/gedi_pretrain.py --device $DEV --steps $STEPS --minutes $MIN --no-progress --log-every 500 $SR "${@:3}" --seed $2 --out $W/gen/$1/seed$2 > $W/logs/$1_$2.log 2>&1 & }
for s in 0 1 2; do
  run gen_sr_ebm_nb128 $s $GEN
  run gen_sr_ebm_nb128_lr5e-4 $s $GEN --lr 5e-4
  run full_sr_ebm_gw1_nb128 $s --gen-weight 1
done
wait
for f in $W/logs/*.log; do echo "== $f"; grep -E '"(steps|nmi|train_seconds)"' $f | head -3; done
rm -f $W/gen/*/seed*/checkpoint.pt
cp -r .devdata/ckpt/ebm_cpu $W/gen/
tar czf $O/gen.tar.gz -C $W gen logs
OMP_NUM_THREADS=8 python benchmarks/gedi_unification.py --runs $W/gen --sgld-steps run --samples 1000 --per-cluster 100 \
  --judge-steps $JUDGE --device $DEV --out $W/unif > $W/logs/unif.log 2>&1
tail -25 $W/logs/unif.log
rm -rf $W/unif/judge
tar czf $O/unif.tar.gz -C $W unif logs/unif.log
