#!/bin/bash
# device run 2: generative-weight sweep and seeds of the short-run EBM; everything packed into two tarballs
DEV=$1; STEPS=$2; MIN=$3; JUDGE=$4; SAMPLES=$5; O=$6
W=/tmp/work; mkdir -p $W/gen $W/logs
SR="--arch ebm --sgld-restart 1 --sgld-steps 40"
GEN="--invariance-weight 0 --prior-weight 0 --gen-after 0 --aug-warmup 0"
run() { OMP_NUM_THREADS=2 python tasks/gedi_pretrain.py --device $DEV --steps $STEPS --minutes $MIN --no-progress --log-every 500 $SR "${@:3}" --seed $2 --out $W/gen/$1/seed$2 > $W/logs/$1_$2.log 2>&1 & }
run full_sr_ebm_gw3 0 --gen-weight 3
run full_sr_ebm_gw10 0 --gen-weight 10
run gen_sr_ebm 0 $GEN
run gen_sr_ebm 1 $GEN
run gen_sr_ebm 2 $GEN
run full_sr_ebm_gw3 1 --gen-weight 3
wait
for f in $W/logs/*.log; do echo "== $f"; grep -A6 '"steps"' $f; done
rm -f $W/gen/*/seed*/checkpoint.pt
tar czf $O/gen.tar.gz -C $W gen logs
OMP_NUM_THREADS=8 python benchmarks/gedi_unification.py --runs $W/gen --sgld-steps run --samples $SAMPLES \
  --judge-steps $JUDGE --device $DEV --out $W/unif > $W/logs/unif.log 2>&1
tail -14 $W/logs/unif.log
rm -rf $W/unif/judge
tar czf $O/unif.tar.gz -C $W unif logs/unif.log
