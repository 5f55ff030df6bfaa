#!/usr/bin/env bash
# Install or update the gpu-autostop agent as the systemd service gpu-autostop-agent. Idempotent.
#
# Usage (as root; user-data calls it):
#   AGENT_STATE_PARAMETER=/gpu-autostop/agent-state [IDLE_MINUTES=10 ...] ./install.sh [SOURCE_DIR]
#
# SOURCE_DIR is the agent directory (pyproject.toml, requirements.txt, autostop_agent/, the unit);
# default: the directory of this script. The contract module the agent shares with the functions
# (autostop_contract.py and its pyproject.toml) is in the contract/ directory beside it, as in the
# repository and in build/agent.tar.gz; CONTRACT_DIR names another place.
#
# Configuration: every agent variable that is set in the environment (see VARIABLES below and the
# README's table) is written to /etc/gpu-autostop/agent.env, which then holds exactly those. When
# AGENT_STATE_PARAMETER is not set and the env file exists, the file is kept as it is (a code update).
#
# Knobs of the script itself:
#   PYTHON=python3            interpreter for the virtualenv (3.11 or newer)
#   AGENT_PREFIX=/opt/gpu-autostop   virtualenv at $AGENT_PREFIX/agent-venv
#   INSTALL_ROOT=             install under another root (tests); implies SKIP_SYSTEMCTL=1
#   SKIP_PIP=1                do not create/update the virtualenv (tests)
#   SKIP_SYSTEMCTL=1          do not call systemctl (images being built, tests)
#   CONTRACT_DIR=SOURCE_DIR/../contract   the contract module's directory
#   PIP_INDEX_URL etc.        honoured by pip as usual
#
# Exit status: 0 installed (and the service restarted), 2 bad input, other: the failing step's.
set -euo pipefail

VARIABLES=(
  AGENT_STATE_PARAMETER COMFYUI_URL INSTANCE_ID AWS_REGION METRICS_NAMESPACE
  POLL_SECONDS STARTUP_POLL_SECONDS HEARTBEAT_SECONDS METRICS_SECONDS
  IDLE_MINUTES SELF_STOP_MINUTES SELF_STOP_CHECKS BOOT_GRACE_MINUTES SHUTDOWN_COMMAND
  GPU_BUSY_PERCENT CPU_BUSY_PERCENT CPU_WINDOW_SECONDS ACTIVITY_PROCESS_REGEX
  COMFYUI_TIMEOUT_SECONDS AGENT_LOCK_FILE IMDS_ENDPOINT AWS_ENDPOINT_URL LOG_LEVEL
  INSTALL_MARKER INSTALL_TIMEOUT_MINUTES
)
UNIT=gpu-autostop-agent.service

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

SRC="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
ROOT="${INSTALL_ROOT:-}"
PREFIX="${AGENT_PREFIX:-/opt/gpu-autostop}"
PYTHON="${PYTHON:-python3}"
CONTRACT="${CONTRACT_DIR:-$SRC/../contract}"
VENV="$ROOT$PREFIX/agent-venv"
ENV_FILE="$ROOT/etc/gpu-autostop/agent.env"
UNIT_FILE="$ROOT/etc/systemd/system/$UNIT"
[[ -n "$ROOT" ]] && SKIP_SYSTEMCTL=1

[[ -f "$SRC/pyproject.toml" && -d "$SRC/autostop_agent" && -f "$SRC/$UNIT" ]] ||
  die "$SRC is not the agent directory (pyproject.toml, autostop_agent/, $UNIT expected)"
[[ -f "$CONTRACT/autostop_contract.py" && -f "$CONTRACT/pyproject.toml" ]] ||
  die "$CONTRACT is not the contract directory (autostop_contract.py, pyproject.toml expected; set CONTRACT_DIR)"
[[ "$PREFIX" == /* ]] || die "AGENT_PREFIX must be an absolute path, got '$PREFIX'"

# 1. The env file (written first: a bad value stops the install before anything else changes).
if [[ -z "${AGENT_STATE_PARAMETER:-}" ]]; then
  [[ -f "$ENV_FILE" ]] || die "AGENT_STATE_PARAMETER is required (the SSM parameter of the agent state record)"
  say "AGENT_STATE_PARAMETER not given: keeping $ENV_FILE"
else
  content="# gpu-autostop agent configuration, written by install.sh (re-run it to change; see agent/README.md)."$'\n'
  for name in "${VARIABLES[@]}"; do
    if [[ -n "${!name+set}" && -n "${!name}" ]]; then
      value="${!name}"
      [[ "$value" != *$'\n'* ]] || die "$name must be a single line"
      content+="$name=$value"$'\n'
    fi
  done
  mkdir -p "$(dirname "$ENV_FILE")"
  if [[ -f "$ENV_FILE" ]] && [[ "$(cat "$ENV_FILE"; printf x)" == "${content}x" ]]; then
    say "$ENV_FILE unchanged"
  else
    tmp="$(mktemp "$ENV_FILE.XXXXXX")"
    printf '%s' "$content" >"$tmp"
    chmod 0600 "$tmp"
    mv -f "$tmp" "$ENV_FILE"
    say "wrote $ENV_FILE"
  fi
fi

# 2. The virtualenv with the pinned dependencies and the agent.
if [[ "${SKIP_PIP:-0}" != 1 ]]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PYTHON is older than 3.11 (set PYTHON to a newer interpreter)"
  # A virtualenv whose pip does not run was interrupted half way (a reboot during the first boot):
  # made again from scratch rather than failing the same way at every boot.
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    say "created $VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$SRC/requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
    "$CONTRACT" "$SRC"
  say "installed the agent into $VENV"
  # Fail here, not in a restart loop, if the configuration is invalid.
  "$VENV/bin/python" -m autostop_agent --check-config --env-file "$ENV_FILE" ||
    die "the agent rejected its configuration (see the message above)"
fi

# 3. The README beside the virtualenv (the unit's Documentation=), and the systemd unit (pointing at this prefix).
mkdir -p "$ROOT$PREFIX"
install -m 0644 "$SRC/README.md" "$ROOT$PREFIX/agent-README.md"

mkdir -p "$(dirname "$UNIT_FILE")"
unit_text="$(sed "s#/opt/gpu-autostop#$PREFIX#g" "$SRC/$UNIT")"
if [[ -f "$UNIT_FILE" ]] && [[ "$(cat "$UNIT_FILE")" == "$unit_text" ]]; then
  say "$UNIT_FILE unchanged"
else
  printf '%s\n' "$unit_text" >"$UNIT_FILE"
  chmod 0644 "$UNIT_FILE"
  say "wrote $UNIT_FILE"
fi

# 4. Enable and (re)start.
if [[ "${SKIP_SYSTEMCTL:-0}" == 1 ]] || ! command -v systemctl >/dev/null 2>&1; then
  say "systemctl skipped: run 'systemctl daemon-reload && systemctl enable --now $UNIT'"
else
  systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null
  systemctl restart "$UNIT"
  say "$UNIT enabled and (re)started; logs: journalctl -u ${UNIT%.service}"
fi
