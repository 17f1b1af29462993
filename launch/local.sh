#!/usr/bin/env bash
# Run one experiment on this machine, resuming if the workdir already has one.
#
#   CONFIG   config file with optional :args   (default: the heatmap VAE)
#   WORKDIR  run directory                     (default: runs/<config name>)
#   extra arguments are passed to experiments.train (e.g. --config.train.epochs=5)
#
#   CONFIG=experiments/configs/ae_heatmaps.py launch/local.sh --config.train.epochs=5
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-experiments/configs/vae_heatmaps.py}"
name="$(basename "${CONFIG%%:*}" .py)"
WORKDIR="${WORKDIR:-runs/${name}}"
python -m experiments.train --config="${CONFIG}" --workdir="${WORKDIR}" "$@"
python -m experiments.evaluate --workdir="${WORKDIR}"
