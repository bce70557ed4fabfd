#!/usr/bin/env bash
# Packs .gpu/ for the offline H200 host like ../shared/gpu/pack.sh, with a leaner node_modules:
# only what check:gpu (vitest) and bench:gpu (esbuild) need there. The kernels' generated sources
# travel as carried paths, so the AssemblyScript toolchain (binaryen is ~94 MB) stays here.
# Usage, from the project root, after `npm install` and `npm run build`:  scripts/pack-gpu.sh
set -euo pipefail
shared=$(cd "$(dirname "$0")/../../shared/gpu" 2>/dev/null && pwd || true)
[ -n "$shared" ] || { echo "../shared/gpu not found" >&2; exit 1; }
out=.gpu
mkdir -p "$out/debs"
dawn=node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$dawn" ] || { echo "node_modules/webgpu is missing: npm install first" >&2; exit 1; }
[ "$out/node.xz" -nt "$(command -v node)" ] || xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$out/node.xz"
[ "$out/dawn.node.xz" -nt "$dawn" ] || xz -T0 -6 -c "$dawn" > "$out/dawn.node.xz"
if ! ls "$out"/debs/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d); mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update -qq >/dev/null 2>&1
  (cd "$out/debs" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
fi
tar -cJf "$out/bundle.tar.xz" \
  --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/webgpu/dist/linux-x64/dawn.node' \
  --exclude='node_modules/onnxruntime-*' --exclude='node_modules/@tensorflow' --exclude='node_modules/binaryen' \
  --exclude='node_modules/assemblyscript' --exclude='node_modules/@img' --exclude='node_modules/sharp' \
  --exclude='node_modules/protobufjs' --exclude='node_modules/playwright*' --exclude='node_modules/typescript' \
  --exclude='node_modules/@types' --exclude='node_modules/.cache' \
  node_modules "$@"
# zstd (and its liblz4) for scripts/sass-dump.py, which unpacks the NVIDIA driver's shader cache there.
if z=$(command -v zstd); then
  mkdir -p "$out/tools"; cp "$z" "$out/tools/"
  l=$(ldd "$z" | awk '/liblz4/ {print $3}'); [ -n "$l" ] && cp "$l" "$out/tools/"
fi
cp "$shared/env.sh" "$out/env.sh"
cp "$shared/probe.mjs" "$out/probe.mjs"
du -ch "$out"/* "$out"/debs/* | tail -1 | sed 's/total/bundle size/'
