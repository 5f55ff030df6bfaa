#!/bin/bash
# gpu-autostop bootstrap: run as root by gpu-autostop-bootstrap.service at every boot (installed by
# the instance's user-data). Idempotent and resumable: the first boot installs the agent, then
# ComfyUI (minutes); later boots only apply what changed in S3 (seconds). Every install step writes
# its marker under $STATE_DIR/steps only after it succeeded, so a reboot or a failure half way
# resumes at the step that did not finish. Inputs, next to this script in S3:
#   settings.env   KEY='value' lines written by Terraform (ComfyUI version/port, PyTorch pins, agent settings)
#   agent.tar.gz   the on-instance agent: agent/ with install.sh at its top
set -euo pipefail
umask 022

# The GPU_AUTOSTOP_* overrides exist for tests/terraform/test_bootstrap.py only.
STATE_DIR=${GPU_AUTOSTOP_STATE_DIR:-/opt/gpu-autostop}
COMFY_DIR=${GPU_AUTOSTOP_COMFY_DIR:-/opt/ComfyUI}
UNIT_DIR=${GPU_AUTOSTOP_UNIT_DIR:-/etc/systemd/system}
RETRY_SECONDS=${GPU_AUTOSTOP_RETRY_SECONDS:-10}
COMFY_USER=comfyui
COMFY_REPO=https://github.com/comfyanonymous/ComfyUI.git
STEPS="$STATE_DIR/steps"
# Present while an install runs (content: its start time); the agent reports phase "installing"
# (agent/README.md) and the stop function allows INSTALL_TIMEOUT_MINUTES from that time.
MARKER="$STATE_DIR/installing"
BASE_URI="${BOOTSTRAP_URI%/*}"

log() { echo "gpu-autostop-bootstrap: $*"; }
as_comfy() { runuser -u "$COMFY_USER" -- "$@"; }
# A step is done when its marker holds the wanted value; the marker is written atomically after it.
step_done() { [ "$(cat "$STEPS/$1" 2>/dev/null || true)" = "$2" ]; }
step_ok() { printf '%s\n' "$2" >"$STEPS/$1.tmp" && mv -f "$STEPS/$1.tmp" "$STEPS/$1"; }

# unattended-upgrades runs apt at boot. DPkg::Lock::Timeout makes apt-get wait for the dpkg lock
# instead of failing at once (apt.conf(5) / configure-index: "dpkg::lock::timeout"); apt-get update
# takes the lists lock, which that option does not cover (measured with apt 2.6: it fails at once),
# so update is retried as well.
APT_LOCK_TIMEOUT=600
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" "$@"; }
apt_update() {
  local attempt
  for attempt in $(seq 1 30); do
    apt_get update -q && return 0
    log "apt-get update failed (attempt $attempt of 30; another apt may hold its lock); retrying in ${RETRY_SECONDS}s"
    sleep "$RETRY_SECONDS"
  done
  return 1
}

install -d -m 0755 "$STATE_DIR" "$STEPS"
aws s3 cp --only-show-errors "$BASE_URI/settings.env" "$STATE_DIR/settings.env.new"
aws s3 cp --only-show-errors "$BASE_URI/agent.tar.gz" "$STATE_DIR/agent.tar.gz.new"
set -a
# shellcheck disable=SC1091
. "$STATE_DIR/settings.env.new"
set +a
: "${COMFYUI_REF:?settings.env has no COMFYUI_REF}" "${TORCH_INDEX_URL:?settings.env has no TORCH_INDEX_URL}"
: "${TORCH_VERSION:?}" "${TORCHVISION_VERSION:?}" "${TORCHAUDIO_VERSION:?}"
TORCH_PINS="torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION torchaudio==$TORCHAUDIO_VERSION"
COMFY_WANTED="$COMFYUI_REF $TORCH_PINS $TORCH_INDEX_URL"

# Boots of an instance installed before the step markers existed: its install was complete.
if [ -f "$STATE_DIR/comfyui.ref" ] && [ ! -f "$STEPS/clone" ]; then
  step_ok clone "$COMFY_REPO"
  step_ok venv "$COMFY_DIR/.venv"
fi

# --- the install phase starts: marker first, written once (a reboot keeps the original start) -----
if ! step_done comfyui "$COMFY_WANTED" && [ ! -s "$MARKER" ]; then
  date -u +%Y-%m-%dT%H:%M:%SZ >"$MARKER.tmp"
  mv -f "$MARKER.tmp" "$MARKER"
  log "install started $(cat "$MARKER")"
fi

# --- packages the install needs (the Deep Learning AMI has most of them) ---------------------------
missing=()
command -v git >/dev/null || missing+=(git)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_update
  apt_get install -y -q "${missing[@]}"
fi

# --- the agent first (it reports the install phase): reinstall when its archive or settings changed -
wanted=$(cat "$STATE_DIR/agent.tar.gz.new" "$STATE_DIR/settings.env.new" | sha256sum | cut -d' ' -f1)
if [ "$wanted" != "$(cat "$STATE_DIR/agent.sha256" 2>/dev/null || true)" ] ||
  ! systemctl is-enabled --quiet gpu-autostop-agent.service; then
  log "installing the agent"
  rm -rf "$STATE_DIR/agent-src"
  install -d -m 0755 "$STATE_DIR/agent-src"
  tar -xzf "$STATE_DIR/agent.tar.gz.new" -C "$STATE_DIR/agent-src"
  (cd "$STATE_DIR/agent-src/agent" && INSTALL_MARKER="$MARKER" bash ./install.sh)
  echo "$wanted" >"$STATE_DIR/agent.sha256"
fi

# --- ComfyUI at COMFYUI_REF with the pinned PyTorch, as its own unprivileged user -------------------
id -u "$COMFY_USER" >/dev/null 2>&1 ||
  useradd --system --create-home --home-dir /var/lib/comfyui --shell /usr/sbin/nologin "$COMFY_USER"
if ! step_done comfyui "$COMFY_WANTED"; then
  log "installing ComfyUI $COMFYUI_REF with $TORCH_PINS"
  if ! step_done clone "$COMFY_REPO"; then
    # No clone marker: nothing, or a clone a reboot interrupted. Nothing in it is worth keeping
    # (ComfyUI never ran from it), so it is cloned afresh.
    rm -rf "$COMFY_DIR"
    install -d -o "$COMFY_USER" -g "$COMFY_USER" -m 0755 "$COMFY_DIR"
    as_comfy git clone --quiet "$COMFY_REPO" "$COMFY_DIR"
    step_ok clone "$COMFY_REPO"
  fi
  if ! step_done checkout "$COMFYUI_REF"; then
    as_comfy git -C "$COMFY_DIR" fetch --quiet --tags origin
    as_comfy git -C "$COMFY_DIR" checkout --quiet --force "$COMFYUI_REF"
    step_ok checkout "$COMFYUI_REF"
  fi
  if ! step_done venv "$COMFY_DIR/.venv"; then
    rm -rf "$COMFY_DIR/.venv"
    as_comfy python3 -m venv "$COMFY_DIR/.venv"
    as_comfy "$COMFY_DIR/.venv/bin/pip" install --quiet --upgrade pip
    step_ok venv "$COMFY_DIR/.venv"
  fi
  # One CUDA build of PyTorch, exact versions (see terraform/modules/instance/README.md, "PyTorch"):
  # the wheels carry their CUDA runtime; the AMI's driver must be new enough for it.
  if ! step_done torch "$TORCH_PINS $TORCH_INDEX_URL"; then
    # shellcheck disable=SC2086 # TORCH_PINS is three words on purpose
    as_comfy "$COMFY_DIR/.venv/bin/pip" install --quiet $TORCH_PINS --index-url "$TORCH_INDEX_URL"
    step_ok torch "$TORCH_PINS $TORCH_INDEX_URL"
  fi
  # ComfyUI's requirements name torch unpinned; the constraints keep the pinned build in place.
  # shellcheck disable=SC2086
  printf '%s\n' $TORCH_PINS >"$STATE_DIR/torch-constraints.txt"
  if ! step_done requirements "$COMFY_WANTED"; then
    as_comfy "$COMFY_DIR/.venv/bin/pip" install --quiet -r "$COMFY_DIR/requirements.txt" \
      -c "$STATE_DIR/torch-constraints.txt"
    step_ok requirements "$COMFY_WANTED"
  fi
  step_ok comfyui "$COMFY_WANTED"
fi

# --- models (optional, read-only prefix) ----------------------------------------------------------
if [ -n "${MODELS_S3_URI:-}" ]; then
  log "syncing models from $MODELS_S3_URI"
  if ! as_comfy env AWS_REGION="$AWS_REGION" aws s3 sync --only-show-errors "$MODELS_S3_URI" "$COMFY_DIR/models/"; then
    log "model sync failed; ComfyUI starts with the models it already has"
  fi
fi

# --- ComfyUI service (rewritten every boot: the port may have changed) ----------------------------
cat >"$UNIT_DIR/comfyui.service" <<UNIT
[Unit]
Description=ComfyUI (gpu-autostop)
Wants=network-online.target
After=network-online.target gpu-autostop-bootstrap.service

[Service]
User=$COMFY_USER
WorkingDirectory=$COMFY_DIR
ExecStart=$COMFY_DIR/.venv/bin/python main.py --listen 0.0.0.0 --port $COMFYUI_PORT
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable comfyui.service
# --no-block: comfyui.service is ordered after this unit, so waiting here would deadlock.
systemctl restart --no-block comfyui.service

# --- the install succeeded: the agent reports "serving" from its next poll -------------------------
if [ -e "$MARKER" ]; then
  log "install finished (started $(cat "$MARKER" 2>/dev/null || true))"
  rm -f "$MARKER"
fi

mv -f "$STATE_DIR/settings.env.new" "$STATE_DIR/settings.env"
mv -f "$STATE_DIR/agent.tar.gz.new" "$STATE_DIR/agent.tar.gz"
log "done"
