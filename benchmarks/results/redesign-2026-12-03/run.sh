#!/bin/bash
# old (pre-redesign, 041838f) vs new (working tree), interleaved: A B A B per benchmark
. /work/main/.venv/bin/activate
cd /tmp/bench
run() { # tag root bench args...
  local tag=$1 root=$2 b=$3; shift 3
  PYTHONPATH=$root python $root/benchmarks/$b.py "$@" --out /tmp/bench/$b-$tag.json > /tmp/bench/$b-$tag.log 2>&1
  echo "$b $tag rc=$?"
}
for round in 1 2; do
  for tag in old new; do
    root=/tmp/base0; [ $tag = new ] && root=/work/main
    run $tag$round $root greeks --sizes 1e6 --backends numpy --repeat 7
    run $tag$round $root implied_vol --sizes 1e6 --backends numpy --peers none --repeat 5
    run $tag$round $root hedging --paths 1e5 --steps 252 --backends numpy --no-pfhedge --repeat 3 --rounds 1
    run $tag$round $root simulation --paths 100000 --steps 252 --backends numpy --peers none --no-memory --repeat 3
    run $tag$round $root book_job --sizes 1e6 --no-peers --backends numpy
  done
done
