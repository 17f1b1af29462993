#!/usr/bin/env bash
# Run one experiment, or a sweep, on this machine (resuming if the workdir has one).
#
# Variables (environment; [default]):
#   CONFIG         config file with optional :args  [experiments/configs/vae_heatmaps.py]
#   WORKDIR        run directory  [runs/<config name>]
#   SWEEP          1: run experiments.sweep (latent dims x members) instead of
#                  experiments.train + experiments.evaluate  [0]
#   NUM_PROCESSES  N > 1: train as a job of N local processes, as on N hosts
#                  (each gets JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
#                  its JAX_PROCESS_ID, the variables launch/slurm.sbatch sets;
#                  for testing multi-host code on one machine)  [1]
#   PORT           the coordinator's port on 127.0.0.1 when NUM_PROCESSES > 1  [23456]
#   DRY_RUN        1: print the commands instead of running them  [0]
#   Extra arguments go to the Python command (e.g. --config.train.epochs=5).
#
#   CONFIG=experiments/configs/ae_heatmaps.py launch/local.sh --config.train.epochs=5
#   SWEEP=1 CONFIG=experiments/configs/ablation.py:smoke launch/local.sh
#   NUM_PROCESSES=2 CONFIG=experiments/configs/vae_heatmaps.py:smoke launch/local.sh
# With NUM_PROCESSES > 1 a process that fails stops the others, SIGTERM or
# Ctrl-C to this script reaches every process (exit 143), and the
# evaluation afterwards is one process.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-experiments/configs/vae_heatmaps.py}"
name="$(basename "${CONFIG%%:*}" .py)"
WORKDIR="${WORKDIR:-runs/${name}}"
SWEEP="${SWEEP:-0}"
NUM_PROCESSES="${NUM_PROCESSES:-1}"
PORT="${PORT:-23456}"
DRY_RUN="${DRY_RUN:-0}"
if ! [[ "${NUM_PROCESSES}" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: NUM_PROCESSES=${NUM_PROCESSES} must be a positive integer." >&2
  exit 2
fi

if [[ "${SWEEP}" == "1" ]]; then
  job="python -m experiments.sweep --config=${CONFIG} --workdir=${WORKDIR} $*"
  after=()
else
  job="python -m experiments.train --config=${CONFIG} --workdir=${WORKDIR} $*"
  after=("python -m experiments.evaluate --workdir=${WORKDIR}")
fi
job="${job% }"

process_env() {  # the JAX_* variables of process $1
  echo "JAX_COORDINATOR_ADDRESS=127.0.0.1:${PORT} JAX_NUM_PROCESSES=${NUM_PROCESSES} JAX_PROCESS_ID=$1"
}

run_job() {  # NUM_PROCESSES copies of $1; the first failure stops the rest
  if (( NUM_PROCESSES == 1 )); then
    eval "$1"
    return
  fi
  local pids=() status=0 signalled=0
  # SIGTERM / Ctrl-C reach every process (each checkpoints and exits 143),
  # as SLURM's preemption signals every task.
  trap 'signalled=1; kill -TERM "${pids[@]}" 2>/dev/null || true' TERM INT
  for ((i = 0; i < NUM_PROCESSES; i++)); do
    eval "$(process_env "${i}") exec $1" &
    pids+=("$!")
  done
  for ((i = 0; i < NUM_PROCESSES; i++)); do
    if ! wait -n; then
      status=1
      kill "${pids[@]}" 2>/dev/null || true
    fi
  done
  wait || true  # processes still checkpointing after a signal
  trap - TERM INT
  if (( signalled )); then
    return 143
  fi
  return "${status}"
}

if [[ "${DRY_RUN}" == "1" ]]; then
  if (( NUM_PROCESSES == 1 )); then
    echo "${job}"
  else
    for ((i = 0; i < NUM_PROCESSES; i++)); do
      echo "$(process_env "${i}") ${job}"
    done
  fi
  for command in "${after[@]}"; do echo "${command}"; done
  exit 0
fi
run_job "${job}"
for command in "${after[@]}"; do eval "${command}"; done
