#!/usr/bin/env bash
# Build the one-folder imgclust-desktop bundle (Linux; see packaging/README.md for Windows and macOS).
#
#   packaging/build.sh [cpu|gpu] [--no-tarball]
#
# cpu (default): about 1 GB, runs anywhere, uses the CPU. Made in its own build venv with PyTorch's
#                CPU-only wheel (IMGCLUST_TORCH_CPU, default torch==2.13.0+cpu), because the registry's
#                default torch is the CUDA build, which cannot even import without its ~3 GB of nvidia libs.
# gpu:           the registry's default (CUDA) torch with its nvidia-* libraries: several GB, uses an
#                NVIDIA GPU when one is present, the CPU otherwise.
#
# Output (all under ignored folders):
#   build/venv-VARIANT/                      the build venv (kept and reused while pyproject.toml is unchanged)
#   build/pyinstaller-VARIANT/               PyInstaller's work folder
#   dist/imgclust-desktop-VERSION-linux-ARCH-VARIANT/          the folder to ship (AppImage-style AppDir):
#       imgclust-desktop (launcher)  AppRun -> imgclust-desktop  imgclust-desktop.desktop  imgclust.png
#       install-desktop-entry.sh  app/ (PyInstaller's one-folder build)
#   dist/imgclust-desktop-VERSION-linux-ARCH-VARIANT.tar.gz    that folder as a tarball (unless --no-tarball)
#
# Environment: PYTHON (interpreter for the build venv, default python3), IMGCLUST_BUILD_VENV (use this
# venv instead of making one; it must already hold the app's dependencies and pyinstaller),
# IMGCLUST_TORCH_CPU (the CPU torch requirement), IMGCLUST_PIP_ARGS (extra pip arguments, e.g. an
# --extra-index-url where the CPU torch wheel lives), IMGCLUST_BUILD_DIR / IMGCLUST_DIST_DIR.
set -euo pipefail

VARIANT=cpu
TARBALL=1
for arg in "$@"; do
    case "$arg" in
        cpu | gpu) VARIANT=$arg ;;
        --no-tarball) TARBALL=0 ;;
        -h | --help)
            sed -n '2,24p' "$0"
            exit 0
            ;;
        *)
            echo "build.sh: unknown argument '$arg' (use: cpu | gpu | --no-tarball)" >&2
            exit 2
            ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${IMGCLUST_BUILD_DIR:-$ROOT/build}
DIST=${IMGCLUST_DIST_DIR:-$ROOT/dist}
PYTHON=${PYTHON:-python3}
TORCH_CPU=${IMGCLUST_TORCH_CPU:-torch==2.13.0+cpu}
read -r -a PIP_ARGS <<<"${IMGCLUST_PIP_ARGS:-}"
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n 1)
NAME="imgclust-desktop-$VERSION-linux-$(uname -m)-$VARIANT"
START=$SECONDS

say() { printf '[build.sh %4ds] %s\n' $((SECONDS - START)) "$*"; }

# ---- 1. the build venv: the app's dependencies (with the variant's torch) and PyInstaller
if [[ -n "${IMGCLUST_BUILD_VENV:-}" ]]; then
    VENV=$IMGCLUST_BUILD_VENV
    say "using the venv $VENV as it is"
else
    VENV=$BUILD/venv-$VARIANT
    STAMP="$VARIANT $TORCH_CPU ${IMGCLUST_PIP_ARGS:-} $(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.imgclust-stamp" 2>/dev/null)" != "$STAMP" ]]; then
        say "making the build venv $VENV"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        TORCH=()
        [[ $VARIANT == cpu ]] && TORCH=("$TORCH_CPU")
        # The app is installed (not editable) only for its dependencies; the spec bundles the source tree.
        if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_ARGS[@]}" \
            "${TORCH[@]}" "$ROOT" "pyinstaller>=6.10"; then
            echo "build.sh: installing the build venv failed." >&2
            [[ $VARIANT == cpu ]] && echo "  The CPU-only torch ($TORCH_CPU) must be reachable: set" \
                "IMGCLUST_PIP_ARGS='--extra-index-url <PyTorch's CPU wheel index>' (see packaging/README.md)." >&2
            exit 1
        fi
        echo "$STAMP" >"$VENV/.imgclust-stamp"
    else
        say "reusing the build venv $VENV"
    fi
fi
"$VENV/bin/python" - "$VARIANT" <<'EOF'
import sys
import torch
variant = sys.argv[1]
cuda = torch.version.cuda
print(f"[build.sh] torch {torch.__version__} (CUDA {cuda or 'none'}) for the {variant} bundle")
if variant == "cpu" and cuda:
    sys.exit("build.sh: the cpu variant needs a CPU-only torch, but this venv has a CUDA build")
EOF

# ---- 2. PyInstaller one-folder build
say "running PyInstaller"
rm -rf "${DIST:?}/$NAME" "$DIST/$NAME.tar.gz"
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$BUILD/dist-$VARIANT" --workpath "$BUILD/pyinstaller-$VARIANT" \
    "$ROOT/packaging/imgclust-desktop.spec"

# ---- 3. the folder to ship: launcher, desktop entry and icon around PyInstaller's folder
mkdir -p "$DIST/$NAME"
mv "$BUILD/dist-$VARIANT/imgclust-desktop" "$DIST/$NAME/app"
rmdir "$BUILD/dist-$VARIANT" 2>/dev/null || true
install -m 755 "$ROOT/packaging/imgclust-desktop.sh" "$DIST/$NAME/imgclust-desktop"
install -m 755 "$ROOT/packaging/install-desktop-entry.sh" "$DIST/$NAME/install-desktop-entry.sh"
install -m 644 "$ROOT/packaging/imgclust-desktop.desktop" "$DIST/$NAME/imgclust-desktop.desktop"
install -m 644 "$ROOT/icons/png/imgclust-256.png" "$DIST/$NAME/imgclust.png"
ln -s imgclust-desktop "$DIST/$NAME/AppRun"
say "bundle: $(du -sh "$DIST/$NAME" | cut -f1) in $DIST/$NAME"

if [[ $TARBALL == 1 ]]; then
    say "writing $NAME.tar.gz"
    tar -C "$DIST" -czf "$DIST/$NAME.tar.gz" "$NAME"
    say "tarball: $(du -sh "$DIST/$NAME.tar.gz" | cut -f1)"
fi
say "done: $DIST/$NAME/imgclust-desktop --self-test checks it"
