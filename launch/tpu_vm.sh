#!/usr/bin/env bash
# Create (or reuse) a Cloud TPU VM and run a command on all of its workers.
#
# Variables (environment; [default]):
#   TPU_NAME          name of the TPU VM  [latent-jax]
#   ZONE              its zone  [us-central2-b]
#   ACCELERATOR_TYPE  e.g. v4-8 (one host), v4-32 (a pod slice of 4 hosts)  [v4-8]
#   RUNTIME_VERSION   TPU VM software version  [tpu-ubuntu2204-base]
#   PROJECT           Google Cloud project  [gcloud's configured project]
#   REMOTE_DIR        where the checkout goes on each worker  [latent_jax]
#   COMMAND           what every worker runs in REMOTE_DIR
#                     [python -m experiments.sweep --config=experiments/configs/ablation.py --workdir=runs/ablation]
#   SETUP             1: install the package with its [tpu] extra first  [1]
#   DRY_RUN           1: print the gcloud commands instead of running them  [0]
#
# The checkout is copied as `git archive HEAD` (commit your changes first).
# Every worker runs the same COMMAND; with several workers, LATENT_JAX_MULTIHOST=1
# makes it call jax.distributed.initialize(), which finds the other workers.
# Use a gs:// WORKDIR (or a disk every worker sees) for pod slices.
#   TPU_NAME=ablation ACCELERATOR_TYPE=v4-32 launch/tpu_vm.sh
#   DRY_RUN=1 launch/tpu_vm.sh     # preview
set -euo pipefail
cd "$(dirname "$0")/.."
TPU_NAME="${TPU_NAME:-latent-jax}"
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
REMOTE_DIR="${REMOTE_DIR:-latent_jax}"
COMMAND="${COMMAND:-python -m experiments.sweep --config=experiments/configs/ablation.py --workdir=runs/ablation}"
SETUP="${SETUP:-1}"
DRY_RUN="${DRY_RUN:-0}"
project=()
if [[ -n "${PROJECT:-}" ]]; then project=("--project=${PROJECT}"); fi
tpu=(gcloud compute tpus tpu-vm)
where=("--zone=${ZONE}" "${project[@]}")
archive="/tmp/${TPU_NAME}_latent_jax.tar.gz"

setup=""
if [[ "${SETUP}" == "1" ]]; then
  setup="pip install -q -c constraints.txt -e '.[tpu]' && "
fi
remote="mkdir -p ${REMOTE_DIR} && tar -xzf ~/$(basename "${archive}") -C ${REMOTE_DIR} && cd ${REMOTE_DIR} && ${setup}LATENT_JAX_MULTIHOST=1 ${COMMAND}"

quote() {  # an argument as the shell reads it back: 'single-quoted' if needed
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

run() {  # print in a dry run, else run
  if [[ "${DRY_RUN}" == "1" ]]; then
    local line=""
    for arg in "$@"; do line+="$(quote "${arg}") "; done
    echo "${line% }"
  else
    "$@"
  fi
}

if [[ "${DRY_RUN}" == "1" ]]; then
  echo "# create ${TPU_NAME} unless it exists (gcloud ... describe fails):"
  run "${tpu[@]}" create "${TPU_NAME}" "${where[@]}" \
      "--accelerator-type=${ACCELERATOR_TYPE}" "--version=${RUNTIME_VERSION}"
elif ! "${tpu[@]}" describe "${TPU_NAME}" "${where[@]}" >/dev/null 2>&1; then
  run "${tpu[@]}" create "${TPU_NAME}" "${where[@]}" \
      "--accelerator-type=${ACCELERATOR_TYPE}" "--version=${RUNTIME_VERSION}"
fi
run git archive --format=tar.gz -o "${archive}" HEAD
run "${tpu[@]}" scp "${archive}" "${TPU_NAME}:~/" "${where[@]}" --worker=all
run "${tpu[@]}" ssh "${TPU_NAME}" "${where[@]}" --worker=all \
    "--command=${remote}"
