#!/bin/bash
# gpu-autostop bootstrap: run as root by gpu-autostop-bootstrap.service at every boot (installed by
# the instance's user-data). Idempotent: the first boot installs ComfyUI and the agent (minutes);
# later boots only apply what changed in S3 (seconds). Inputs, next to this script in S3:
#   settings.env   KEY='value' lines written by Terraform (ComfyUI version/port, agent settings)
#   agent.tar.gz   the on-instance agent: agent/ with install.sh at its top
set -euo pipefail
umask 022

# The GPU_AUTOSTOP_* overrides exist for tests/terraform/test_bootstrap.py only.
STATE_DIR=${GPU_AUTOSTOP_STATE_DIR:-/opt/gpu-autostop}
COMFY_DIR=${GPU_AUTOSTOP_COMFY_DIR:-/opt/ComfyUI}
UNIT_DIR=${GPU_AUTOSTOP_UNIT_DIR:-/etc/systemd/system}
COMFY_USER=comfyui
BASE_URI="${BOOTSTRAP_URI%/*}"

log() { echo "gpu-autostop-bootstrap: $*"; }
as_comfy() { runuser -u "$COMFY_USER" -- "$@"; }

install -d -m 0755 "$STATE_DIR"
aws s3 cp --only-show-errors "$BASE_URI/settings.env" "$STATE_DIR/settings.env.new"
aws s3 cp --only-show-errors "$BASE_URI/agent.tar.gz" "$STATE_DIR/agent.tar.gz.new"
set -a
# shellcheck disable=SC1091
. "$STATE_DIR/settings.env.new"
set +a

# --- packages the install needs (the Deep Learning AMI has most of them) ---------------------------
missing=()
command -v git >/dev/null || missing+=(git)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# --- ComfyUI at COMFYUI_REF, as its own unprivileged user ------------------------------------------
id -u "$COMFY_USER" >/dev/null 2>&1 ||
  useradd --system --create-home --home-dir /var/lib/comfyui --shell /usr/sbin/nologin "$COMFY_USER"
install -d -o "$COMFY_USER" -g "$COMFY_USER" -m 0755 "$COMFY_DIR"
if [ "$(cat "$STATE_DIR/comfyui.ref" 2>/dev/null || true)" != "$COMFYUI_REF" ]; then
  log "installing ComfyUI $COMFYUI_REF"
  [ -d "$COMFY_DIR/.git" ] || as_comfy git clone --quiet https://github.com/comfyanonymous/ComfyUI.git "$COMFY_DIR"
  as_comfy git -C "$COMFY_DIR" fetch --quiet --tags origin
  as_comfy git -C "$COMFY_DIR" checkout --quiet --force "$COMFYUI_REF"
  [ -x "$COMFY_DIR/.venv/bin/python" ] || as_comfy python3 -m venv "$COMFY_DIR/.venv"
  as_comfy "$COMFY_DIR/.venv/bin/pip" install --quiet --upgrade pip
  as_comfy "$COMFY_DIR/.venv/bin/pip" install --quiet torch torchvision torchaudio --index-url "$TORCH_INDEX_URL"
  as_comfy "$COMFY_DIR/.venv/bin/pip" install --quiet -r "$COMFY_DIR/requirements.txt"
  echo "$COMFYUI_REF" >"$STATE_DIR/comfyui.ref"
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

# --- the agent: reinstall when its archive or its settings changed --------------------------------
wanted=$(cat "$STATE_DIR/agent.tar.gz.new" "$STATE_DIR/settings.env.new" | sha256sum | cut -d' ' -f1)
if [ "$wanted" != "$(cat "$STATE_DIR/agent.sha256" 2>/dev/null || true)" ] ||
  ! systemctl is-enabled --quiet gpu-autostop-agent.service; then
  log "installing the agent"
  rm -rf "$STATE_DIR/agent-src"
  install -d -m 0755 "$STATE_DIR/agent-src"
  tar -xzf "$STATE_DIR/agent.tar.gz.new" -C "$STATE_DIR/agent-src"
  (cd "$STATE_DIR/agent-src/agent" && bash ./install.sh)
  echo "$wanted" >"$STATE_DIR/agent.sha256"
fi

mv -f "$STATE_DIR/settings.env.new" "$STATE_DIR/settings.env"
mv -f "$STATE_DIR/agent.tar.gz.new" "$STATE_DIR/agent.tar.gz"
log "done"
