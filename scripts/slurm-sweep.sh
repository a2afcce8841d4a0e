#!/bin/bash
# A chunkload sweep as a SLURM job array, and its merge as a job that runs when every task has
# succeeded (docs/sweeps.md, "Running on a batch scheduler"). One script, two roles:
#
#   N=16
#   jid=$(sbatch --parsable --array=1-$N scripts/slurm-sweep.sh)      # task i runs shard i/N
#   sbatch --dependency=afterok:$jid --export=ALL,SHARDS=$N scripts/slurm-sweep.sh   # the merge
#
# An array task (SLURM_ARRAY_TASK_ID set) runs `chunkload sweep --shard auto`, which reads its
# shard from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, and writes
# $OUT/shards/results-shard-I-of-N.json (atomically: a killed task leaves nothing that looks
# finished). To rerun one failed task, resubmit its index with the whole count:
#   sbatch --array=7 --export=ALL,SHARDS=$N scripts/slurm-sweep.sh
# The array is given at submission, not in a #SBATCH line: the merge job runs this same script
# and must not be an array. A job that is not an array task (the dependent one) merges the N shards into $OUT/merged:
# results.json, results.csv and the charts, byte for byte those of one unsharded run.
#
# Settings come from the environment at submission (sbatch exports it by default):
#   OUT        a directory on a filesystem every node shares (required)
#   GRID       the grid spec (required for the array)
#   SCENARIO   the base scenario file (default: paper-region)
#   EXPERIMENT fleet (default) or replay; a replay sweep passes its inputs in SWEEP_ARGS
#   SEED       the sweep's seed (default: the scenario's)
#   SHARDS     the shard count: required for the merge and for a resubmitted part of the array
#   SWEEP_ARGS more `chunkload sweep` flags, split on spaces
#   CHUNKLOAD  the binary (default: chunkload on PATH)
#SBATCH --job-name=chunkload-sweep
#SBATCH --cpus-per-task=1
#SBATCH --output=%x-%A_%a.out
set -euo pipefail

: "${OUT:?set OUT to a directory every node shares}"
chunkload=${CHUNKLOAD:-chunkload}

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  : "${GRID:?set GRID to the grid spec}"
  args=(sweep --experiment "${EXPERIMENT:-fleet}" --scenario "${SCENARIO:-paper-region}" --grid "$GRID"
        --shard auto --out "$OUT/shards" --quiet)
  if [ -n "${SHARDS:-}" ]; then args+=(--shard-count "$SHARDS"); fi
  if [ -n "${SEED:-}" ]; then args+=(--seed "$SEED"); fi
  # shellcheck disable=SC2206 # split on purpose: extra flags
  if [ -n "${SWEEP_ARGS:-}" ]; then args+=($SWEEP_ARGS); fi
  exec "$chunkload" "${args[@]}"
else
  : "${SHARDS:?set SHARDS to the array size to merge}"
  exec "$chunkload" merge "$OUT"/shards/results-shard-*-of-"$SHARDS".json --out "$OUT/merged"
fi
