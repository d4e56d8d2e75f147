#!/usr/bin/env bash
# Builds the benchmark and accuracy corpus under .fixtures/ (gitignored) and its manifest:
#   .fixtures/manifest.tsv   columns: path (relative to .fixtures/), reference text, duration (s), group, source
#     group  = short (a clip of at most 10 s) | long (the one file of 5 min or more)
#     source = real (recorded speech from Debian's pocketsphinx-testdata) | tts (espeak-ng speech of known text)
#
# Inputs: pocketsphinx-testdata (LibriVox and `cards` recordings with their transcriptions, plus `goforward.raw`
# and the TIDIGITS clip `dhd.2934z.raw`, whose texts are given by the package's grammar and the TIDIGITS file
# naming), and the texts in benchmarks/texts/ spoken by espeak-ng. The long file joins all of them with sox.
#
# Deterministic (same tools, same bytes: encoders run bit-exact) and idempotent: a second run with unchanged
# inputs does nothing. `--force` rebuilds. Needs: sox, espeak-ng, ffmpeg/ffprobe, pocketsphinx-testdata
# (all installed by scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.fixtures
texts=$root/benchmarks/texts
psdata=/usr/share/pocketsphinx/test/data
silence_s=0.8        # pause between the pieces of the long file
long_min_s=300       # the long file must last at least this long

force=0
[ "${1:-}" = "--force" ] && force=1

for tool in sox espeak-ng ffmpeg ffprobe sha256sum; do
    command -v "$tool" >/dev/null || { echo "fixtures: '$tool' is missing (run scripts/setup.sh)" >&2; exit 1; }
done
[ -d "$psdata/librivox" ] || { echo "fixtures: pocketsphinx-testdata is missing (run scripts/setup.sh)" >&2; exit 1; }

# The stamp covers everything the output depends on, so an unchanged input means nothing to do.
stamp=$( { cat "$0" "$texts"/*.tsv; espeak-ng --version; sox --version; ffmpeg -version | head -1
           sha256sum "$psdata"/librivox/*.wav "$psdata"/cards/*.wav "$psdata"/goforward.raw "$psdata"/tidigits/dhd.2934z.raw
         } | sha256sum | cut -d' ' -f1)
if [ $force -eq 0 ] && [ -f "$out/manifest.tsv" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "fixtures: up to date ($out/manifest.tsv)"
    exit 0
fi

# Build in a scratch folder and swap it in at the end, so an interrupted run never leaves a half corpus.
tmp=$root/.fixtures.tmp
rm -rf "$tmp"
mkdir -p "$tmp/short/real" "$tmp/short/tts" "$tmp/long" "$tmp/pieces"
rows=()            # manifest rows without duration: "path<TAB>reference<TAB>group<TAB>source"
pieces=()          # 16 kHz mono s16 wav pieces of the long file, in order
long_refs=()

# Canonical 16 kHz mono signed 16-bit WAV; sox's output does not depend on the time of day or the run.
# to_wav16k OUT INPUT-ARGS...
to_wav16k() { local o=$1; shift; sox -D -R -V1 "$@" -r 16000 -c 1 -b 16 -e signed-integer "$o"; }

duration() { ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$1"; }

add_real() {   # add_real NAME REFERENCE SOX-INPUT-ARGS...
    local name=$1 ref=$2; shift 2
    to_wav16k "$tmp/short/real/$name.wav" "$@"
    cp "$tmp/short/real/$name.wav" "$tmp/pieces/$name.wav"
    rows+=("short/real/$name.wav"$'\t'"$ref"$'\tshort\treal')
    pieces+=("$tmp/pieces/$name.wav"); long_refs+=("$ref")
}

# Texts of the real recordings: "<s> words </s> (id)" per line.
transcript_of() { grep -F "($2)" "$1" | sed -E 's/<\/?s>//g; s/\([^)]*\)$//; s/  +/ /g; s/^ +| +$//g'; }

echo "fixtures: real recordings"
while read -r id; do
    [ -n "$id" ] || continue
    add_real "librivox-${id##*-}" "$(transcript_of "$psdata/librivox/transcription" "$id")" "$psdata/librivox/$id.wav"
done < "$psdata/librivox/fileids"
while read -r id; do
    [ -n "$id" ] || continue
    add_real "cards-$id" "$(transcript_of "$psdata/cards/cards.transcription" "$id")" "$psdata/cards/$id.wav"
done < "$psdata/cards/cards.fileids"
# goforward.raw speaks the grammar's fixed rule "<move> = go forward ten meters" (pocketsphinx's own tests expect it).
goforward=$(sed -nE 's/^public <move> = (.*);$/\1/p' "$psdata/goforward.gram")
[ "$goforward" = "go forward ten meters" ] || { echo "fixtures: unexpected goforward.gram" >&2; exit 1; }
add_real goforward "$goforward" -t raw -r 16000 -e signed-integer -b 16 -c 1 -L "$psdata/goforward.raw"
# TIDIGITS names a clip by its digits: z = zero, o = oh (as tidigits.lsn spells them for the other clips).
spell_digits() {
    local i w words=()
    for ((i = 0; i < ${#1}; i++)); do
        case ${1:i:1} in
            z) w=zero ;; o) w=oh ;; 1) w=one ;; 2) w=two ;; 3) w=three ;; 4) w=four ;;
            5) w=five ;; 6) w=six ;; 7) w=seven ;; 8) w=eight ;; 9) w=nine ;;
            *) echo "fixtures: not a TIDIGITS digit: ${1:i:1}" >&2; exit 1 ;;
        esac
        words+=("$w")
    done
    echo "${words[*]}"
}
digits=$(spell_digits 2934z)
add_real tidigits-dhd-2934z "$digits" -t raw -r 16000 -e signed-integer -b 16 -c 1 -L "$psdata/tidigits/dhd.2934z.raw"

# speak ID VOICE WPM TEXT: espeak-ng to a 16 kHz piece.
speak() {
    espeak-ng -v "$2" -s "$3" -w "$tmp/pieces/$1.raw.wav" "$4"
    to_wav16k "$tmp/pieces/$1.wav" "$tmp/pieces/$1.raw.wav"
    rm "$tmp/pieces/$1.raw.wav"
}

echo "fixtures: espeak-ng clips"
sentence_ids=()
declare -A sentence_text
while IFS=$'\t' read -r id voice wpm format text; do
    case $id in ''|'#'*) continue ;; esac
    speak "$id" "$voice" "$wpm" "$text"
    dest=short/tts/$id.$format
    case $format in
        wav) cp "$tmp/pieces/$id.wav" "$tmp/$dest" ;;
        mp3) ffmpeg -nostdin -v error -i "$tmp/pieces/$id.wav" -map_metadata -1 -fflags +bitexact -flags:a +bitexact \
                 -c:a libmp3lame -b:a 48k "$tmp/$dest" ;;
        ogg) ffmpeg -nostdin -v error -i "$tmp/pieces/$id.wav" -map_metadata -1 -fflags +bitexact -flags:a +bitexact \
                 -c:a libvorbis -q:a 3 "$tmp/$dest" ;;
        *) echo "fixtures: unknown format '$format' for $id" >&2; exit 1 ;;
    esac
    rows+=("$dest"$'\t'"$text"$'\tshort\ttts')
    sentence_ids+=("$id"); sentence_text[$id]=$text
done < "$texts/sentences.tsv"

echo "fixtures: espeak-ng passages"
passage_ids=()
declare -A passage_text
while IFS=$'\t' read -r id voice wpm text; do
    case $id in ''|'#'*) continue ;; esac
    speak "$id" "$voice" "$wpm" "$text"
    passage_ids+=("$id"); passage_text[$id]=$text
done < "$texts/passages.tsv"

# The long file: the real recordings first, then each passage followed by a few of the short sentences.
per_passage=$(( (${#sentence_ids[@]} + ${#passage_ids[@]} - 1) / ${#passage_ids[@]} ))
s=0
for p in "${passage_ids[@]}"; do
    pieces+=("$tmp/pieces/$p.wav"); long_refs+=("${passage_text[$p]}")
    for _ in $(seq "$per_passage"); do
        [ $s -lt ${#sentence_ids[@]} ] || break
        id=${sentence_ids[$s]}; s=$((s + 1))
        pieces+=("$tmp/pieces/$id.wav"); long_refs+=("${sentence_text[$id]}")
    done
done
echo "fixtures: joining ${#pieces[@]} pieces into the long file"
sox -D -R -n -r 16000 -c 1 -b 16 -e signed-integer "$tmp/pieces/silence.wav" trim 0 "$silence_s"
joined=()
for p in "${pieces[@]}"; do joined+=("$p" "$tmp/pieces/silence.wav"); done
sox -D -R -V1 "${joined[@]}" "$tmp/long/joined.wav"
rows+=("long/joined.wav"$'\t'"${long_refs[*]}"$'\tlong\tmixed')
rm -rf "$tmp/pieces"

# Manifest with measured durations; check every clip against its group's bounds.
{
    printf 'path\treference\tduration\tgroup\tsource\n'
    for row in "${rows[@]}"; do
        IFS=$'\t' read -r path ref group source <<< "$row"
        d=$(duration "$tmp/$path")
        case $group in
            short) awk -v d="$d" 'BEGIN { exit !(d > 0.5 && d <= 10) }' \
                       || { echo "fixtures: $path lasts $d s, not a short clip" >&2; exit 1; } ;;
            long)  awk -v d="$d" -v m="$long_min_s" 'BEGIN { exit !(d >= m) }' \
                       || { echo "fixtures: long file lasts $d s < $long_min_s s; add passages" >&2; exit 1; } ;;
        esac
        printf '%s\t%s\t%.3f\t%s\t%s\n' "$path" "$ref" "$d" "$group" "$source"
    done
} > "$tmp/manifest.tsv"
echo "$stamp" > "$tmp/.stamp"

rm -rf "$out"
mv "$tmp" "$out"
awk -F'\t' 'NR > 1 { n[$4 "/" $5]++; s[$4 "/" $5] += $3 }
            END { for (k in n) printf "fixtures: %-11s %3d files %8.1f s\n", k, n[k], s[k] }' "$out/manifest.tsv" | sort
echo "fixtures: wrote $out/manifest.tsv"
