# the fix (cbf6fea) against the old tree; JSON copied beside this script as hedging-fix-<tag>.json
#!/bin/bash
. /work/main/.venv/bin/activate
cd /tmp/bench2
for round in 1 2 3; do
  for tag in old new; do
    root=/tmp/base0; [ $tag = new ] && root=/work/main
    PYTHONPATH=$root python $root/benchmarks/hedging.py --paths 1e5 --steps 252 --backends numpy --no-pfhedge --repeat 5 --rounds 1 --out /tmp/bench2/hedging-$tag$round.json > /tmp/bench2/hedging-$tag$round.log 2>&1
    echo "$tag$round rc=$?"
  done
done
