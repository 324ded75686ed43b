#!/usr/bin/env bash
# Prepare this machine for the end-to-end tests: real runc, crun and podman
# from Debian, cgroups that crun accepts, a podman configuration that works
# without CAP_SYS_RESOURCE, and a busybox root filesystem (no registry is
# reachable). Idempotent: a second run changes nothing. Needs root.
set -euo pipefail

ROOTFS_DIR=${MIG_CDI_TEST_ROOTFS:-/var/lib/mig-cdi-tests/rootfs}
IMAGE=${MIG_CDI_TEST_IMAGE:-localhost/mig-cdi-busybox:latest}
# systemd: systemd-analyze verify for the units of examples/refresh/;
# python3-venv: a venv for kubernetes-validate (below).
PACKAGES=(runc crun podman busybox-static hyperfine time docker.io containerd systemd python3-venv)

if [ "$(id -u)" != 0 ]; then
    echo "setup-runtimes: must run as root (it installs packages and mounts cgroups)" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-runtimes: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# crun refuses a "hybrid" hierarchy while a controller sits on cgroup v2:
# give each such controller a v1 hierarchy of its own (runc does not care).
unified=/sys/fs/cgroup/unified
if [ -f "$unified/cgroup.controllers" ]; then
    for c in $(cat "$unified/cgroup.controllers"); do
        if ! mountpoint -q "/sys/fs/cgroup/$c"; then
            mkdir -p "/sys/fs/cgroup/$c" 2>/dev/null || mount -o remount,rw /sys/fs/cgroup
            mkdir -p "/sys/fs/cgroup/$c"
            mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
        fi
    done
fi

# podman's default rlimits exceed what a process without CAP_SYS_RESOURCE
# may set here.
conf=/etc/containers/containers.conf
if ! grep -q "mig-cdi-tests" "$conf" 2>/dev/null; then
    hard=$(ulimit -Hn)
    mkdir -p /etc/containers
    [ -f "$conf" ] && cp "$conf" "$conf.before-mig-cdi-tests"
    cat >"$conf" <<CONF
# written by mig-cdi tests/setup-runtimes.sh (mig-cdi-tests)
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]
CONF
fi

# A busybox root filesystem, as a directory (runc, crun) and an image (podman).
if [ ! -x "$ROOTFS_DIR/bin/busybox" ]; then
    rm -rf "$ROOTFS_DIR.tmp"
    mkdir -p "$ROOTFS_DIR.tmp"/{bin,dev,etc,proc,sys,tmp,root}
    cp /bin/busybox "$ROOTFS_DIR.tmp/bin/busybox"
    for applet in $("$ROOTFS_DIR.tmp/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$ROOTFS_DIR.tmp/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ROOTFS_DIR.tmp/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOTFS_DIR.tmp/etc/group"
    rm -rf "$ROOTFS_DIR"
    mkdir -p "$(dirname "$ROOTFS_DIR")"
    mv "$ROOTFS_DIR.tmp" "$ROOTFS_DIR"
fi
# kubernetes-validate (PyPI, ~3 s, schemas bundled: validates offline) for
# examples/refresh/daemonset.yaml, in a venv of its own.
VENV=/var/lib/mig-cdi-tests/venv
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    echo "setup-runtimes: installing kubernetes-validate into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate
fi

if ! podman image exists "$IMAGE" 2>/dev/null; then
    tar -C "$ROOTFS_DIR" -c . | podman import -q - "$IMAGE" >/dev/null
fi
echo "setup-runtimes: runc $(runc --version | head -1 | awk '{print $3}'), crun $(crun --version | head -1 | awk '{print $3}'), podman $(podman --version | awk '{print $3}'); rootfs $ROOTFS_DIR; image $IMAGE"
