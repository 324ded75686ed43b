#!/bin/bash
# CUDA in a container built from the spec mig-cdi-gen writes, on a real
# driver (made for the H200 machine): the spec's device nodes, read-only
# driver mounts and createContainer hooks, applied by mig-cdi-runtime over
# a real runc; inside, `nvidia-smi -L` and a CUDA program that launches a
# kernel and checks its result. The image is busybox plus the program and
# the C/C++ libraries it links, with a loader cache of its own. Read-only
# on the GPU (no MIG change, no setter).
#
#   hook/scripts/cuda-check.sh RUNC HOOK GEN BUSYBOX   (as root; nvcc, python3)
set -u
RUNC=$1 HOOK=$2 GEN=$3 BUSYBOX=$4
W=$(mktemp -d); trap 'rm -rf $W' EXIT
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cat >$W/vecadd.cu <<'CU'
#include <cstdio>
__global__ void add(const float *a, const float *b, float *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}
static float ha[1 << 20], hb[1 << 20], hc[1 << 20];
int main() {
    const int n = 1 << 20;
    float *a, *b, *c;
    if (cudaMalloc(&a, n * 4) || cudaMalloc(&b, n * 4) || cudaMalloc(&c, n * 4)) {
        printf("vecadd: cudaMalloc failed: %s\n", cudaGetErrorString(cudaGetLastError()));
        return 1;
    }
    for (int i = 0; i < n; i++) { ha[i] = i; hb[i] = 2 * i; }
    cudaMemcpy(a, ha, n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(b, hb, n * 4, cudaMemcpyHostToDevice);
    add<<<(n + 255) / 256, 256>>>(a, b, c, n);
    cudaError_t err = cudaDeviceSynchronize();
    if (err) { printf("vecadd: kernel failed: %s\n", cudaGetErrorString(err)); return 1; }
    cudaMemcpy(hc, c, n * 4, cudaMemcpyDeviceToHost);
    for (int i = 0; i < n; i++) if (hc[i] != 3.0f * i) { printf("vecadd: wrong at %d\n", i); return 1; }
    cudaDeviceProp p; cudaGetDeviceProperties(&p, 0);
    printf("vecadd: ok, %d sums checked on %s\n", n, p.name);
    return 0;
}
CU
$NVCC -o $W/vecadd $W/vecadd.cu || exit 1
R=$W/rootfs; mkdir -p $R/bin $R/dev $R/proc $R/sys $R/tmp $R/etc
cp $BUSYBOX $R/bin/busybox; for a in sh ls cat echo; do ln -s busybox $R/bin/$a; done
cp $W/vecadd $R/bin/vecadd
# The image's C libraries: what the program links and what nvidia-smi
# links (never the driver's own: those come from the spec's mounts).
SMI=
for f in /usr/local/nvidia/bin/nvidia-smi /usr/bin/nvidia-smi; do
    if [ -z "$SMI" ] && head -c 4 $f 2>/dev/null | grep -q ELF; then SMI=$f; fi
done
EXTRA=$(ls /lib/x86_64-linux-gnu/{libpthread.so.0,libdl.so.2,librt.so.1,libm.so.6} 2>/dev/null)
for lib in $EXTRA $(ldd $W/vecadd $SMI | awk '/=>/ {print $3} /^\t\// {print $1}' | grep -v nvidia | sort -u); do
    mkdir -p $R$(dirname $lib); cp -L $lib $R$lib
done
printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n/lib64\n' >$R/etc/ld.so.conf
ldconfig -r $R
mkdir -p $W/cdi $W/bin
$GEN generate --hook-path "$(readlink -f "$HOOK")" --output $W/cdi/nvidia.com-gpu.json || exit 1
echo "== discovered driver files (mounts):"
python3 -c "import json; [print('  ', m['containerPath']) for m in json.load(open('$W/cdi/nvidia.com-gpu.json'))['containerEdits']['mounts']]"
ln -s "$(readlink -f "$HOOK")" $W/bin/mig-cdi-runtime
printf 'runtime = %s\nspec-dir = %s\nlog = %s\n' "$(readlink -f "$RUNC")" $W/cdi $W/runtime.log >$W/bin/mig-cdi-runtime.conf
mkdir -p $W/b; (cd $W/b && $RUNC spec) || exit 1
python3 - $W/b/config.json $R <<'PY'
import json, sys
path, root = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": root, "readonly": False}
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "nvidia-smi -L && vecadd"]
c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("PATH=")]
c["process"]["env"] += ["NVIDIA_VISIBLE_DEVICES=0", "PATH=/bin:/usr/bin:/usr/local/nvidia/bin"]
c["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
json.dump(c, open(path, "w"))
PY
echo "== runc run through mig-cdi-runtime: nvidia-smi -L and a CUDA kernel"
(cd $W/b && $W/bin/mig-cdi-runtime run cuda-check 2>&1); echo "exit $?"
echo "== runtime log"; tail -3 $W/runtime.log | cut -c1-240
