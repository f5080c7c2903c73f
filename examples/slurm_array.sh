#!/bin/bash
# One mllm-safety run split over a Slurm job array: one shard per array task (one GPU each), then one merge
# job that combines the shards and writes the result back (see docs/scale.md, "A cluster with Slurm").
#
# Submit (from the repository, on a login node; the runs folder must be on a shared file system):
#     RUN="figstep --model hf:llava-hf/llava-1.5-7b-hf --batch-size 32" SHARDS=8 bash examples/slurm_array.sh
# This submits the array (tasks 0..SHARDS-1) and a merge job that starts when every task has succeeded.
# A task that fails or times out can be resubmitted alone (sbatch --array=<i> ...): its run resumes.
#
# Variables: RUN (the `mllm-safety run` arguments, the same for every shard), SHARDS (default 4),
# RUNS (runs folder, default runs), SBATCH_ARGS (extra sbatch options: partition, account, ...).
#SBATCH --job-name=mllm-safety
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=04:00:00
#SBATCH --output=slurm-%x-%A_%a.out
set -euo pipefail

RUN=${RUN:-"figstep --model organism"}
SHARDS=${SHARDS:-4}
RUNS=${RUNS:-runs}
BASELINE=${RUN%% *}

if [[ -z "${SLURM_ARRAY_TASK_ID:-}" && -z "${MERGE:-}" ]]; then
    # login node: submit the array, then the merge job depending on it
    export RUN SHARDS RUNS
    # shellcheck disable=SC2086  # SBATCH_ARGS is a list of options
    job=$(sbatch --parsable --export=ALL --array="0-$((SHARDS - 1))" ${SBATCH_ARGS:-} "$0")
    job=${job%%;*}
    # shellcheck disable=SC2086
    sbatch --parsable --export=ALL,MERGE=1 --dependency="afterok:${job}" --gres=none --job-name=mllm-safety-merge \
        ${SBATCH_ARGS:-} "$0"
    echo "submitted array job ${job} (${SHARDS} shards) and its merge job"
    exit 0
fi

export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}  # compute nodes often have no internet: use the local HF cache

if [[ -n "${MERGE:-}" ]]; then
    # the shard folders of this run differ only in their __shard<i>of<n> suffix
    # shellcheck disable=SC2086
    mllm-safety merge "$RUNS"/"$BASELINE"__*__shard*of"$SHARDS" --runs-dir "$RUNS"
else
    # shellcheck disable=SC2086  # RUN is a list of arguments
    mllm-safety run $RUN --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}" --runs-dir "$RUNS" --no-write-back --no-progress
fi
