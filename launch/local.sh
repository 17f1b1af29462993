#!/usr/bin/env bash
# Run one experiment, or a sweep, on this machine (resuming if the workdir has one).
#
# Variables (environment; [default]):
#   CONFIG   config file with optional :args  [experiments/configs/vae_heatmaps.py]
#   WORKDIR  run directory  [runs/<config name>]
#   SWEEP    1: run experiments.sweep (latent dims x members) instead of
#            experiments.train + experiments.evaluate  [0]
#   DRY_RUN  1: print the commands instead of running them  [0]
#   Extra arguments go to the Python command (e.g. --config.train.epochs=5).
#
#   CONFIG=experiments/configs/ae_heatmaps.py launch/local.sh --config.train.epochs=5
#   SWEEP=1 CONFIG=experiments/configs/ablation.py:smoke launch/local.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-experiments/configs/vae_heatmaps.py}"
name="$(basename "${CONFIG%%:*}" .py)"
WORKDIR="${WORKDIR:-runs/${name}}"
SWEEP="${SWEEP:-0}"
DRY_RUN="${DRY_RUN:-0}"

if [[ "${SWEEP}" == "1" ]]; then
  commands=("python -m experiments.sweep --config=${CONFIG} --workdir=${WORKDIR} $*")
else
  commands=("python -m experiments.train --config=${CONFIG} --workdir=${WORKDIR} $*"
            "python -m experiments.evaluate --workdir=${WORKDIR}")
fi
for command in "${commands[@]}"; do
  command="${command% }"
  if [[ "${DRY_RUN}" == "1" ]]; then
    echo "${command}"
  else
    eval "${command}"
  fi
done
